package fhirpath

import (
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Inline resources for the core tests, shaped like the US Core examples.
const (
	patientJSON = `{
  "resourceType": "Patient",
  "id": "pat1",
  "meta": {
    "lastUpdated": "2024-01-02T03:04:05Z",
    "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],
    "tag": [{"system": "http://example.org/tags", "code": "demo"}]
  },
  "extension": [
    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
      {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
      {"url": "text", "valueString": "White"}
    ]},
    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"},
    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity",
     "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "446141000124107"}]}}
  ],
  "identifier": [{"system": "urn:mrn", "value": "MRN1"}, {"system": "urn:ssn", "value": "999"}],
  "active": true,
  "name": [{"family": "Shaw", "given": ["Amy", "V."]}, {"use": "old", "family": "Baxter", "given": ["Amy"]}],
  "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "amy@example.org"}],
  "gender": "female",
  "birthDate": "1987-02-20",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1987-02-20T10:00:00Z"}]},
  "deceasedBoolean": false,
  "managingOrganization": {"reference": "Organization/org1"},
  "generalPractitioner": [
    {"reference": "https://fhir.example.org/r4/Practitioner/prac1/_history/3"},
    {"reference": "urn:uuid:6c9b5a4e-2c4e-4a0e-9f59-0d6c3b1e2f10", "type": "PractitionerRole"}
  ]
}`
	observationJSON = `{
  "resourceType": "Observation",
  "id": "obs1",
  "contained": [{"resourceType": "Organization", "id": "lab", "name": "Acme Lab"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
  "subject": {"reference": "Patient/pat1"},
  "effectiveDateTime": "2024-04-17T08:56:00-05:00",
  "performer": [{"reference": "Practitioner/prac1"}, {"reference": "#lab"}],
  "valueQuantity": {"value": 120.50, "unit": "mmHg"},
  "component": [
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 136, "unit": "mmHg"}},
    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueCodeableConcept": {"text": "low"}}
  ]
}`
	conditionJSON = `{
  "resourceType": "Condition",
  "id": "cond1",
  "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate", "valueDateTime": "2020-01-01"}],
  "code": {"text": "Burnt ear"},
  "subject": {"reference": "Group/g1"},
  "onsetAge": {"value": 40, "unit": "a"},
  "abatementPeriod": {"start": "2021-01-01"}
}`
	questionnaireJSON = `{
  "resourceType": "Questionnaire",
  "id": "q1",
  "status": "active",
  "item": [{"linkId": "1", "type": "group", "code": [{"code": "g"}],
    "item": [{"linkId": "1.1", "type": "string", "code": [{"code": "s"}]}]}]
}`
	medicationRequestJSON = `{
  "resourceType": "MedicationRequest",
  "id": "mr1",
  "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "Nizatidine"}}],
  "status": "active",
  "intent": "order",
  "medicationReference": {"reference": "#med"},
  "subject": {"reference": "Patient/pat1"},
  "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {"start": "2008-04-05"}}}}]
}`
	bundleJSON = `{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {"resource": {"resourceType": "Patient", "id": "a", "gender": "male"}},
    {"resource": {"resourceType": "Observation", "id": "b", "status": "final"}}
  ]
}`
	organizationJSON = `{"resourceType": "Organization", "id": "org1", "name": "Acme", "alias": ["Acme", "ACME Corp"]}`
)

func mustParse(tb testing.TB, s string) *fhirjson.Object {
	tb.Helper()
	o, err := fhirjson.Parse([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// show renders nodes as "Type json" for readable comparisons.
func show(nodes []Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Type+" "+string(fhirjson.Marshal(n.Value)))
	}
	return out
}

package synth

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Small constructors for fhirjson trees. Every call builds fresh objects:
// consumers (the importer, the server) may annotate what they receive, so
// no subtree is ever shared between two emitted resources.

// Code systems used throughout.
const (
	sysLOINC      = "http://loinc.org"
	sysSNOMED     = "http://snomed.info/sct"
	sysICD10CM    = "http://hl7.org/fhir/sid/icd-10-cm"
	sysRxNorm     = "http://www.nlm.nih.gov/research/umls/rxnorm"
	sysCVX        = "http://hl7.org/fhir/sid/cvx"
	sysCPT        = "http://www.ama-assn.org/go/cpt"
	sysUCUM       = "http://unitsofmeasure.org"
	sysNUCC       = "http://nucc.org/provider-taxonomy"
	sysNPI        = "http://hl7.org/fhir/sid/us-npi"
	sysCDCRace    = "urn:oid:2.16.840.1.113883.6.238"
	sysObsCat     = "http://terminology.hl7.org/CodeSystem/observation-category"
	sysCondCat    = "http://terminology.hl7.org/CodeSystem/condition-category"
	sysCondClin   = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	sysCondVer    = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	sysActCode    = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	sysInterp     = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	sysV2_0203    = "http://terminology.hl7.org/CodeSystem/v2-0203"
	sysV2_0074    = "http://terminology.hl7.org/CodeSystem/v2-0074"
	sysPartType   = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	sysProvAgent  = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	sysMedReqCat  = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
	sysUSCoreBase = "http://hl7.org/fhir/us/core/"
	sysLanguage   = "urn:ietf:bcp:47"
)

// dateTimeLayout always carries a numeric offset: US Core servers compare
// instants, and a dateTime without a zone is ambiguous.
const dateTimeLayout = "2006-01-02T15:04:05-07:00"

func obj(ms ...fhirjson.Member) *fhirjson.Object { return &fhirjson.Object{Members: ms} }

func kv(name string, v any) fhirjson.Member { return fhirjson.Member{Name: name, Value: v} }

func list(vs ...any) []any { return vs }

// code is one concept of a code system; tables in terms.go are built of them.
type code struct{ system, code, display string }

func (c code) coding() *fhirjson.Object {
	if c.display == "" {
		return obj(kv("system", c.system), kv("code", c.code))
	}
	return obj(kv("system", c.system), kv("code", c.code), kv("display", c.display))
}

// concept is a CodeableConcept of one coding whose text is the display.
func (c code) concept() *fhirjson.Object {
	return obj(kv("coding", list(c.coding())), kv("text", c.display))
}

// conceptText is a CodeableConcept of several codings and an explicit text.
func conceptText(text string, cs ...code) *fhirjson.Object {
	codings := make([]any, len(cs))
	for i, c := range cs {
		codings[i] = c.coding()
	}
	if text == "" {
		return obj(kv("coding", codings))
	}
	return obj(kv("coding", codings), kv("text", text))
}

func ref(typeAndID string) *fhirjson.Object { return obj(kv("reference", typeAndID)) }

func refDisplay(typeAndID, display string) *fhirjson.Object {
	return obj(kv("reference", typeAndID), kv("display", display))
}

// num formats a decimal with a fixed number of fraction digits, the way a
// laboratory reports it (precision is meaningful in FHIR decimals).
func num(v float64, prec int) json.Number {
	if v == 0 {
		v = 0 // normalise -0
	}
	return json.Number(strconv.FormatFloat(v, 'f', prec, 64))
}

func integer(n int) json.Number { return json.Number(strconv.Itoa(n)) }

// quantity is a UCUM Quantity; unit is the human-readable form.
func quantity(v float64, prec int, unit, ucum string) *fhirjson.Object {
	return obj(kv("value", num(v, prec)), kv("unit", unit), kv("system", sysUCUM), kv("code", ucum))
}

func dateTime(t time.Time) string { return t.Format(dateTimeLayout) }

func date(t time.Time) string { return t.Format("2006-01-02") }

func period(start, end time.Time) *fhirjson.Object {
	return obj(kv("start", dateTime(start)), kv("end", dateTime(end)))
}

func periodFrom(start time.Time) *fhirjson.Object { return obj(kv("start", dateTime(start))) }

// resource starts a resource with its type, id and claimed profile; extra
// is the expected number of further members, to size the slice once.
func resource(resourceType, id, profile string, extra int) *fhirjson.Object {
	o := &fhirjson.Object{Members: make([]fhirjson.Member, 0, 3+extra)}
	o.Members = append(o.Members,
		kv("resourceType", resourceType),
		kv("id", id),
		kv("meta", obj(kv("profile", list(profile)))),
	)
	return o
}

func add(o *fhirjson.Object, name string, v any) {
	o.Members = append(o.Members, fhirjson.Member{Name: name, Value: v})
}

// attachment carries a short plain-text document inline, base64 encoded as
// FHIR requires for Attachment.data.
func attachment(text, title string, created time.Time) *fhirjson.Object {
	return obj(
		kv("contentType", "text/plain"),
		kv("language", "en-US"),
		kv("data", base64.StdEncoding.EncodeToString([]byte(text))),
		kv("title", title),
		kv("creation", dateTime(created)),
	)
}

// US Core 6.1.0 profile canonicals.
const (
	profPatient        = sysUSCoreBase + "StructureDefinition/us-core-patient"
	profOrganization   = sysUSCoreBase + "StructureDefinition/us-core-organization"
	profLocation       = sysUSCoreBase + "StructureDefinition/us-core-location"
	profPractitioner   = sysUSCoreBase + "StructureDefinition/us-core-practitioner"
	profPractRole      = sysUSCoreBase + "StructureDefinition/us-core-practitionerrole"
	profEncounter      = sysUSCoreBase + "StructureDefinition/us-core-encounter"
	profProblem        = sysUSCoreBase + "StructureDefinition/us-core-condition-problems-health-concerns"
	profEncounterDx    = sysUSCoreBase + "StructureDefinition/us-core-condition-encounter-diagnosis"
	profLab            = sysUSCoreBase + "StructureDefinition/us-core-observation-lab"
	profClinicalResult = sysUSCoreBase + "StructureDefinition/us-core-observation-clinical-result"
	profScreening      = sysUSCoreBase + "StructureDefinition/us-core-observation-screening-assessment"
	profSmoking        = sysUSCoreBase + "StructureDefinition/us-core-smokingstatus"
	profBP             = sysUSCoreBase + "StructureDefinition/us-core-blood-pressure"
	profBMI            = sysUSCoreBase + "StructureDefinition/us-core-bmi"
	profHeight         = sysUSCoreBase + "StructureDefinition/us-core-body-height"
	profWeight         = sysUSCoreBase + "StructureDefinition/us-core-body-weight"
	profTemp           = sysUSCoreBase + "StructureDefinition/us-core-body-temperature"
	profHeartRate      = sysUSCoreBase + "StructureDefinition/us-core-heart-rate"
	profRespRate       = sysUSCoreBase + "StructureDefinition/us-core-respiratory-rate"
	profPulseOx        = sysUSCoreBase + "StructureDefinition/us-core-pulse-oximetry"
	profHeadCirc       = sysUSCoreBase + "StructureDefinition/us-core-head-circumference"
	profHeadCircPct    = "http://hl7.org/fhir/us/core/StructureDefinition/head-occipital-frontal-circumference-percentile"
	profPedBMI         = "http://hl7.org/fhir/us/core/StructureDefinition/pediatric-bmi-for-age"
	profPedWeight      = "http://hl7.org/fhir/us/core/StructureDefinition/pediatric-weight-for-height"
	profMedication     = sysUSCoreBase + "StructureDefinition/us-core-medication"
	profMedRequest     = sysUSCoreBase + "StructureDefinition/us-core-medicationrequest"
	profProcedure      = sysUSCoreBase + "StructureDefinition/us-core-procedure"
	profImmunization   = sysUSCoreBase + "StructureDefinition/us-core-immunization"
	profAllergy        = sysUSCoreBase + "StructureDefinition/us-core-allergyintolerance"
	profDRLab          = sysUSCoreBase + "StructureDefinition/us-core-diagnosticreport-lab"
	profDRNote         = sysUSCoreBase + "StructureDefinition/us-core-diagnosticreport-note"
	profDocRef         = sysUSCoreBase + "StructureDefinition/us-core-documentreference"
	profCarePlan       = sysUSCoreBase + "StructureDefinition/us-core-careplan"
	profCareTeam       = sysUSCoreBase + "StructureDefinition/us-core-careteam"
	profGoal           = sysUSCoreBase + "StructureDefinition/us-core-goal"
	profDevice         = sysUSCoreBase + "StructureDefinition/us-core-implantable-device"
	profProvenance     = sysUSCoreBase + "StructureDefinition/us-core-provenance"
	// US Core has no Group profile; cohorts claim the base definition.
	profGroup = "http://hl7.org/fhir/StructureDefinition/Group"
)

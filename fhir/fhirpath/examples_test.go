package fhirpath

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// TestUSCoreExamples evaluates search parameter expressions, as the
// definitions write them, on the US Core 6.1.0 examples.
func TestUSCoreExamples(t *testing.T) {
	dir := filepath.Join(defsDir, "us-core-6.1.0", "examples")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("US Core examples not found at %s: %v", dir, err)
	}
	for _, tc := range []struct {
		name, file, expr string
		want             []string
	}{
		{"race codes come from the nested extensions", "patient-example.json",
			"Patient.extension.where(url = '" + raceURL + "').extension.value.code",
			[]string{`code "2106-3"`, `code "1002-5"`, `code "2028-9"`, `code "1586-7"`, `code "2036-2"`}},
		{"gender identity is a code inside a CodeableConcept value", "patient-example.json",
			"Patient.extension.where(url='" + genderIdentityURL + "').value.coding.code", []string{`code "UNK"`}},
		{"email picks one ContactPoint of a shared parameter", "patient-example.json",
			"Patient.telecom.where(system='email') | Person.telecom.where(system='email') | Practitioner.telecom.where(system='email')",
			[]string{`ContactPoint {"system":"email","value":"amy.shaw@example.com"}`}},
		{"a living patient is not deceased", "patient-example.json",
			"Patient.deceased.exists() and Patient.deceased != false", []string{`boolean false`}},
		{"a deceased dateTime makes the patient deceased", "patient-deceased-example.json",
			"Patient.deceased.exists() and Patient.deceased != false", []string{`boolean true`}},
		{"death-date reads the dateTime choice", "patient-deceased-example.json",
			"(Patient.deceased as dateTime)", []string{`dateTime "2022-07-22"`}},
		{"component quantities of a blood pressure", "blood-pressure.json",
			"(Observation.value as Quantity) | (Observation.value as SampledData) | (Observation.component.value as Quantity) | (Observation.component.value as SampledData)",
			[]string{`Quantity {"code":"mm[Hg]","unit":"mmHg","value":109,"system":"http://unitsofmeasure.org"}`,
				`Quantity {"code":"mm[Hg]","unit":"mmHg","value":44,"system":"http://unitsofmeasure.org"}`}},
		{"observation date may be a Period", "observation-occupation.json",
			"AllergyIntolerance.recordedDate | CarePlan.period | DiagnosticReport.effective | Observation.effective | Procedure.performed",
			[]string{`Period {"start":"2015-04-24"}`}},
		{"asserted date is an extension's valueDateTime", "condition-encounter-diagnosis-example1.json",
			"Condition.extension.where(url = '" + assertedDateURL + "').valueDateTime", []string{`dateTime "2015-10-31"`}},
		{"onset and abatement dates", "condition-encounter-diagnosis-example1.json",
			"Condition.onset.as(dateTime)|Condition.onset.as(Period) | Condition.abatement.as(dateTime)|Condition.abatement.as(Period)",
			[]string{`dateTime "2015-10-31"`, `dateTime "2015-12-01"`}},
		{"medication reference of a request with a contained medication", "medicationrequest-contained-oral-axid.json",
			"(MedicationAdministration.medication as Reference) | (MedicationDispense.medication as Reference) | (MedicationRequest.medication as Reference)",
			[]string{`Reference {"reference":"#med2","display":"Nizatidine 15 MG/ML Oral Solution [Axid]"}`}},
		{"medication code is absent when the medication is a reference", "medicationrequest-contained-oral-axid.json",
			"(MedicationRequest.medication as CodeableConcept)", nil},
		{"discharge disposition inside a backbone element", "encounter-1036.json", "Encounter.hospitalization.dischargeDisposition",
			[]string{`CodeableConcept {"coding":[{"system":"http://www.nubc.org/patient-discharge","code":"01","display":"Discharged to Home"}]}`}},
		{"questionnaire canonical", "QuestionnaireResponse-phq-9-example.json", "QuestionnaireResponse.questionnaire",
			[]string{`canonical "http://hl7.org/fhir/us/core/Questionnaire/phq-9-example"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := fhirjson.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mustCompile(t, tc.expr).Eval(res)
			if err != nil {
				t.Fatal(err)
			}
			if g := show(got); !slices.Equal(g, tc.want) {
				t.Errorf("%s on %s\n got %q\nwant %q", tc.expr, tc.file, g, tc.want)
			}
		})
	}
}

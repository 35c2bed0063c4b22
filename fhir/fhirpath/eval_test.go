package fhirpath

import (
	"slices"
	"testing"
)

const (
	raceURL           = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	birthSexURL       = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
	genderIdentityURL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity"
	assertedDateURL   = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"
)

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  string
		expr string
		want []string
	}{
		// Navigation and typing.
		{"path flattens repeating elements in document order", patientJSON, "Patient.name.given",
			[]string{`string "Amy"`, `string "V."`, `string "Amy"`}},
		{"leading type name of another resource type yields nothing", patientJSON, "Observation.status", nil},
		{"Resource as leading type applies to every resource type", patientJSON, "Resource.id", []string{`id "pat1"`}},
		{"meta elements carry their datatypes", patientJSON, "Resource.meta.lastUpdated | Resource.meta.profile | Resource.meta.tag",
			[]string{`instant "2024-01-02T03:04:05Z"`, `canonical "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"`,
				`Coding {"system":"http://example.org/tags","code":"demo"}`}},
		{"multi-resource union keeps only the resource's own branch", observationJSON,
			"AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient) | Procedure.subject",
			[]string{`Reference {"reference":"Patient/pat1"}`}},
		{"choice base name yields the expansion present, typed by it", observationJSON, "Observation.value | Observation.effective",
			[]string{`Quantity {"value":120.50,"unit":"mmHg"}`, `dateTime "2024-04-17T08:56:00-05:00"`}},
		{"expanded choice name navigates to that expansion", conditionJSON,
			"Condition.extension.where(url = '" + assertedDateURL + "').valueDateTime", []string{`dateTime "2020-01-01"`}},
		{"backbone elements are typed BackboneElement", observationJSON, "Observation.component.first()",
			[]string{`BackboneElement {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":136,"unit":"mmHg"}}`}},
		{"elements inside backbone elements carry their datatypes", observationJSON, "Observation.component.code.coding.code",
			[]string{`code "8480-6"`, `code "8462-4"`}},
		{"contentReference children have the referenced element's type", questionnaireJSON, "Questionnaire.item.item",
			[]string{`BackboneElement {"linkId":"1.1","type":"string","code":[{"code":"s"}]}`}},
		{"contentReference children have the referenced element's children", questionnaireJSON, "Questionnaire.item.item.code | Questionnaire.item.item.linkId",
			[]string{`Coding {"code":"s"}`, `string "1.1"`}},
		{"inline Element structures of datatypes are navigable", medicationRequestJSON, "MedicationRequest.dosageInstruction.timing.repeat.bounds",
			[]string{`Period {"start":"2008-04-05"}`}},
		{"contained resources are typed by their resourceType", medicationRequestJSON, "MedicationRequest.contained | MedicationRequest.contained.code",
			[]string{`Medication {"resourceType":"Medication","id":"med","code":{"text":"Nizatidine"}}`, `CodeableConcept {"text":"Nizatidine"}`}},
		{"bundle entries are typed by their resourceType", bundleJSON, "Bundle.entry.resource.gender | Bundle.entry[1].resource",
			[]string{`code "male"`, `Observation {"resourceType":"Observation","id":"b","status":"final"}`}},
		{"primitive shadows are not values", patientJSON, "Patient._birthDate | Patient.birthDate", []string{`date "1987-02-20"`}},
		{"nulls standing for shadowed array items are skipped",
			`{"resourceType":"Patient","name":[{"given":["Amy",null],"_given":[null,{"extension":[{"url":"http://x","valueString":"y"}]}]}]}`,
			"Patient.name.given", []string{`string "Amy"`}},
		{"a bare type name yields the resource itself", `{"resourceType":"Patient","id":"p"}`, "Patient | Observation",
			[]string{`Patient {"resourceType":"Patient","id":"p"}`}},
		{"backtick-quoted names are member names", patientJSON, "Patient.`gender`", []string{`code "female"`}},
		{"members the R4 table lacks are untyped", `{"resourceType":"Patient","x-custom":"a"}`, "Patient.`x-custom`", []string{` "a"`}},

		// Types: as, is, ofType.
		{"as keeps a choice of the named type", observationJSON, "(Observation.effective as dateTime)",
			[]string{`dateTime "2024-04-17T08:56:00-05:00"`}},
		{"as drops a choice of another type", observationJSON, "(Observation.effective as Period)", nil},
		{"as() function selects the choice expansion", conditionJSON, "Condition.onset.as(Age) | Condition.onset.as(Range)",
			[]string{`Age {"value":40,"unit":"a"}`}},
		{"as accepts subtypes: an Age is a Quantity", conditionJSON, "Condition.onset.as(Quantity)", []string{`Age {"value":40,"unit":"a"}`}},
		{"as() picks among date choices", conditionJSON, "Condition.abatement.as(dateTime) | Condition.abatement.as(Period)",
			[]string{`Period {"start":"2021-01-01"}`}},
		{"as filters a repeating element", observationJSON, "(Observation.component.value as Quantity)",
			[]string{`Quantity {"value":136,"unit":"mmHg"}`}},
		{"navigation continues after a parenthesized as", observationJSON, "(Observation.component.value as CodeableConcept).text",
			[]string{`string "low"`}},
		{"ofType filters by type", observationJSON, "Observation.component.value.ofType(CodeableConcept)",
			[]string{`CodeableConcept {"text":"low"}`}},
		{"is tests the type of a single item", observationJSON, "Observation.value is Quantity", []string{`boolean true`}},
		{"is is false for another type", observationJSON, "Observation.value is Period", []string{`boolean false`}},
		{"is accepts a FHIR-qualified type", observationJSON, "Observation.value.is(FHIR.Quantity)", []string{`boolean true`}},
		{"is follows the primitive hierarchy: a code is a string", patientJSON, "Patient.gender is System.String", []string{`boolean true`}},
		{"is on nothing is nothing", patientJSON, "Patient.photo is Attachment", nil},

		// resolve().
		{"resolve() is reads the type of a relative reference", observationJSON, "Observation.subject.where(resolve() is Patient)",
			[]string{`Reference {"reference":"Patient/pat1"}`}},
		{"resolve() is excludes references to other types", conditionJSON, "Condition.subject.where(resolve() is Patient)", nil},
		{"resolve() is reads an absolute URL with a version", patientJSON, "Patient.generalPractitioner.where(resolve() is Practitioner)",
			[]string{`Reference {"reference":"https://fhir.example.org/r4/Practitioner/prac1/_history/3"}`}},
		{"resolve() falls back to Reference.type", patientJSON, "Patient.generalPractitioner.where(resolve() is PractitionerRole)",
			[]string{`Reference {"reference":"urn:uuid:6c9b5a4e-2c4e-4a0e-9f59-0d6c3b1e2f10","type":"PractitionerRole"}`}},
		{"resolve() follows a contained reference", observationJSON, "Observation.performer.resolve().name", []string{`string "Acme Lab"`}},
		{"resolve() types a contained reference", observationJSON, "Observation.performer.where(resolve() is Organization)",
			[]string{`Reference {"reference":"#lab"}`}},
		{"resolve() through a Reference choice", medicationRequestJSON, "(MedicationRequest.medication as Reference).resolve().code",
			[]string{`CodeableConcept {"text":"Nizatidine"}`}},

		// Extensions.
		{"extension(url) selects extensions by url", patientJSON, "Patient.extension('" + birthSexURL + "').value",
			[]string{`code "F"`}},
		{"nested extension values are typed by their expansion", patientJSON,
			"Patient.extension.where(url = '" + raceURL + "').extension.value.code", []string{`code "2106-3"`}},
		{"extension value navigates into its datatype", patientJSON,
			"Patient.extension.where(url='" + genderIdentityURL + "').value.coding.code", []string{`code "446141000124107"`}},

		// Functions.
		{"exists() and != on a boolean choice", patientJSON, "Patient.deceased.exists() and Patient.deceased != false", []string{`boolean false`}},
		{"deceased dateTime counts as deceased", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01"}`,
			"Patient.deceased.exists() and Patient.deceased != false", []string{`boolean true`}},
		{"absent deceased is not deceased", `{"resourceType":"Patient"}`,
			"Patient.deceased.exists() and Patient.deceased != false", []string{`boolean false`}},
		{"exists(criteria) tests each item", patientJSON, "Patient.telecom.exists(system = 'email') | Patient.telecom.exists(system = 'fax')",
			[]string{`boolean true`, `boolean false`}},
		{"where keeps the items whose criteria hold", patientJSON, "Patient.telecom.where(system='phone')",
			[]string{`ContactPoint {"system":"phone","value":"555-0100"}`}},
		{"$this is the item where() tests", patientJSON, "Patient.name.given.where($this = 'V.')", []string{`string "V."`}},
		{"empty() is true on nothing", patientJSON, "Patient.photo.empty()", []string{`boolean true`}},
		{"not() negates", patientJSON, "Patient.active.not()", []string{`boolean false`}},
		{"first(), last() and [n] pick items", patientJSON, "Patient.name.first().family | Patient.name.last().family | Patient.identifier[1].value",
			[]string{`string "Shaw"`, `string "Baxter"`, `string "999"`}},
		{"index past the end is nothing", patientJSON, "Patient.identifier[5]", nil},
		{"count() counts", patientJSON, "Patient.name.count()", []string{`integer 2`}},
		{"hasValue() is true for a primitive", patientJSON, "Patient.gender.hasValue()", []string{`boolean true`}},

		// Operators and literals.
		{"= compares decimals numerically", observationJSON, "Observation.value.value = 120.5", []string{`boolean true`}},
		{"= tells apart decimals that round to the same float", patientJSON, "0.1 = 0.10000000000000000001", []string{`boolean false`}},
		{"= tells apart different numbers", observationJSON, "Observation.value.value = 120.49", []string{`boolean false`}},
		{"!= compares strings", patientJSON, "Patient.gender != 'male'", []string{`boolean true`}},
		{"= with an empty side is empty", patientJSON, "Patient.photo = 'x'", nil},
		{"= compares strings exactly", organizationJSON, "Organization.name = Organization.alias.first()", []string{`boolean true`}},
		{"= compares complex values member by member, in any order",
			`{"resourceType":"Patient","name":[{"family":"A","given":["B"]},{"given":["B"],"family":"A"}]}`,
			"Patient.name.first() = Patient.name.last()", []string{`boolean true`}},
		{"= finds complex values that differ", patientJSON, "Patient.name.first() = Patient.name.last()", []string{`boolean false`}},
		{"union removes duplicates", organizationJSON, "Organization.name | Organization.alias",
			[]string{`string "Acme"`, `string "ACME Corp"`}},
		{"or is true when either side is", patientJSON, "Patient.photo.exists() or Patient.active", []string{`boolean true`}},
		{"or with an unknown side and a false one is unknown", patientJSON, "Patient.photo = 'x' or Patient.active = false", nil},
		{"and with a false side is false even if the other is unknown", patientJSON, "Patient.photo = 'x' and false", []string{`boolean false`}},
		{"xor", patientJSON, "true xor Patient.active", []string{`boolean false`}},
		{"literals and {}", patientJSON, "'a' | 2 | 2.50 | true | {}", []string{`string "a"`, `integer 2`, `decimal 2.50`, `boolean true`}},
		{"%resource is the resource being indexed", patientJSON, "%resource.id", []string{`id "pat1"`}},
		{"comments are ignored", patientJSON, "Patient.gender // the gender\n /* block */", []string{`code "female"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(mustParse(t, tc.res))
			if err != nil {
				t.Fatal(err)
			}
			if g := show(got); !slices.Equal(g, tc.want) {
				t.Errorf("%s\n got %q\nwant %q", tc.expr, g, tc.want)
			}
		})
	}
}

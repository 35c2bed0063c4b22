package validate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

type want struct{ code, path string }

const ext = `{"url":"http://example.org/x","valueString":"y"}`

// TestResourceReportsEachErrorClass pins the code and exact path of every
// class of structural error, with a valid neighbour for the tricky rules.
func TestResourceReportsEachErrorClass(t *testing.T) {
	tests := []struct {
		name string
		json string
		want []want
	}{
		{"valid patient", `{"resourceType":"Patient","id":"p-1.a","active":true,"name":[{"family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25","deceasedBoolean":false,"multipleBirthInteger":2}`, nil},

		// not a resource
		{"unknown resourceType", `{"resourceType":"Patientt"}`, []want{{"invalid", "resourceType"}}},
		{"missing resourceType", `{"id":"x"}`, []want{{"invalid", "resourceType"}}},
		{"abstract resourceType", `{"resourceType":"DomainResource"}`, []want{{"invalid", "resourceType"}}},
		{"resourceType not a string", `{"resourceType":7}`, []want{{"invalid", "resourceType"}}},

		// unknown elements
		{"unknown element at the root", `{"resourceType":"Patient","foo":1}`, []want{{"structure", "Patient.foo"}}},
		{"unknown element in a datatype", `{"resourceType":"Patient","name":[{"family":"x"},{"family":"y","foo":"z"}]}`, []want{{"structure", "Patient.name[1].foo"}}},
		{"unknown element in a backbone", `{"resourceType":"Patient","contact":[{"gender":"male","nickname":"z"}]}`, []want{{"structure", "Patient.contact[0].nickname"}}},
		{"fhir_comments is not R4", `{"resourceType":"Patient","fhir_comments":["hi"]}`, []want{{"structure", "Patient.fhir_comments"}}},
		{"resourceType inside a datatype", `{"resourceType":"Patient","name":[{"resourceType":"HumanName","family":"x"}]}`, []want{{"structure", "Patient.name[0].resourceType"}}},
		{"choice with a type it does not allow", `{"resourceType":"Patient","deceasedString":"yes"}`, []want{{"structure", "Patient.deceasedString"}}},
		{"bare choice name", `{"resourceType":"Patient","deceased":true}`, []want{{"structure", "Patient.deceased"}}},

		// cardinality
		{"missing required elements", `{"resourceType":"Observation","id":"o"}`, []want{{"required", "Observation.status"}, {"required", "Observation.code"}}},
		{"missing required in a backbone", `{"resourceType":"Patient","link":[{"type":"seealso"}]}`, []want{{"required", "Patient.link[0].other"}}},
		{"missing required choice", `{"resourceType":"Questionnaire","status":"active","item":[{"linkId":"1","type":"display","enableWhen":[{"question":"q","operator":"exists"}]}]}`, []want{{"required", "Questionnaire.item[0].enableWhen[0].answer[x]"}}},
		{"array where one value belongs", `{"resourceType":"Patient","gender":["male"]}`, []want{{"structure", "Patient.gender"}}},
		{"single value where an array belongs", `{"resourceType":"Patient","name":{"family":"x"}}`, []want{{"structure", "Patient.name"}}},
		{"single primitive where an array belongs", `{"resourceType":"Patient","name":[{"given":"Peter"}]}`, []want{{"structure", "Patient.name[0].given"}}},

		// choices
		{"choice given twice", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","valueQuantity":{"value":1}}`, []want{{"structure", "Observation.valueQuantity"}}},
		{"choice value with its own shadow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueString":{"extension":[` + ext + `]}}`, nil},
		{"choice value with another type's shadow", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","_valueDateTime":{"extension":[` + ext + `]}}`, []want{{"structure", "Observation.valueDateTime"}}},

		// JSON type of primitives
		{"boolean as a string", `{"resourceType":"Patient","active":"true"}`, []want{{"value", "Patient.active"}}},
		{"integer as a string", `{"resourceType":"Patient","multipleBirthInteger":"2"}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"decimal as a string", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"1.5"}}`, []want{{"value", "Observation.valueQuantity.value"}}},
		{"code as a number", `{"resourceType":"Patient","maritalStatus":{"coding":[{"code":5}]}}`, []want{{"value", "Patient.maritalStatus.coding[0].code"}}},
		{"string as true/false", `{"resourceType":"Patient","name":[{"family":true}]}`, []want{{"value", "Patient.name[0].family"}}},
		{"object where a primitive belongs", `{"resourceType":"Patient","gender":{"value":"male"}}`, []want{{"structure", "Patient.gender"}}},
		{"string where an object belongs", `{"resourceType":"Patient","maritalStatus":"married"}`, []want{{"structure", "Patient.maritalStatus"}}},

		// numeric ranges
		{"integer above 32 bits", `{"resourceType":"Patient","multipleBirthInteger":2147483648}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"integer with a fraction", `{"resourceType":"Patient","multipleBirthInteger":1.5}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"integer with an exponent", `{"resourceType":"Patient","multipleBirthInteger":1e2}`, []want{{"value", "Patient.multipleBirthInteger"}}},
		{"smallest integer", `{"resourceType":"Patient","multipleBirthInteger":-2147483648}`, nil},
		{"positiveInt zero", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/1"},"dosageInstruction":[{"timing":{"repeat":{"count":0}}}]}`, []want{{"value", "MedicationRequest.dosageInstruction[0].timing.repeat.count"}}},
		{"unsignedInt negative", `{"resourceType":"Bundle","type":"searchset","total":-1}`, []want{{"value", "Bundle.total"}}},
		{"decimal with exponent", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.5e-3}}`, nil},

		// lexical forms
		{"id with a space", `{"resourceType":"Patient","id":"bad id"}`, []want{{"value", "Patient.id"}}},
		{"id longer than 64", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, []want{{"value", "Patient.id"}}},
		{"element id is any string", `{"resourceType":"Patient","name":[{"id":"any text here","family":"x"}]}`, nil},
		{"month 13", `{"resourceType":"Patient","birthDate":"2020-13-01"}`, []want{{"value", "Patient.birthDate"}}},
		{"day not in the month", `{"resourceType":"Patient","birthDate":"2021-02-29"}`, []want{{"value", "Patient.birthDate"}}},
		{"leap day", `{"resourceType":"Patient","birthDate":"2020-02-29"}`, nil},
		{"dateTime with time but no zone", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`, []want{{"value", "Patient.deceasedDateTime"}}},
		{"instant without seconds", `{"resourceType":"Patient","meta":{"lastUpdated":"2020-01-01T10:00Z"}}`, []want{{"value", "Patient.meta.lastUpdated"}}},
		{"time past midnight", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/1"},"dosageInstruction":[{"timing":{"repeat":{"timeOfDay":["08:00:00","25:00:00"]}}}]}`, []want{{"value", "MedicationRequest.dosageInstruction[0].timing.repeat.timeOfDay[1]"}}},
		{"code with doubled whitespace", `{"resourceType":"Patient","gender":"ma  le"}`, []want{{"value", "Patient.gender"}}},
		{"uri with whitespace", `{"resourceType":"Patient","implicitRules":"http://x y"}`, []want{{"value", "Patient.implicitRules"}}},
		{"base64 not in groups of four", `{"resourceType":"Patient","photo":[{"data":"abc"}]}`, []want{{"value", "Patient.photo[0].data"}}},
		{"oid without urn prefix", `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueOid":"1.2.3"}]}`, []want{{"value", "Patient.extension[0].valueOid"}}},
		{"uuid in upper case", `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueUuid":"urn:uuid:C757873D-EC9A-4326-A141-556F43239520"}]}`, []want{{"value", "Patient.extension[0].valueUuid"}}},
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`, []want{{"value", "Patient.name[0].family"}}},
		{"empty markdown", `{"resourceType":"Questionnaire","status":"active","description":""}`, []want{{"value", "Questionnaire.description"}}},
		{"empty uri", `{"resourceType":"Patient","implicitRules":""}`, []want{{"value", "Patient.implicitRules"}}},
		{"narrative that is not a div", `{"resourceType":"Patient","text":{"status":"generated","div":"<p>hi</p>"}}`, []want{{"value", "Patient.text.div"}}},

		// nulls and `_name` shadows
		{"null single value", `{"resourceType":"Patient","gender":null}`, []want{{"structure", "Patient.gender"}}},
		{"null in an array without shadow", `{"resourceType":"Patient","name":[{"given":["a",null]}]}`, []want{{"structure", "Patient.name[0].given[1]"}}},
		{"null aligned with a shadow", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"extension":[` + ext + `]}]}]}`, nil},
		{"null on both sides", `{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,null]}]}`, []want{{"structure", "Patient.name[0].given[1]"}}},
		{"shadow longer than its values", `{"resourceType":"Patient","name":[{"given":["a"],"_given":[null,{"id":"x"}]}]}`, []want{{"structure", "Patient.name[0].given"}}},
		{"null in a complex array", `{"resourceType":"Patient","name":[null]}`, []want{{"structure", "Patient.name[0]"}}},
		{"shadow alone with extension", `{"resourceType":"Observation","_status":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]},"code":{"text":"x"}}`, nil},
		{"shadow alone without extension", `{"resourceType":"Patient","_birthDate":{"id":"b"}}`, []want{{"structure", "Patient.birthDate"}}},
		{"shadow of a complex element", `{"resourceType":"Patient","_name":{"id":"x"}}`, []want{{"structure", "Patient._name"}}},
		{"shadow of an id", `{"resourceType":"Patient","id":"a","_id":{"extension":[` + ext + `]}}`, []want{{"structure", "Patient._id"}}},
		{"unknown element in a shadow", `{"resourceType":"Patient","birthDate":"2000-01-01","_birthDate":{"value":"x"}}`, []want{{"structure", "Patient.birthDate.value"}}},
		{"single shadow for a repeating primitive", `{"resourceType":"Patient","name":[{"given":["a"],"_given":{"id":"x"}}]}`, []want{{"structure", "Patient.name[0].given"}}},
		{"extension on xhtml", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>","_div":{"extension":[` + ext + `]}}}`, []want{{"structure", "Patient.text.div.extension"}}},
		{"shadow content is validated", `{"resourceType":"Patient","birthDate":"2000-01-01","_birthDate":{"extension":[{"valueString":"x"}]}}`, []want{{"required", "Patient.birthDate.extension[0].url"}}},

		// empty values
		{"empty object", `{"resourceType":"Patient","maritalStatus":{}}`, []want{{"structure", "Patient.maritalStatus"}}},
		{"empty array", `{"resourceType":"Patient","name":[]}`, []want{{"structure", "Patient.name"}}},
		{"empty resource", `{"resourceType":"Patient"}`, nil},

		// extensions
		{"extension without url", `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`, []want{{"required", "Patient.extension[0].url"}}},
		{"modifierExtension without url", `{"resourceType":"Patient","modifierExtension":[{"valueBoolean":true}]}`, []want{{"required", "Patient.modifierExtension[0].url"}}},
		{"extension value of a complex type", `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]}}]}`, nil},
		{"extension value of an unknown type", `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","valueFoo":"x"}]}`, []want{{"structure", "Patient.extension[0].valueFoo"}}},
		{"nested extension", `{"resourceType":"Patient","extension":[{"url":"http://example.org/x","extension":[{"url":"a","valueDate":"2020-02-30"}]}]}`, []want{{"value", "Patient.extension[0].extension[0].valueDate"}}},
		{"extension url with whitespace", `{"resourceType":"Patient","extension":[{"url":"http://example.org/ x","valueString":"y"}]}`, []want{{"value", "Patient.extension[0].url"}}},

		// nested resources
		{"contained resource checked by its type", `{"resourceType":"Patient","contained":[{"resourceType":"Practitioner","id":"pr","foo":1}]}`, []want{{"structure", "Patient.contained[0].foo"}}},
		{"contained resource without resourceType", `{"resourceType":"Patient","contained":[{"id":"pr"}]}`, []want{{"invalid", "Patient.contained[0].resourceType"}}},
		{"contained resource not an object", `{"resourceType":"Patient","contained":["x"]}`, []want{{"structure", "Patient.contained[0]"}}},
		{"bundle entry resource", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient","gender":["male"]}}]}`, []want{{"structure", "Bundle.entry[1].resource.gender"}}},
		{"resource in a bundle in a bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation"}}]}}]}`, []want{{"required", "Bundle.entry[0].resource.entry[0].resource.status"}, {"required", "Bundle.entry[0].resource.entry[0].resource.code"}}},
		{"parameters resource", `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","active":1}}]}`, []want{{"value", "Parameters.parameter[0].resource.active"}}},

		// contentReference
		{"nested questionnaire item", `{"resourceType":"Questionnaire","status":"active","item":[{"linkId":"1","type":"group","item":[{"type":"string"}]}]}`, []want{{"required", "Questionnaire.item[0].item[0].linkId"}}},
		{"bundle entry link", `{"resourceType":"Bundle","type":"collection","entry":[{"link":[{"url":"http://x"}]}]}`, []want{{"required", "Bundle.entry[0].link[0].relation"}}},
		{"parameter part", `{"resourceType":"Parameters","parameter":[{"name":"p","part":[{"name":"q","foo":1}]}]}`, []want{{"structure", "Parameters.parameter[0].part[0].foo"}}},

		// several issues come in document order
		{"issues in document order", `{"resourceType":"Patient","gender":"x y  z","foo":1,"name":[{"family":""}]}`, []want{{"value", "Patient.gender"}, {"structure", "Patient.foo"}, {"value", "Patient.name[0].family"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := fhirjson.Parse([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			got := Resource(r)
			if !sameIssues(got, tt.want) {
				t.Errorf("got %s\nwant %v", describeIssues(got), tt.want)
			}
			for _, is := range got {
				if is.Message == "" {
					t.Errorf("issue at %s has no message", is.Path)
				}
			}
		})
	}
}

func sameIssues(got []Issue, want []want) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Code != want[i].code || got[i].Path != want[i].path {
			return false
		}
	}
	return true
}

func describeIssues(issues []Issue) string {
	var b strings.Builder
	for _, is := range issues {
		fmt.Fprintf(&b, "\n  %s %s: %s", is.Code, is.Path, is.Message)
	}
	return b.String()
}

func TestMessagesExplainTheProblem(t *testing.T) {
	tests := []struct {
		json, want string
	}{
		{`{"resourceType":"Patient","name":[{"foo":1}]}`, `unknown element "foo" in HumanName`},
		{`{"resourceType":"Patient","contact":[{"foo":1}]}`, `unknown element "foo" in Patient.contact`},
		{`{"resourceType":"Observation","status":"final"}`, `missing required element "code" of Observation`},
		{`{"resourceType":"Patient","birthDate":"2020-13-01"}`, `"2020-13-01" is not a valid date: expected a date: YYYY, YYYY-MM or YYYY-MM-DD`},
		{`{"resourceType":"Patient","active":"true"}`, `boolean must be JSON true or false, not a string`},
		{`{"resourceType":"Observation","status":"final","code":{},"valueString":"a","valueBoolean":true}`, `value[x] is given twice, as "valueString" and "valueBoolean"`},
		{`{"resourceType":"Resource"}`, `Resource is abstract`},
		{`{"resourceType":"Patient","id":"` + strings.Repeat("x", 100) + `!"}`, `"` + strings.Repeat("x", 64) + `"…`},
	}
	for _, tt := range tests {
		r, err := fhirjson.Parse([]byte(tt.json))
		if err != nil {
			t.Fatal(err)
		}
		got := describeIssues(Resource(r))
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %s\nwant a message containing %s", tt.json, got, tt.want)
		}
	}
}

func TestIsResourceTypeAcceptsOnlyInstantiableTypes(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Patient", true}, {"Bundle", true}, {"Parameters", true}, {"Binary", true},
		{"Resource", false}, {"DomainResource", false}, {"HumanName", false},
		{"patient", false}, {"", false}, {"MetadataResource", false},
	}
	for _, tt := range tests {
		if got := IsResourceType(tt.name); got != tt.want {
			t.Errorf("IsResourceType(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestResourceSurvivesHandBuiltTrees feeds trees fhirjson.Parse would never
// produce: nil objects, Go values of other types, and a cycle.
func TestResourceSurvivesHandBuiltTrees(t *testing.T) {
	cyclic := &fhirjson.Object{Members: []fhirjson.Member{{Name: "url", Value: "http://x"}}}
	cyclic.Members = append(cyclic.Members, fhirjson.Member{Name: "extension", Value: []any{cyclic}})
	// Each level lists the next one twice: 2^100 paths over 100 objects.
	shared := &fhirjson.Object{Members: []fhirjson.Member{{Name: "url", Value: "http://x"}}}
	for range 100 {
		shared = obj("url", "http://x", "extension", []any{shared, shared})
	}
	var manyIssues []any
	for range maxIssues + 10 {
		manyIssues = append(manyIssues, obj("foo", 1))
	}
	tests := []struct {
		name string
		r    *fhirjson.Object
		want want // the first issue
	}{
		{"nil resource", nil, want{"invalid", ""}},
		{"nil object value", obj("resourceType", "Patient", "maritalStatus", (*fhirjson.Object)(nil)), want{"structure", "Patient.maritalStatus"}},
		{"nil object in an array", obj("resourceType", "Patient", "name", []any{(*fhirjson.Object)(nil)}), want{"structure", "Patient.name[0]"}},
		{"nil shadow object", obj("resourceType", "Patient", "_birthDate", (*fhirjson.Object)(nil)), want{"structure", "Patient.birthDate"}},
		{"Go int", obj("resourceType", "Patient", "multipleBirthInteger", 3), want{"value", "Patient.multipleBirthInteger"}},
		{"Go map", obj("resourceType", "Patient", "maritalStatus", map[string]any{"text": "x"}), want{"structure", "Patient.maritalStatus"}},
		{"cyclic extension", obj("resourceType", "Patient", "extension", []any{cyclic}), want{"structure", ""}},
		{"shared subtrees", obj("resourceType", "Patient", "extension", []any{shared}), want{"structure", ""}},
		{"thousands of issues", obj("resourceType", "Patient", "name", manyIssues), want{"structure", "Patient.name[0].foo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resource(tt.r)
			if len(got) == 0 {
				t.Fatal("no issue reported")
			}
			if got[0].Code != tt.want.code || (tt.want.path != "" && got[0].Path != tt.want.path) {
				t.Errorf("first issue %+v, want %v", got[0], tt.want)
			}
			if len(got) > maxIssues+1 {
				t.Errorf("%d issues, want at most %d", len(got), maxIssues+1)
			}
		})
	}
}

func obj(kv ...any) *fhirjson.Object {
	o := &fhirjson.Object{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.Members = append(o.Members, fhirjson.Member{Name: kv[i].(string), Value: kv[i+1]})
	}
	return o
}

// FuzzResource checks that no parsed document makes the validator panic.
func FuzzResource(f *testing.F) {
	f.Add(`{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"x"}]}]}`)
	f.Add(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Observation","valueQuantity":{"value":1e400}}}]}`)
	f.Add(`{"resourceType":"Questionnaire","item":[{"item":[{"item":[{"_linkId":[null]}]}]}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		if r, err := fhirjson.Parse([]byte(doc)); err == nil {
			Resource(r)
		}
	})
}

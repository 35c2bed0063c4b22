package schema

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// loadGraphQL parses and validates the committed schema with gqlparser, the
// parser gqlgen uses.
func loadGraphQL(t *testing.T) *ast.Schema {
	t.Helper()
	sdl, err := os.ReadFile("fhir.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	s, gerr := gqlparser.LoadSchema(&ast.Source{Name: "fhir.graphqls", Input: string(sdl)})
	if gerr != nil {
		t.Fatalf("schema does not validate: %v", gerr)
	}
	return s
}

func field(t *testing.T, s *ast.Schema, typ, name string) *ast.FieldDefinition {
	t.Helper()
	def := s.Types[typ]
	if def == nil {
		t.Fatalf("no type %s", typ)
	}
	f := def.Fields.ForName(name)
	if f == nil {
		t.Fatalf("%s has no field %s", typ, name)
	}
	return f
}

func TestGraphQLSchemaTypesFollowFHIRElements(t *testing.T) {
	s := loadGraphQL(t)
	tests := []struct{ typ, field, want string }{
		{"Patient", "name", "[HumanName]"},
		{"Patient", "id", "ID"},
		{"Patient", "birthDate", "date"},
		{"Patient", "contained", "[Resource]"},
		{"Observation", "valueQuantity", "Quantity"},
		{"Observation", "valueCodeableConcept", "CodeableConcept"},
		{"Observation", "component", "[ObservationComponent]"},
		{"ObservationComponent", "valueQuantity", "Quantity"},
		{"Quantity", "value", "decimal"},
		{"Questionnaire", "item", "[QuestionnaireItem]"},
		{"QuestionnaireItem", "item", "[QuestionnaireItem]"},
		{"Timing", "repeat", "TimingRepeat"},
		{"MedicationRequest", "dosageInstruction", "[Dosage]"},
		{"Extension", "valueReference", "Reference"},
		{"Reference", "resource", "Resource"},
		{"Patient", "managingOrganization", "OrganizationReference"},
		{"OrganizationReference", "resource", "Organization"},
		{"Encounter", "participant", "[EncounterParticipant]"},
		{"EncounterParticipant", "individual", "PractitionerOrPractitionerRoleOrRelatedPersonReference"},
		{"PractitionerOrPractitionerRoleOrRelatedPersonReference", "resource", "PractitionerOrPractitionerRoleOrRelatedPerson"},
		{"Patient", "usCoreRace", "USCoreRace"},
		{"USCoreRace", "ombCategory", "[Coding]"},
		{"Patient", "usCoreBirthSex", "String"},
		{"Patient", "usCoreGenderIdentity", "[CodeableConcept]"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"."+tt.field, func(t *testing.T) {
			if got := field(t, s, tt.typ, tt.field).Type.String(); got != tt.want {
				t.Errorf("%s.%s is %s, want %s", tt.typ, tt.field, got, tt.want)
			}
		})
	}
	u := s.Types["PractitionerOrPractitionerRoleOrRelatedPerson"]
	if u == nil || u.Kind != ast.Union || !slices.Equal(u.Types, []string{"Practitioner", "PractitionerRole", "RelatedPerson"}) {
		t.Errorf("individual's union is %+v", u)
	}
	if !slices.Contains(s.GetPossibleTypes(s.Types["Resource"]), s.Types["Practitioner"]) {
		t.Error("Practitioner does not implement Resource")
	}
	for _, name := range []string{"HumanName", "Identifier", "CodeableConcept", "Coding", "Period", "Range", "Ratio", "Address",
		"ContactPoint", "Attachment", "Annotation", "Meta", "Narrative", "SampledData"} {
		if s.Types[name] == nil || s.Types[name].Kind != ast.Object {
			t.Errorf("datatype %s is not an object type", name)
		}
	}
}

func TestGraphQLSchemaDescribesUSCoreConstraints(t *testing.T) {
	s := loadGraphQL(t)
	tests := []struct {
		typ, field string
		want       []string
	}{
		{"Patient", "name", []string{"A name associated with the patient", "US Core must-support", "cardinality 1..*", "us-core-patient 4.0.0, 6.1.0", "must-support of sub-element: family"}},
		{"Patient", "gender", []string{"binding required to http://hl7.org/fhir/ValueSet/administrative-gender"}},
		{"Observation", "code", []string{"us-core-laboratory-test-codes (us-core-observation-lab 6.1.0)"}},
		{"Patient", "usCoreRace", []string{"US Core Race Extension", "4.0.0, 6.1.0"}},
		{"Patient", "usCoreGenderIdentity", []string{"US Core 6.1.0 extension"}},
	}
	for _, tt := range tests {
		d := field(t, s, tt.typ, tt.field).Description
		for _, w := range tt.want {
			if !strings.Contains(d, w) {
				t.Errorf("%s.%s description %q lacks %q", tt.typ, tt.field, d, w)
			}
		}
	}
	if d := field(t, s, "Patient", "maritalStatus").Description; strings.Contains(d, "US Core") {
		t.Errorf("Patient.maritalStatus, which US Core leaves alone, says %q", d)
	}
}

func TestGraphQLQueryTakesEverySearchParameter(t *testing.T) {
	s := loadGraphQL(t)
	reg := Search()
	for _, res := range reg.Resources {
		for _, suffix := range []string{"List", "Connection"} {
			f := field(t, s, "Query", res.Type+suffix)
			var want []string
			for _, p := range res.Params {
				want = append(want, strings.ReplaceAll(p.Code, "-", "_"))
			}
			want = append(want, "_count", "_sort", "_cursor")
			for _, name := range want {
				if f.Arguments.ForName(name) == nil {
					t.Errorf("%s%s lacks argument %s", res.Type, suffix, name)
				}
			}
		}
		if got := field(t, s, "Query", res.Type).Type.String(); got != res.Type {
			t.Errorf("Query.%s returns %s", res.Type, got)
		}
	}
	// The FHIR name is recoverable from every argument name.
	paging := map[string]bool{"_count": true, "_sort": true, "_cursor": true}
	for _, f := range s.Query.Fields {
		res := reg.Resource(strings.TrimSuffix(strings.TrimSuffix(f.Name, "List"), "Connection"))
		if res == nil || f.Name == res.Type {
			continue
		}
		for _, a := range f.Arguments {
			code := a.Name[:1] + strings.ReplaceAll(a.Name[1:], "_", "-")
			if !paging[a.Name] && res.Param(code) == nil {
				t.Errorf("%s argument %s maps back to %s, not a parameter of %s", f.Name, a.Name, code, res.Type)
			}
		}
	}
	list := field(t, s, "Query", "PatientList")
	for _, arg := range []string{"birthdate", "family", "death_date", "_id", "_count"} {
		if list.Arguments.ForName(arg) == nil {
			t.Errorf("PatientList lacks %s", arg)
		}
	}
	if got := list.Type.String(); got != "[Patient]" {
		t.Errorf("PatientList returns %s", got)
	}
	conn := field(t, s, "Query", "ObservationConnection")
	if conn.Type.String() != "ObservationConnection" {
		t.Errorf("ObservationConnection returns %s", conn.Type)
	}
	for _, f := range []string{"count", "first", "next", "previous", "edges"} {
		field(t, s, "ObservationConnection", f)
	}
	if got := field(t, s, "ObservationEdge", "resource").Type.String(); got != "Observation" {
		t.Errorf("edge resource is %s", got)
	}
}

func TestGraphQLPatientHasReverseLists(t *testing.T) {
	s := loadGraphQL(t)
	obs := field(t, s, "Patient", "ObservationList")
	ref := obs.Arguments.ForName("_reference")
	if ref == nil || ref.Type.String() != "String!" || obs.Arguments.ForName("category") == nil {
		t.Errorf("Patient.ObservationList arguments %v", obs.Arguments)
	}
	if s.Types["Patient"].Fields.ForName("ValueSetList") != nil {
		t.Error("Patient lists ValueSets, which never reference a patient")
	}
}

package schema

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The expectations below are those of the US Core summary
// (fhir-defs/uscore-summary.md), read from the published definitions.

func TestSearchParamsCarryTheirDefinitionAndExpectations(t *testing.T) {
	tests := []struct {
		name, typ, code string
		url, source     string
		expr            string // "" to skip
		want            Expectations
	}{
		{"US Core replaces R4's definition", "Patient", "name", "http://hl7.org/fhir/us/core/SearchParameter/us-core-patient-name", SourceUSCore, "Patient.name", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"US Core parameter new in 6.1.0", "Condition", "asserted-date", "http://hl7.org/fhir/us/core/SearchParameter/us-core-condition-asserted-date", SourceUSCore,
			"Condition.extension.where(url = 'http://hl7.org/fhir/StructureDefinition/condition-assertedDate').valueDateTime", Expectations{USCore610: ExpectMay}},
		{"expectation raised to SHALL", "PractitionerRole", "practitioner", "http://hl7.org/fhir/us/core/SearchParameter/us-core-practitionerrole-practitioner", SourceUSCore, "PractitionerRole.practitioner", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"defined but not listed", "Patient", "race", "http://hl7.org/fhir/us/core/SearchParameter/us-core-race", SourceUSCore, "", nil},
		{"US Core _id replaces the common one", "DocumentReference", "_id", "http://hl7.org/fhir/us/core/SearchParameter/us-core-documentreference-id", SourceUSCore, "DocumentReference.id", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"_id listed by 6.1.0 only", "Practitioner", "_id", "http://hl7.org/fhir/us/core/SearchParameter/us-core-practitioner-id", SourceUSCore, "Practitioner.id", Expectations{USCore610: ExpectShould}},
		{"common parameter where US Core defines none", "Goal", "_lastUpdated", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", SourceR4, "Resource.meta.lastUpdated", nil},
		{"R4 parameter US Core leaves alone", "Observation", "value-quantity", "http://hl7.org/fhir/SearchParameter/Observation-value-quantity", SourceR4, "", nil},
		{"Group for bulk export", "Group", "member", "http://hl7.org/fhir/SearchParameter/Group-member", SourceR4, "Group.member.entity", nil},
		{"AuditEvent, written by the server", "AuditEvent", "patient", "http://hl7.org/fhir/SearchParameter/AuditEvent-patient", SourceR4,
			"AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)", nil},
		{"AuditEvent subtype", "AuditEvent", "subtype", "http://hl7.org/fhir/SearchParameter/AuditEvent-subtype", SourceR4, "AuditEvent.subtype", nil},
	}
	reg := Search()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := reg.Resource(tt.typ)
			if res == nil {
				t.Fatalf("no %s in the registry", tt.typ)
			}
			p := res.Param(tt.code)
			if p == nil {
				t.Fatalf("%s has no parameter %s", tt.typ, tt.code)
			}
			if p.URL != tt.url || p.Source != tt.source {
				t.Errorf("%s %s is %s from %s, want %s from %s", tt.typ, tt.code, p.URL, p.Source, tt.url, tt.source)
			}
			if tt.expr != "" && p.Expression != tt.expr {
				t.Errorf("%s %s expression %q, want %q", tt.typ, tt.code, p.Expression, tt.expr)
			}
			if !maps.Equal(p.Expect, tt.want) {
				t.Errorf("%s %s expectations %v, want %v", tt.typ, tt.code, p.Expect, tt.want)
			}
		})
	}
}

func TestSearchParamsCarryUSCoreValueExpectations(t *testing.T) {
	reg := Search()
	t.Run("intent takes several values, SHALL", func(t *testing.T) {
		p := reg.Resource("MedicationRequest").Param("intent")
		if p.MultipleOr == nil || !*p.MultipleOr || p.MultipleOrExpect != ExpectShall {
			t.Errorf("MedicationRequest intent multipleOr %s %q, want true SHALL", boolString(p.MultipleOr), p.MultipleOrExpect)
		}
	})
	t.Run("practitioner chains identifier and name, SHALL", func(t *testing.T) {
		p := reg.Resource("PractitionerRole").Param("practitioner")
		want := []Chain{{"identifier", ExpectShall}, {"name", ExpectShall}}
		if !slices.Equal(p.Chains, want) {
			t.Errorf("chains %v, want %v", p.Chains, want)
		}
	})
	t.Run("date comparators gt ge lt le SHALL", func(t *testing.T) {
		p := reg.Resource("Observation").Param("date")
		var shall []string
		for _, c := range p.Comparators {
			if c.Expect == ExpectShall {
				shall = append(shall, c.Code)
			}
		}
		if !slices.Equal(shall, []string{"gt", "ge", "lt", "le"}) || p.MultipleAndExpect != ExpectShould {
			t.Errorf("SHALL comparators %v, multipleAnd %q; want gt ge lt le, SHOULD", shall, p.MultipleAndExpect)
		}
	})
	t.Run("R4 composite states it takes one value", func(t *testing.T) {
		p := reg.Resource("Observation").Param("code-value-quantity")
		if p.MultipleOr == nil || *p.MultipleOr || len(p.Components) != 2 || p.Components[0].Code != "code" || p.Components[1].Code != "value-quantity" {
			t.Errorf("code-value-quantity multipleOr %s components %+v", boolString(p.MultipleOr), p.Components)
		}
	})
}

func boolString(b *bool) string {
	if b == nil {
		return "unstated"
	}
	return strconv.FormatBool(*b)
}

func TestSearchCombinationsPerVersion(t *testing.T) {
	tests := []struct {
		typ    string
		params string
		want   Expectations
	}{
		{"Observation", "patient+category", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"Observation", "patient+code", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"Observation", "patient+category+date", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"Condition", "patient+category", Expectations{USCore400: ExpectShould, USCore610: ExpectShall}},
		{"Condition", "patient+category+encounter", Expectations{USCore610: ExpectShould}},
		{"Encounter", "date+patient", Expectations{USCore400: ExpectShall, USCore610: ExpectShall}},
		{"Patient", "death-date+family", Expectations{USCore610: ExpectShould}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.params, func(t *testing.T) {
			res := Search().Resource(tt.typ)
			i := slices.IndexFunc(res.Combinations, func(c Combination) bool { return strings.Join(c.Params, "+") == tt.params })
			if i < 0 {
				t.Fatalf("%s lacks combination %s", tt.typ, tt.params)
			}
			if got := res.Combinations[i].Expect; !maps.Equal(got, tt.want) {
				t.Errorf("%s %s = %v, want %v", tt.typ, tt.params, got, tt.want)
			}
		})
	}
}

func TestSearchIncludesPerVersion(t *testing.T) {
	tests := []struct {
		typ, value string
		rev        bool
		want       Expectations
		target     string
	}{
		{"AllergyIntolerance", "Provenance:target", true, Expectations{USCore400: ExpectShall, USCore610: ExpectShall}, ""},
		{"QuestionnaireResponse", "Provenance:target", true, Expectations{USCore610: ExpectShould}, ""},
		{"MedicationRequest", "MedicationRequest:medication", false, Expectations{USCore400: ExpectShould, USCore610: ExpectShould}, ""},
		{"CareTeam", "CareTeam:participant:Practitioner", false, Expectations{USCore610: ExpectShould}, "Practitioner"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.value, func(t *testing.T) {
			res := Search().Resource(tt.typ)
			list := res.Includes
			if tt.rev {
				list = res.RevIncludes
			}
			i := slices.IndexFunc(list, func(in Include) bool { return in.Value == tt.value })
			if i < 0 {
				t.Fatalf("%s lacks %s", tt.typ, tt.value)
			}
			if in := list[i]; !maps.Equal(in.Expect, tt.want) || in.TargetType != tt.target {
				t.Errorf("%s %s = %v target %q, want %v target %q", tt.typ, tt.value, in.Expect, in.TargetType, tt.want, tt.target)
			}
		})
	}
}

func TestSearchResourcesPerVersion(t *testing.T) {
	reg := Search()
	listed := map[string]int{}
	for _, res := range reg.Resources {
		for v := range res.Expect {
			listed[v]++
		}
	}
	if listed[USCore400] != 21 || listed[USCore610] != 31 {
		t.Errorf("types listed: %v, want 21 in 4.0.0 and 31 in 6.1.0", listed)
	}
	if reg.Resource("Account") != nil {
		t.Error("Account, in no US Core CapabilityStatement, has an entry")
	}
	if g := reg.Resource("Group"); g == nil || len(g.Expect) != 0 {
		t.Errorf("Group = %+v, want an entry no version lists", g)
	}
	if a := reg.Resource("AuditEvent"); a == nil || len(a.Expect) != 0 || !slices.Equal(a.PatientCompartment, []string{"patient"}) {
		t.Errorf("AuditEvent = %+v, want an entry no version lists, in the patient compartment by patient", a)
	}
	qr := reg.Resource("QuestionnaireResponse")
	if !maps.Equal(qr.Expect, Expectations{USCore610: ExpectShould}) {
		t.Errorf("QuestionnaireResponse expectations %v, want 6.1.0 SHOULD only", qr.Expect)
	}
	obs := reg.Resource("Observation")
	profiles := map[string]int{}
	for _, p := range obs.Profiles {
		for v := range p.Expect {
			profiles[v]++
		}
	}
	if profiles[USCore400] != 15 || profiles[USCore610] != 22 {
		t.Errorf("Observation profiles per version %v, want 15 and 22", profiles)
	}
	dr := reg.Resource("DiagnosticReport")
	if i := slices.IndexFunc(dr.Interactions, func(c VersionedCode) bool { return c.Code == "create" }); i < 0 || dr.Interactions[i].Expect[USCore610] != ExpectShall {
		t.Errorf("DiagnosticReport interactions %v, want create SHALL", dr.Interactions)
	}
	docref := reg.Resource("DocumentReference").Operations
	if len(docref) != 1 || docref[0].Name != "docref" || docref[0].Definition != "http://hl7.org/fhir/us/core/OperationDefinition/docref" || docref[0].Expect[USCore400] != ExpectShall {
		t.Errorf("DocumentReference operations %+v, want $docref SHALL", docref)
	}
	for _, v := range []string{USCore400, USCore610} {
		cs := reg.Version(v)
		if cs == nil || cs.URL != "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server" || cs.FHIRVersion != "4.0.1" {
			t.Errorf("version %s = %+v", v, cs)
		}
	}
}

func TestSearchParamsApplyToTheirType(t *testing.T) {
	tests := []struct {
		name, typ, code string
		typeExpr        string
		modifiers       []string
	}{
		{"shared parameter narrowed to the type", "AllergyIntolerance", "identifier", "AllergyIntolerance.identifier", []string{"missing", "text", "not", "above", "below", "in", "not-in", "ofType"}},
		{"common parameter kept whole", "Goal", "_id", "Resource.id", []string{"missing", "text", "not", "above", "below", "in", "not-in"}},
		{"hierarchy reference walks above and below", "Location", "partof", "Location.partOf", []string{"missing", "type", "identifier", "above", "below"}},
		{"plain reference", "Observation", "subject", "Observation.subject", []string{"missing", "type", "identifier"}},
		{"string", "Patient", "family", "Patient.name.family", []string{"missing", "exact", "contains"}},
		{"composite takes none", "Observation", "code-value-quantity", "Observation", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Search().Resource(tt.typ).Param(tt.code)
			if p.TypeExpression != tt.typeExpr || !slices.Equal(p.Modifiers, tt.modifiers) {
				t.Errorf("%s %s: type expression %q modifiers %v, want %q %v", tt.typ, tt.code, p.TypeExpression, p.Modifiers, tt.typeExpr, tt.modifiers)
			}
		})
	}
}

func TestSearchRegistryIsUsableByTheEngine(t *testing.T) {
	reg := Search()
	for _, res := range reg.Resources {
		if !slices.IsSortedFunc(res.Params, func(a, b SearchParam) int { return strings.Compare(a.Code, b.Code) }) {
			t.Errorf("%s params are not sorted by code", res.Type)
		}
		for _, c := range reg.Common {
			if res.Param(c.Code) == nil {
				t.Errorf("%s lacks common parameter %s", res.Type, c.Code)
			}
		}
		for _, p := range res.Params {
			if p.Expression == "" || p.TypeExpression == "" {
				t.Errorf("%s %s has no expression", res.Type, p.Code)
			}
			if p.Type == ParamReference && len(p.Targets) == 0 {
				t.Errorf("%s %s is a reference without targets", res.Type, p.Code)
			}
		}
		for _, c := range res.Combinations {
			for _, code := range c.Params {
				if res.Param(code) == nil {
					t.Errorf("%s combination %v names unknown %s", res.Type, c.Params, code)
				}
			}
		}
		for _, in := range slices.Concat(res.Includes, res.RevIncludes) {
			src := reg.Resource(in.SourceType)
			if src == nil || src.Param(in.Param) == nil || src.Param(in.Param).Type != ParamReference {
				t.Errorf("%s %s follows no reference parameter", res.Type, in.Value)
			}
		}
	}
	if got := len(reg.Common); got != 6 {
		t.Errorf("%d common parameters, want 6", got)
	}
}

// TestCapabilityStatementSearchParamsResolve reads the CapabilityStatements
// themselves, so a parameter the generator dropped is caught.
func TestCapabilityStatementSearchParamsResolve(t *testing.T) {
	for _, v := range []string{USCore400, USCore610} {
		path := filepath.Join(defsDir, "us-core-"+v, "capabilitystatement-us-core-server.json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("US Core definitions not found: %v", err)
		}
		var cs struct {
			Rest []struct {
				Resource []struct {
					Type        string `json:"type"`
					SearchParam []struct {
						Name       string `json:"name"`
						Definition string `json:"definition"`
						Extension  []struct {
							ValueCode Expectation `json:"valueCode"`
						} `json:"extension"`
					} `json:"searchParam"`
				} `json:"resource"`
			} `json:"rest"`
		}
		if err := json.Unmarshal(data, &cs); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range cs.Rest[0].Resource {
			for _, sp := range r.SearchParam {
				n++
				var want Expectation
				if len(sp.Extension) > 0 {
					want = sp.Extension[0].ValueCode
				}
				p := Search().Resource(r.Type).Param(sp.Name)
				switch {
				case p == nil:
					t.Errorf("%s: %s %s has no parameter", v, r.Type, sp.Name)
				case p.URL != sp.Definition || p.Expression == "":
					t.Errorf("%s: %s %s resolves to %s with expression %q, want %s", v, r.Type, sp.Name, p.URL, p.Expression, sp.Definition)
				case !p.Expect.Listed(v) || p.Expect[v] != want:
					t.Errorf("%s: %s %s expectation %q, want %q", v, r.Type, sp.Name, p.Expect[v], want)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s lists no search parameters", path)
		}
	}
}

func TestParseSearchRejectsMalformedRegistry(t *testing.T) {
	tests := []struct{ name, data string }{
		{"type listed twice", `{"resources":[{"type":"Patient"},{"type":"Patient"}]}`},
		{"parameter listed twice", `{"resources":[{"type":"Patient","params":[{"code":"name"},{"code":"name"}]}]}`},
		{"include without parameter", `{"resources":[{"type":"Patient","revIncludes":[{"value":"Provenance"}]}]}`},
		{"not JSON", `{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseSearch([]byte(tt.data)); err == nil {
				t.Fatal("parseSearch accepted it")
			}
		})
	}
}

// The SHALL searches are the ones the US Core summary lists as SHALL for
// either version: spot checks from both ends, and the total.
func TestShallSearchesListBothVersions(t *testing.T) {
	got := Search().ShallSearches()
	has := func(typ string, params ...string) bool {
		return slices.ContainsFunc(got, func(s RequiredSearch) bool { return s.Type == typ && slices.Equal(s.Params, params) })
	}
	for _, want := range []RequiredSearch{
		{"Patient", []string{"_id"}},
		{"Patient", []string{"birthdate", "name"}},
		{"Observation", []string{"patient", "category", "date"}},
		{"MedicationRequest", []string{"patient", "intent", "status"}},
		{"Location", []string{"address"}},               // 4.0.0 SHALL
		{"ServiceRequest", []string{"patient", "code"}}, // 6.1.0 only
	} {
		if !has(want.Type, want.Params...) {
			t.Errorf("%s?%v is not listed", want.Type, want.Params)
		}
	}
	if has("Observation", "patient") || has("Patient", "gender") {
		t.Error("a search expected with SHOULD or only in a combination is listed")
	}
	if len(got) != 51 {
		t.Errorf("%d SHALL searches, want the 51 of the two CapabilityStatements", len(got))
	}
}

package main

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// r4Common returns R4's Resource-* parameters the registry requires.
func r4Common() []searchParameter {
	var sps []searchParameter
	for _, code := range commonCodes {
		name := strings.TrimPrefix(code, "_")
		sps = append(sps, searchParameter{URL: "http://hl7.org/fhir/SearchParameter/Resource-" + name, Version: "4.0.1",
			Code: code, Base: []string{"Resource"}, Type: "token", Expression: "Resource." + name})
	}
	return sps
}

func r4Param(typ, code, kind, expr string, targets ...string) searchParameter {
	return searchParameter{URL: "http://hl7.org/fhir/SearchParameter/" + typ + "-" + code, Version: "4.0.1",
		Code: code, Base: []string{typ}, Type: kind, Expression: expr, Target: targets}
}

func usCoreParam(version, typ, code, kind, expr string, targets ...string) searchParameter {
	id := strings.ToLower(typ) + "-" + code
	return searchParameter{URL: "http://hl7.org/fhir/us/core/SearchParameter/us-core-" + id, Version: version,
		Code: code, Base: []string{typ}, Type: kind, Expression: expr, Target: targets}
}

func expect(code string) []extension { return []extension{{URL: expectationURL, ValueCode: code}} }

func combination(exp string, params ...string) extension {
	ext := extension{URL: combinationURL, Extension: expect(exp)}
	for _, p := range params {
		ext.Extension = append(ext.Extension, extension{URL: "required", ValueString: p})
	}
	return ext
}

func release(version string, params []searchParameter, resources ...csResource) usCoreRelease {
	cs := capabilityStatement{URL: "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server", Version: version}
	cs.Rest = []csRest{{Mode: "server", Resource: resources}}
	return usCoreRelease{version: version, params: params, statement: cs}
}

func listed(sp searchParameter, exp string) csSearchParam {
	return csSearchParam{Name: sp.Code, Definition: sp.URL, Type: sp.Type, Extension: expect(exp)}
}

func TestBuildSearchKeepsTheNewestUSCoreDefinition(t *testing.T) {
	r4 := append(r4Common(),
		r4Param("Patient", "name", "string", "Patient.name"),
		r4Param("Patient", "gender", "token", "Patient.gender"))
	old := usCoreParam("4.0.0", "Patient", "name", "string", "Patient.name.text")
	cur := usCoreParam("6.1.0", "Patient", "name", "string", "Patient.name")
	race := usCoreParam("6.1.0", "Patient", "race", "token", "Patient.extension.value")
	tbl, err := buildSearch(r4, []usCoreRelease{
		release("4.0.0", []searchParameter{old}, csResource{Type: "Patient", Extension: expect("SHALL"), SearchParam: []csSearchParam{listed(old, "SHOULD")}}),
		release("6.1.0", []searchParameter{cur, race}, csResource{Type: "Patient", Extension: expect("SHALL"), SearchParam: []csSearchParam{listed(cur, "SHALL")}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	patient := tbl.resources[slices.IndexFunc(tbl.resources, func(r *resourceOut) bool { return r.Type == "Patient" })]
	tests := []struct {
		code, url, source, version, expr string
		want                             expectations
	}{
		{"name", cur.URL, sourceUSCore, "6.1.0", "Patient.name", expectations{"4.0.0": "SHOULD", "6.1.0": "SHALL"}},
		{"gender", "http://hl7.org/fhir/SearchParameter/Patient-gender", sourceR4, "4.0.1", "Patient.gender", nil},
		{"race", race.URL, sourceUSCore, "6.1.0", "Patient.extension.value", nil},
	}
	for _, tt := range tests {
		p := patient.param(tt.code)
		if p == nil {
			t.Errorf("Patient lacks %s", tt.code)
			continue
		}
		if p.URL != tt.url || p.Source != tt.source || p.SourceVersion != tt.version || p.Expression != tt.expr || !maps.Equal(p.Expect, tt.want) {
			t.Errorf("Patient %s = %+v, want %s from %s %s, %q, %v", tt.code, p, tt.url, tt.source, tt.version, tt.expr, tt.want)
		}
	}
	if g := slices.IndexFunc(tbl.resources, func(r *resourceOut) bool { return r.Type == "Group" }); g < 0 {
		t.Error("Group, needed by bulk export, is missing")
	}
	if a := slices.IndexFunc(tbl.resources, func(r *resourceOut) bool { return r.Type == "AuditEvent" }); a < 0 || tbl.resources[a].Expect != nil {
		t.Error("AuditEvent, which the server writes, is missing or carries US Core expectations")
	}
}

func TestBuildSearchMergesWhatBothVersionsList(t *testing.T) {
	r4 := append(r4Common(),
		r4Param("Condition", "patient", "reference", "Condition.subject", "Patient"),
		r4Param("Condition", "category", "token", "Condition.category"),
		r4Param("Provenance", "target", "reference", "Provenance.target", "Condition", "Patient"))
	cond := func(exp string, order ...string) csResource {
		return csResource{Type: "Condition", Extension: append(expect("SHALL"), combination(exp, order...)),
			SearchRevInclude: []string{"Provenance:target"}, SearchRevIncludeExt: []extended{{expect("SHALL")}},
			ReferencePolicy: []string{"resolves"}}
	}
	tbl, err := buildSearch(r4, []usCoreRelease{
		release("4.0.0", nil, cond("SHOULD", "patient", "category"), csResource{Type: "Provenance"}),
		release("6.1.0", nil, cond("SHALL", "category", "patient"), csResource{Type: "Provenance"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := tbl.resources[slices.IndexFunc(tbl.resources, func(r *resourceOut) bool { return r.Type == "Condition" })]
	if len(r.Combinations) != 1 || !maps.Equal(r.Combinations[0].Expect, expectations{"4.0.0": "SHOULD", "6.1.0": "SHALL"}) ||
		!slices.Equal(r.Combinations[0].Params, []string{"patient", "category"}) {
		t.Errorf("combinations %+v, want one patient+category SHOULD then SHALL", r.Combinations)
	}
	if len(r.RevIncludes) != 1 || !maps.Equal(r.RevIncludes[0].Expect, expectations{"4.0.0": "SHALL", "6.1.0": "SHALL"}) {
		t.Errorf("revIncludes %+v", r.RevIncludes)
	}
	// A policy listed without an expectation is still listed.
	if len(r.ReferencePolicies) != 1 || !maps.Equal(r.ReferencePolicies[0].Expect, expectations{"4.0.0": "", "6.1.0": ""}) {
		t.Errorf("referencePolicies %+v", r.ReferencePolicies)
	}
	if !maps.Equal(r.Expect, expectations{"4.0.0": "SHALL", "6.1.0": "SHALL"}) {
		t.Errorf("resource expectations %v", r.Expect)
	}
}

func TestBuildSearchGivesListedCommonParameterAnEntry(t *testing.T) {
	common := r4Common()
	id := common[slices.IndexFunc(common, func(sp searchParameter) bool { return sp.Code == "_id" })]
	tbl, err := buildSearch(common, []usCoreRelease{
		release("6.1.0", nil, csResource{Type: "Goal", SearchParam: []csSearchParam{listed(id, "SHOULD")}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	goal := tbl.resources[slices.IndexFunc(tbl.resources, func(r *resourceOut) bool { return r.Type == "Goal" })]
	if p := goal.param("_id"); p == nil || p.URL != id.URL || !maps.Equal(p.Expect, expectations{"6.1.0": "SHOULD"}) {
		t.Errorf("Goal _id = %+v, want R4's with 6.1.0 SHOULD", p)
	}
	if p := tbl.commonParam("_id"); p.Expect != nil {
		t.Errorf("the common _id took Goal's expectation: %v", p.Expect)
	}
}

func TestBuildSearchRejectsWhatTheEngineCannotInterpret(t *testing.T) {
	patient := r4Param("Patient", "name", "string", "Patient.name")
	other := usCoreParam("6.1.0", "Patient", "name", "string", "Patient.name")
	tests := []struct {
		name string
		r4   []searchParameter
		res  csResource
		want string
	}{
		{"listed parameter without definition", []searchParameter{}, csResource{Type: "Patient", SearchParam: []csSearchParam{listed(other, "SHALL")}}, "has no definition"},
		{"listed definition not the one kept", []searchParameter{patient}, csResource{Type: "Patient", SearchParam: []csSearchParam{listed(other, "SHALL")}}, "but the table keeps"},
		{"combination of an unknown parameter", []searchParameter{patient}, csResource{Type: "Patient", Extension: []extension{combination("SHALL", "name", "nickname")}}, "unknown parameter nickname"},
		{"reference without targets", []searchParameter{r4Param("Patient", "link", "reference", "Patient.link.other")}, csResource{Type: "Patient"}, "has no targets"},
		{"parameter without expression", []searchParameter{r4Param("Patient", "name", "string", "")}, csResource{Type: "Patient"}, "has no expression"},
		{"include through a string", []searchParameter{patient}, csResource{Type: "Patient", SearchInclude: []string{"Patient:name"}}, "follows no reference"},
		{"include to a type not targeted", []searchParameter{r4Param("Patient", "link", "reference", "Patient.link.other", "Patient")}, csResource{Type: "Patient", SearchInclude: []string{"Patient:link:Group"}}, "target outside"},
		{"unknown parameter type", []searchParameter{r4Param("Patient", "name", "text", "Patient.name")}, csResource{Type: "Patient"}, "unknown search parameter type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildSearch(append(r4Common(), tt.r4...), []usCoreRelease{release("6.1.0", nil, tt.res)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("buildSearch error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := buildSearch(nil, nil); err == nil || !strings.Contains(err.Error(), "Resource SearchParameter _id") {
		t.Errorf("buildSearch without R4's common parameters: %v", err)
	}
}

func TestTypeExpressionKeepsTheTypesBranches(t *testing.T) {
	tests := []struct{ name, expr, typ, want string }{
		{"one branch of many", "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Condition.subject", "CarePlan", "CarePlan.subject.where(resolve() is Patient)"},
		{"several branches of the type", "Observation.code | Procedure.code | Observation.component.code", "Observation", "Observation.code | Observation.component.code"},
		{"parenthesised branches", "(Observation.value as Quantity) | (Condition.onset as Age)", "Observation", "(Observation.value as Quantity)"},
		{"type name prefix of another", "Medication.code | MedicationRequest.medication", "Medication", "Medication.code"},
		{"bar inside a string", "Patient.name.where(text = 'a | b') | Person.name", "Patient", "Patient.name.where(text = 'a | b')"},
		{"all branches are the type's", "(Observation.value as Quantity) | (Observation.value as SampledData)", "Observation", "(Observation.value as Quantity) | (Observation.value as SampledData)"},
		{"no branch of the type", "Resource.id", "Patient", "Resource.id"},
		{"looser operator keeps the whole", "Patient.deceased.exists() and Patient.deceased != false | Person.x", "Patient", "Patient.deceased.exists() and Patient.deceased != false | Person.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := typeExpression(tt.expr, tt.typ); got != tt.want {
				t.Errorf("typeExpression(%q, %s) = %q, want %q", tt.expr, tt.typ, got, tt.want)
			}
		})
	}
}

func TestParamModifiersFollowTheType(t *testing.T) {
	tests := []struct {
		name string
		sp   searchParameter
		typ  string
		want []string
	}{
		{"identifier token takes of-type", r4Param("Patient", "identifier", "token", "Patient.identifier"), "Patient", []string{"missing", "text", "not", "above", "below", "in", "not-in", "ofType"}},
		{"other token does not", r4Param("Patient", "gender", "token", "Patient.gender"), "Patient", []string{"missing", "text", "not", "above", "below", "in", "not-in"}},
		{"self reference walks the hierarchy", r4Param("Location", "partof", "reference", "Location.partOf", "Location"), "Location", []string{"missing", "type", "identifier", "above", "below"}},
		{"declared modifiers win", searchParameter{Code: "x", Type: "token", Expression: "Patient.x", Modifier: []string{"text"}}, "Patient", []string{"text"}},
		{"composite takes none", r4Param("Observation", "combo", "composite", "Observation"), "Observation", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := paramFrom(&tt.sp, tt.typ, sourceR4, "4.0.1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Modifiers, tt.want) {
				t.Errorf("modifiers %v, want %v", p.Modifiers, tt.want)
			}
		})
	}
}

func TestParamFromReadsUSCoreExpectationExtensions(t *testing.T) {
	yes := true
	sp := usCoreParam("6.1.0", "PractitionerRole", "practitioner", "reference", "PractitionerRole.practitioner", "Practitioner")
	sp.Chain, sp.ChainExt = []string{"identifier", "name"}, []extended{{expect("SHALL")}, {expect("SHOULD")}}
	sp.Comparator, sp.ComparatorExt = []string{"eq", "gt"}, []extended{{expect("MAY")}}
	sp.MultipleOr, sp.MultipleOrExt = &yes, &extended{expect("SHALL")}
	p, err := paramFrom(&sp, "PractitionerRole", sourceUSCore, "6.1.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Chains, []chainOut{{"identifier", "SHALL"}, {"name", "SHOULD"}}) {
		t.Errorf("chains %v", p.Chains)
	}
	// A shorter shadow array leaves the rest without expectation.
	if !slices.Equal(p.Comparators, []coded{{"eq", "MAY"}, {"gt", ""}}) {
		t.Errorf("comparators %v", p.Comparators)
	}
	if p.MultipleOr == nil || !*p.MultipleOr || p.MultipleOrExpect != "SHALL" || p.MultipleAnd != nil {
		t.Errorf("multipleOr %v %q multipleAnd %v", p.MultipleOr, p.MultipleOrExpect, p.MultipleAnd)
	}
}

func TestSearchEncodeWritesOneItemPerLine(t *testing.T) {
	r4 := append(r4Common(), r4Param("Patient", "name", "string", "Patient.name | Person.name"))
	tbl, err := buildSearch(r4, []usCoreRelease{release("6.1.0", nil, csResource{Type: "Patient", Extension: expect("SHALL")})})
	if err != nil {
		t.Fatal(err)
	}
	out := string(tbl.encode())
	for _, want := range []string{
		"\n" + `{"type":"Patient","exp":{"6.1.0":"SHALL"},` + "\n" + `"params":[` + "\n",
		"\n" + `{"code":"name","type":"string","url":"http://hl7.org/fhir/SearchParameter/Patient-name","source":"r4","sourceVersion":"4.0.1","expr":"Patient.name | Person.name","typeExpr":"Patient.name","modifiers":["missing","exact","contains"]}]}` + "\n",
		"\n" + `{"type":"Group"}` + ",\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	if again := string(tbl.encode()); again != out {
		t.Error("encoding the same table twice differs")
	}
}

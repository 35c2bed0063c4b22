package search

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"testing"
)

func TestParseIncludeForms(t *testing.T) {
	cases := []struct {
		typ, key, value string
		rev             bool
		want            Include
	}{
		{"MedicationRequest", "_include", "MedicationRequest:medication", false, Include{Source: "MedicationRequest", Param: "medication"}},
		{"Observation", "_include", "Observation:subject:Patient", false, Include{Source: "Observation", Param: "subject", Target: "Patient"}},
		{"Observation", "_include", "*", false, Include{Source: "*", Param: "*"}},
		{"Observation", "_include", "Observation:*", false, Include{Source: "Observation", Param: "*"}},
		{"MedicationRequest", "_include:iterate", "Medication:*", false, Include{Source: "Medication", Param: "*", Iterate: true}},
		{"Observation", "_include:iterate", "Patient:general-practitioner", false, Include{Source: "Patient", Param: "general-practitioner", Iterate: true}},
		{"Observation", "_include:recurse", "Patient:organization", false, Include{Source: "Patient", Param: "organization", Iterate: true}},
		{"Observation", "_revinclude", "Provenance:target", true, Include{Source: "Provenance", Param: "target"}},
		{"Observation", "_revinclude", "*", true, Include{Source: "*", Param: "*"}},
		{"Patient", "_revinclude:iterate", "Provenance:target", true, Include{Source: "Provenance", Param: "target", Iterate: true}},
	}
	for _, c := range cases {
		got, err := ParseInclude(c.typ, c.key, c.value, c.rev)
		if err != nil || got != c.want {
			t.Errorf("%s %s=%s: got %+v, %v; want %+v", c.typ, c.key, c.value, got, err, c.want)
		}
	}
}

func TestParseIncludeRefusesMalformedValues(t *testing.T) {
	cases := []struct {
		typ, key, value string
		rev             bool
	}{
		{"Observation", "_include", "Observation", false},
		{"Observation", "_include", "Observation:nonsense", false},
		{"Observation", "_include", "Observation:status", false},
		{"Observation", "_include", "Patient:organization", false}, // not from Observation, not :iterate
		{"Observation", "_include", "Observation:subject:Medication", false},
		{"Observation", "_include", "Observation:*:Patient", false},
		{"Observation", "_include", "Nonsense:*", false},
		{"Observation", "_include", "**", false},
		{"Observation", "_include:deep", "Observation:subject", false},
		{"Observation", "_include", "a:b:c:d", false},
		{"Observation", "_revinclude", "Provenance", true},
		{"Observation", "_revinclude", "Provenance:target:Patient", true},
		{"Observation", "_revinclude", "Encounter:patient", true}, // never points at an Observation
	}
	for _, c := range cases {
		_, err := ParseInclude(c.typ, c.key, c.value, c.rev)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != c.key {
			t.Errorf("%s %s=%s: got %v, want a ParamError naming %s", c.typ, c.key, c.value, err, c.key)
		}
	}
}

func TestIncludeWildcardsExpandToReferenceParameters(t *testing.T) {
	all := Include{Source: "*", Param: "*"}
	follow := all.Follow("MedicationRequest")
	var params []string
	for _, in := range follow {
		if in.Source != "MedicationRequest" || in.Target != "" {
			t.Errorf("_include=* on MedicationRequest gave %+v", in)
		}
		params = append(params, in.Param)
	}
	for _, want := range []string{"medication", "patient", "subject", "requester", "encounter"} {
		if !slices.Contains(params, want) {
			t.Errorf("_include=* on MedicationRequest follows %v, missing %s", params, want)
		}
	}
	if slices.Contains(params, "status") {
		t.Errorf("_include=* follows a token parameter: %v", params)
	}
	if got := (Include{Source: "Observation", Param: "*"}).Follow("Patient"); got != nil {
		t.Errorf("Observation:* applied to a Patient: %+v", got)
	}
	rev := all.Reverse("Observation")
	if !slices.Contains(rev, Include{Source: "Provenance", Param: "target"}) {
		t.Errorf("_revinclude=* on Observation misses Provenance:target: %+v", rev)
	}
	for _, in := range rev {
		p := lookup(in.Source, in.Param)
		if p == nil || !slices.Contains(p.Targets, "Observation") {
			t.Errorf("_revinclude=* on Observation gave %+v, which cannot point at an Observation", in)
		}
	}
	if got := (Include{Source: "Provenance", Param: "target", Target: "Patient"}).Reverse("Observation"); got != nil {
		t.Errorf("a reverse include targeting Patient applied to an Observation: %+v", got)
	}
}

func TestCompileReadsIncludeModifiers(t *testing.T) {
	params, _ := url.ParseQuery("_include:iterate=MedicationRequest:medication&_revinclude:iterate=Provenance:target&_include=*")
	s, err := Compile("MedicationRequest", params, Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	wantInc := []Include{{Source: "*", Param: "*"}, {Source: "MedicationRequest", Param: "medication", Iterate: true}}
	wantRev := []Include{{Source: "Provenance", Param: "target", Iterate: true}}
	if !reflect.DeepEqual(s.Includes, wantInc) || !reflect.DeepEqual(s.RevIncludes, wantRev) {
		t.Errorf("includes %+v, revincludes %+v", s.Includes, s.RevIncludes)
	}
	if len(s.Used["_include:iterate"]) != 1 {
		t.Errorf("the self link loses _include:iterate: %v", s.Used)
	}
	for _, q := range []string{"_count:iterate=1", "_sort:x=_id"} {
		params, _ := url.ParseQuery(q)
		if _, err := Compile("MedicationRequest", params, Options{}); err == nil {
			t.Errorf("%s: a modifier on a result parameter was accepted", q)
		}
	}
}

package fhir

import (
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestTypeFiltersSplitAtTheNextResourceType(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Observation?category=laboratory", []string{"Observation?category=laboratory"}},
		{"Observation?status=final,amended", []string{"Observation?status=final,amended"}},
		{"Observation?status=final,Condition?clinical-status=active", []string{"Observation?status=final", "Condition?clinical-status=active"}},
		{"Observation?code=A,Nonsense?x=1", []string{"Observation?code=A,Nonsense?x=1"}},
	}
	for _, tc := range tests {
		if got := splitTypeFilters(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitTypeFilters(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestKickoffAcceptsFHIRJSONOnly(t *testing.T) {
	tests := []struct {
		accept string
		want   bool
	}{
		{"", true},
		{"application/fhir+json", true},
		{"application/fhir+json; charset=utf-8", true},
		{"application/json", true},
		{"*/*", true},
		{"application/fhir+xml", false},
		{"application/fhir+xml, application/fhir+json;q=0", false},
		{"text/html", false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/fhir/$export", nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		if got := acceptsFHIRJSON(r); got != tc.want {
			t.Errorf("Accept %q: %v, want %v", tc.accept, got, tc.want)
		}
	}
}

func TestListParametersAreDedupedAndBounded(t *testing.T) {
	distinct := func(n int) []string {
		var vs []string
		for i := range n {
			vs = append(vs, "T"+strconv.Itoa(i))
		}
		return vs
	}
	many := func(n int) []string { return []string{strings.Join(distinct(n), ",")} }
	tests := []struct {
		name string
		in   []string
		want []string
		err  bool
	}{
		{"a comma list, trimmed", []string{"Patient, Observation ,"}, []string{"Patient", "Observation"}, false},
		{"repeats within and across values", []string{"Patient,Patient", "Observation,Patient"}, []string{"Patient", "Observation"}, false},
		{"as many distinct values as allowed", many(maxListValues), distinct(maxListValues), false},
		{"one distinct value too many", many(maxListValues + 1), nil, true},
		{"repeats do not count", append(many(maxListValues), many(maxListValues)...), distinct(maxListValues), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitList("_type", tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("%d values accepted", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %d values %.80q, want %d", len(got), got, len(tc.want))
			}
		})
	}
}

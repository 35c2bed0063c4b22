package fhir

import (
	"net/http/httptest"
	"slices"
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

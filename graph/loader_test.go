package graph

import (
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

func TestPointsAtFindsTheParentsThroughTheParameter(t *testing.T) {
	in, err := search.ParseInclude("Patient", "_revinclude", "Observation:subject:Patient", true)
	if err != nil {
		t.Fatal(err)
	}
	list := reverseList{include: in}
	parents := map[string][]store.Resource{"Patient/1": nil, "Patient/12": nil, "Patient/a.b": nil}
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"relative", `{"resourceType":"Observation","subject":{"reference":"Patient/12"}}`, []string{"Patient/12"}},
		{"absolute under the base", `{"resourceType":"Observation","subject":{"reference":"http://x/fhir/Patient/a.b"}}`, []string{"Patient/a.b"}},
		{"versioned", `{"resourceType":"Observation","subject":{"reference":"Patient/1/_history/3"}}`, []string{"Patient/1"}},
		// Two parents named: only the parameter's reference counts.
		{"another parent in another element", `{"resourceType":"Observation","subject":{"reference":"Patient/1"},"performer":[{"reference":"Patient/12"}]}`, []string{"Patient/1"}},
		{"a parent's name in text", `{"resourceType":"Observation","subject":{"reference":"Patient/12"},"note":[{"text":"see \"Patient/1\""}]}`, []string{"Patient/12"}},
		// (No parent named: parsed, and the caller keeps only parents.)
		{"a longer id is not a parent", `{"resourceType":"Observation","subject":{"reference":"Patient/123"}}`, []string{"Patient/123"}},
	} {
		got := pointsAt(list, []byte(c.body), parents, "http://x/fhir")
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

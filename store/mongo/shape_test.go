package mongo

import (
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func TestIndexFieldsKeepSystemQualifiedKeys(t *testing.T) {
	idx, rng := indexFields([]store.IndexValue{
		{Param: "code", Value: "1234-5", System: "http://loinc.org"},
		{Param: "status", Value: "final"},
		{Param: "date", Low: "2024-01-01T00:00:00.000Z", High: "2024-01-01T23:59:59.999Z"},
	})
	want := []string{"code=1234-5", "code=http://loinc.org|1234-5", "status=final"}
	if !slices.Equal(idx, want) {
		t.Errorf("idx = %q, want %q", idx, want)
	}
	if len(rng) != 1 || rng[0].Key != "date" {
		t.Errorf("rng = %v", rng)
	}
}

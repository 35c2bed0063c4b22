package mongo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// TestChainTooBroad: a chain or reverse chain matching more resources than
// fit one $in list is refused as invalid, not run partially.
func TestChainTooBroad(t *testing.T) {
	s := openTest(t, Options{MaxChainIDs: 3})
	ctx := context.Background()
	for i := range 4 {
		pid, oid := fmt.Sprintf("p%d", i), fmt.Sprintf("o%d", i)
		writes := []store.Write{
			{Op: store.OpCreate, Type: "Patient", ID: pid, Stamp: stampAs(`{"resourceType":"Patient"}`),
				Index: []store.IndexValue{{Param: "gender", Value: "female"}}},
			{Op: store.OpCreate, Type: "Observation", ID: oid, Stamp: stampAs(`{"resourceType":"Observation"}`),
				Index: []store.IndexValue{{Param: "patient", Value: "Patient/" + pid}, {Param: "status", Value: "final"}}},
		}
		if _, errs, err := s.ApplyEach(ctx, writes); err != nil || errors.Join(errs...) != nil {
			t.Fatalf("ApplyEach: %v %v", err, errs)
		}
	}
	chain := store.Query{Type: "Observation", Count: 10, Where: []store.Clause{{{Param: "patient",
		Target: &store.Query{Type: "Patient", Where: []store.Clause{{{Param: "gender", Match: store.MatchEqual, Value: "female"}}}}}}}}
	has := store.Query{Type: "Patient", Count: 10, Where: []store.Clause{{{Has: &store.ReverseChain{Param: "patient",
		Query: &store.Query{Type: "Observation", Where: []store.Clause{{{Param: "status", Match: store.MatchEqual, Value: "final"}}}}}}}}}
	for name, q := range map[string]store.Query{"Chain": chain, "ReverseChain": has} {
		if _, err := s.Search(ctx, q); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s over 4 resources with MaxChainIDs 3: error = %v, want ErrInvalid", name, err)
		}
	}
	chain.Where[0][0].Target.IDs = []string{"p1", "p2"}
	page, err := s.Search(ctx, chain)
	if err != nil || len(page.Resources) != 2 {
		t.Errorf("narrow chain = %d resources, %v; want 2", len(page.Resources), err)
	}
}

// stampAs returns a Stamp that stores body as it is.
func stampAs(body string) func(int64, time.Time) ([]byte, error) {
	return func(int64, time.Time) ([]byte, error) { return []byte(body), nil }
}

package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
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

// TestInvertReversesOrder: ascending sort values are stored inverted and
// read descending, so invert must reverse the byte-wise order of any two
// strings, a prefix included.
func TestInvertReversesOrder(t *testing.T) {
	words := []string{"", "a", "ab", "abc", "abd", "b", "Z", "é", "e\u0301", "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00.001Z", "\x00", "\xff"}
	for _, a := range words {
		for _, b := range words {
			if got, want := strings.Compare(invert(a), invert(b)), -strings.Compare(a, b); got != want {
				t.Errorf("compare(invert(%q), invert(%q)) = %d, want %d", a, b, got, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 8))
	word := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = byte(rng.IntN(256))
			if rng.IntN(2) == 0 { // near the edges of the codes
				b[i] = []byte{0, 0x1f, ' ', '!', 'y', 'z', '~', 0x7f, 0x80, 0xff}[rng.IntN(10)]
			}
		}
		return string(b)
	}
	for range 100000 {
		a, b := word(), word()
		if got, want := strings.Compare(invert(a), invert(b)), -strings.Compare(a, b); got != want {
			t.Fatalf("compare(invert(%q), invert(%q)) = %d, want %d", a, b, got, want)
		}
	}
	for c := range 256 {
		if s := invert(string([]byte{byte(c)})); !printable(s) {
			t.Errorf("invert(%#x) = %q: not printable ASCII", c, s)
		}
	}
}

// TestDocumentsWithoutSortValuesSortLast: documents written before sort
// values were stored (no srt) sort as resources without the value, in
// both directions and across pages, until Reindex (or a write) fills them.
func TestDocumentsWithoutSortValuesSortLast(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	codes := map[string]string{"a": "x2", "b": "x1", "c": "x9", "d": "x5"}
	index := func(id string) []store.IndexValue { return []store.IndexValue{{Param: "code", Value: codes[id]}} }
	for _, id := range []string{"a", "b", "c", "d"} {
		w := store.Write{Op: store.OpCreate, Type: "Observation", ID: id, Stamp: stampAs(`{"resourceType":"Observation"}`), Index: index(id)}
		if _, errs, err := s.ApplyEach(ctx, []store.Write{w}); err != nil || errors.Join(errs...) != nil {
			t.Fatalf("ApplyEach: %v %v", err, errs)
		}
	}
	// b and d as the previous document shape wrote them.
	unset := bson.D{{Key: "$unset", Value: bson.D{{Key: "srt", Value: ""}}}}
	if _, err := s.db.Collection("Observation").UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"b", "d"}}}}}, unset); err != nil {
		t.Fatal(err)
	}
	sorted := func(desc bool) []string {
		q := store.Query{Type: "Observation", Count: 1, Sort: []store.SortKey{{Param: "code", Desc: desc}}}
		var got []string
		for range 10 {
			page, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Resources {
				got = append(got, r.ID)
			}
			if q.Cursor = page.Next; q.Cursor == "" {
				break
			}
		}
		return got
	}
	if got, want := sorted(false), []string{"a", "c", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("sorted by code one page at a time = %v, want %v", got, want)
	}
	if got, want := sorted(true), []string{"c", "a", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("sorted by code descending one page at a time = %v, want %v", got, want)
	}
	reindex := store.ReindexQuery{Types: []string{"Observation"}, Index: func(typ, id string, body []byte) (store.IndexUpdate, error) {
		return store.IndexUpdate{Index: index(id)}, nil
	}}
	if stats, err := s.Reindex(ctx, reindex); err != nil || stats.Changed != 2 {
		t.Fatalf("Reindex = %+v, %v; want the 2 documents without sort values rewritten", stats, err)
	}
	if got, want := sorted(false), []string{"b", "a", "d", "c"}; !slices.Equal(got, want) {
		t.Errorf("after Reindex, sorted by code = %v, want %v", got, want)
	}
	if got, want := sorted(true), []string{"c", "d", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("after Reindex, sorted by code descending = %v, want %v", got, want)
	}
}

// TestDocumentsWithoutRangeEntriesMatchPerEnd: documents written before
// whole range entries were stored (no rngx) are still found by two-sided
// range predicates, checked end by end as before, until reindexed.
func TestDocumentsWithoutRangeEntriesMatchPerEnd(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	w := store.Write{Op: store.OpCreate, Type: "Observation", ID: "o1", Stamp: stampAs(`{"resourceType":"Observation"}`),
		Index: []store.IndexValue{{Param: "date", Low: "2024-02-10T00:00:00.000Z", High: "2024-02-10T23:59:59.999Z"}}}
	if _, errs, err := s.ApplyEach(ctx, []store.Write{w}); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("ApplyEach: %v %v", err, errs)
	}
	february := store.Query{Type: "Observation", Count: 10, Where: []store.Clause{{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{
		{Field: store.Low, Op: store.GE, Arg: "2024-02-01T00:00:00.000Z"}, {Field: store.High, Op: store.LE, Arg: "2024-02-29T23:59:59.999Z"}}}}}}
	march := february
	march.Where = []store.Clause{{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{
		{Field: store.Low, Op: store.GE, Arg: "2024-03-01T00:00:00.000Z"}, {Field: store.High, Op: store.LE, Arg: "2024-03-31T23:59:59.999Z"}}}}}
	count := func(q store.Query) int {
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Resources)
	}
	for _, shape := range []string{"current", "previous"} {
		if shape == "previous" {
			unset := bson.D{{Key: "$unset", Value: bson.D{{Key: "rngx", Value: ""}}}}
			if _, err := s.db.Collection("Observation").UpdateOne(ctx, bson.D{{Key: "_id", Value: "o1"}}, unset); err != nil {
				t.Fatal(err)
			}
		}
		if n, m := count(february), count(march); n != 1 || m != 0 {
			t.Errorf("%s shape: within February found %d, within March %d; want 1 and 0", shape, n, m)
		}
	}
}

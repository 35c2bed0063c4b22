package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func runReindex(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"RewritesDerivedDataNotVersions", testReindexRewrites},
		{"SecondRunChangesNothing", testReindexAgain},
		{"OnlyTheTypesAsked", testReindexTypes},
		{"ConcurrentWritesKeepTheirOwnIndex", testReindexConcurrentWrites},
		{"InterruptedRunCompletesWhenRunAgain", testReindexInterrupted},
		{"IndexErrorsStopIt", testReindexErrors},
		{"EmptyStore", testReindexEmpty},
	})
}

// The reindex fixture is stored with the index values of an "old
// registry": one legacy entry each and no compartments but a Patient's
// own. reindexed derives the "new registry's" from the bodies.
func writeReindexFixture(t *testing.T, s store.Store) {
	t.Helper()
	stale := func(w store.Write) store.Write {
		w.Index = []store.IndexValue{{Param: "legacy", Value: "old"}}
		return w
	}
	apply(t, s,
		stale(create("Patient", "p1", patient("p1", "Smith"))),
		stale(create("Patient", "p2", patient("p2", "Jones"))),
		stale(create("Patient", "p3", patient("p3", "Brown"))),
		stale(create("Observation", "o1", observation("o1", "p1", 10))),
		stale(create("Observation", "o2", observation("o2", "p1", 11))),
		stale(create("Observation", "o3", observation("o3", "p2", 12))),
		stale(create("Observation", "o4", observation("o4", "p3", 13))),
	)
	apply(t, s, stale(update("Patient", "p2", patient("p2", "Jones"))))
	apply(t, s, del("Observation", "o4"))
}

// reindexed is the new registry: a Patient is found by its family name
// (folded, and exact as System) and is its own compartment; an
// Observation by its subject, whose compartment it is in.
func reindexed(typ, id string, body []byte) (store.IndexUpdate, error) {
	var doc struct {
		ID   string `json:"id"`
		Name []struct {
			Family string `json:"family"`
		} `json:"name"`
		Subject struct {
			Reference string `json:"reference"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return store.IndexUpdate{}, err
	}
	if doc.ID != id {
		return store.IndexUpdate{}, errors.New("body of another resource")
	}
	var u store.IndexUpdate
	switch typ {
	case "Patient":
		for _, n := range doc.Name {
			u.Index = append(u.Index, store.IndexValue{Param: "family", Value: strings.ToLower(n.Family), System: n.Family})
		}
		u.Compartments = []string{"Patient/" + id}
	case "Observation":
		u.Index = []store.IndexValue{{Param: "patient", Value: doc.Subject.Reference}}
		u.Compartments = []string{doc.Subject.Reference}
	}
	return u, nil
}

// findBy returns the sorted ids of the current resources of typ with an
// index value param=value.
func findBy(t *testing.T, s store.Store, typ, param, value string) []string {
	t.Helper()
	p := store.Predicate{Param: param, Match: store.MatchEqual, Value: value}
	return findIn(t, s, store.Query{Type: typ, Where: []store.Clause{{p}}, Count: 50})
}

func findIn(t *testing.T, s store.Store, q store.Query) []string {
	t.Helper()
	page, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search %+v: %v", q, err)
	}
	if page.Next != "" {
		t.Fatalf("Search %+v: more than one page", q)
	}
	var ids []string
	for _, r := range page.Resources {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// checkNewIndex checks that every live resource of the fixture is found by
// the new registry's values and compartments, and none by the old one's.
func checkNewIndex(t *testing.T, s store.Store) {
	t.Helper()
	wantIDs(t, "Patient legacy=old", findBy(t, s, "Patient", "legacy", "old"))
	wantIDs(t, "Observation legacy=old", findBy(t, s, "Observation", "legacy", "old"))
	wantIDs(t, "Patient family=smith", findBy(t, s, "Patient", "family", "smith"), "p1")
	wantIDs(t, "Patient family=jones", findBy(t, s, "Patient", "family", "jones"), "p2")
	wantIDs(t, "Observation patient=Patient/p1", findBy(t, s, "Observation", "patient", "Patient/p1"), "o1", "o2")
	wantIDs(t, "Observation patient=Patient/p3", findBy(t, s, "Observation", "patient", "Patient/p3"))
	wantIDs(t, "Observation in Patient/p1", findIn(t, s, store.Query{Type: "Observation", Compartments: []string{"Patient/p1"}, Count: 50}), "o1", "o2")
	wantIDs(t, "Observation in Patient/p2", findIn(t, s, store.Query{Type: "Observation", Compartments: []string{"Patient/p2"}, Count: 50}), "o3")
}

// snapshot is what Reindex must leave as it is: every version in history
// and the current version of each resource, with their times and bodies.
type snapshot struct {
	history []store.Resource
	current map[string]store.Resource
	counts  map[string]int
}

func takeSnapshot(t *testing.T, s store.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	sn := snapshot{history: allHistory(t, s, store.HistoryQuery{}), current: map[string]store.Resource{}, counts: map[string]int{}}
	for _, typ := range []string{"Patient", "Observation", ""} {
		n, err := s.Count(ctx, typ)
		if err != nil {
			t.Fatalf("Count(%q): %v", typ, err)
		}
		sn.counts[typ] = n
	}
	for _, v := range sn.history {
		r, err := s.Read(ctx, v.Type, v.ID)
		if err != nil && !errors.Is(err, store.ErrGone) {
			t.Fatalf("Read %s/%s: %v", v.Type, v.ID, err)
		}
		sn.current[v.Type+"/"+v.ID] = r
	}
	return sn
}

func sameVersion(a, b store.Resource) bool {
	return a.Type == b.Type && a.ID == b.ID && a.VersionID == b.VersionID && a.LastUpdated.Equal(b.LastUpdated) &&
		a.Deleted == b.Deleted && string(a.Body) == string(b.Body)
}

func checkUnchanged(t *testing.T, before, after snapshot) {
	t.Helper()
	if !slices.EqualFunc(before.history, after.history, sameVersion) {
		t.Errorf("history changed:\nbefore %v\nafter  %v", keys(before.history), keys(after.history))
	}
	for k, r := range before.current {
		if !sameVersion(r, after.current[k]) {
			t.Errorf("%s changed: %s at %s, was %s at %s", k, key(after.current[k]), after.current[k].LastUpdated, key(r), r.LastUpdated)
		}
	}
	for typ, n := range before.counts {
		if after.counts[typ] != n {
			t.Errorf("Count(%q) = %d, was %d", typ, after.counts[typ], n)
		}
	}
}

// recorder is an Index function that records what it was given; Index may
// be called from several goroutines at once.
type recorder struct {
	mu     sync.Mutex
	bodies map[string]string // "Type/id" → body
	calls  int
}

func (r *recorder) index(typ, id string, body []byte) (store.IndexUpdate, error) {
	r.mu.Lock()
	if r.bodies == nil {
		r.bodies = map[string]string{}
	}
	r.bodies[typ+"/"+id] = string(body)
	r.calls++
	r.mu.Unlock()
	return reindexed(typ, id, body)
}

func mustReindex(t *testing.T, s store.Store, q store.ReindexQuery) store.ReindexStats {
	t.Helper()
	stats, err := s.Reindex(context.Background(), q)
	if err != nil {
		t.Fatalf("Reindex: %v", err)
	}
	return stats
}

// testReindexRewrites reindexes with small batches: the new values find
// every live resource, the old ones none, and no version, time, body or
// count changed. Index sees each live resource once, as stored.
func testReindexRewrites(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	before := takeSnapshot(t, s)
	wantIDs(t, "Patient legacy=old before", findBy(t, s, "Patient", "legacy", "old"), "p1", "p2", "p3")

	var rec recorder
	var progress []store.ReindexStats
	stats := mustReindex(t, s, store.ReindexQuery{
		Index:     rec.index,
		BatchSize: 2,
		Progress:  func(p store.ReindexStats) { progress = append(progress, p) },
	})
	if want := (store.ReindexStats{Resources: 6, Changed: 6}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	checkNewIndex(t, s)
	checkUnchanged(t, before, takeSnapshot(t, s))

	var visited []string
	for k, body := range rec.bodies {
		visited = append(visited, k)
		if cur := before.current[k]; body != string(cur.Body) {
			t.Errorf("Index got %s body %s, stored %s", k, body, cur.Body)
		}
	}
	slices.Sort(visited)
	wantIDs(t, "resources indexed", visited, "Observation/o1", "Observation/o2", "Observation/o3", "Patient/p1", "Patient/p2", "Patient/p3")
	if rec.calls != 6 {
		t.Errorf("Index called %d times for 6 resources", rec.calls)
	}

	if len(progress) < 3 {
		t.Fatalf("Progress called %d times for 6 resources in batches of 2: %+v", len(progress), progress)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Resources <= progress[i-1].Resources {
			t.Errorf("Progress went from %+v to %+v", progress[i-1], progress[i])
		}
	}
	if last := progress[len(progress)-1]; last != stats {
		t.Errorf("last Progress = %+v, Reindex returned %+v", last, stats)
	}
}

// testReindexAgain: a second run with the same registry finds nothing to
// change.
func testReindexAgain(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	mustReindex(t, s, store.ReindexQuery{Index: reindexed})
	before := takeSnapshot(t, s)
	stats := mustReindex(t, s, store.ReindexQuery{Index: reindexed})
	if want := (store.ReindexStats{Resources: 6}); stats != want {
		t.Errorf("second run stats = %+v, want %+v", stats, want)
	}
	checkNewIndex(t, s)
	checkUnchanged(t, before, takeSnapshot(t, s))
}

// testReindexTypes: resources of the types not asked keep their values.
func testReindexTypes(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	var rec recorder
	stats := mustReindex(t, s, store.ReindexQuery{Types: []string{"Observation"}, Index: rec.index})
	if want := (store.ReindexStats{Resources: 3, Changed: 3}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	if rec.calls != 3 {
		t.Errorf("Index called %d times for 3 Observations", rec.calls)
	}
	wantIDs(t, "Patient legacy=old", findBy(t, s, "Patient", "legacy", "old"), "p1", "p2", "p3")
	wantIDs(t, "Patient family=smith", findBy(t, s, "Patient", "family", "smith"))
	wantIDs(t, "Observation legacy=old", findBy(t, s, "Observation", "legacy", "old"))
	wantIDs(t, "Observation patient=Patient/p1", findBy(t, s, "Observation", "patient", "Patient/p1"), "o1", "o2")
}

// testReindexConcurrentWrites updates p2 and deletes o3 from inside Index,
// after Reindex read them and before it writes: the update's own index
// and the deletion stand, and Reindex reports both as skipped.
func testReindexConcurrentWrites(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	ctx := context.Background()
	var mu sync.Mutex
	var writeErrs []error
	concurrent := func(typ, id string, body []byte) (store.IndexUpdate, error) {
		var w store.Write
		switch typ + "/" + id {
		case "Patient/p2":
			w = update("Patient", "p2", patient("p2", "Writer"))
			w.Index = []store.IndexValue{{Param: "family", Value: "writer", System: "Writer"}}
		case "Observation/o3":
			w = del("Observation", "o3")
		}
		if w.Op != 0 {
			if _, err := s.Apply(ctx, []store.Write{w}); err != nil {
				mu.Lock()
				writeErrs = append(writeErrs, err)
				mu.Unlock()
			}
		}
		return reindexed(typ, id, body)
	}
	stats := mustReindex(t, s, store.ReindexQuery{Index: concurrent})
	if len(writeErrs) > 0 {
		t.Fatalf("concurrent writes: %v", writeErrs)
	}
	if want := (store.ReindexStats{Resources: 6, Changed: 4, Skipped: 2}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	wantIDs(t, "Patient family=writer", findBy(t, s, "Patient", "family", "writer"), "p2")
	wantIDs(t, "Patient family=jones", findBy(t, s, "Patient", "family", "jones"))
	wantIDs(t, "Patient family=smith", findBy(t, s, "Patient", "family", "smith"), "p1")
	wantIDs(t, "Observation patient=Patient/p2", findBy(t, s, "Observation", "patient", "Patient/p2"))
	wantIDs(t, "Observation legacy=old", findBy(t, s, "Observation", "legacy", "old"))
	if r := read(t, s, "Patient", "p2"); r.VersionID != 3 {
		t.Errorf("Patient/p2 is at version %d, want 3 (the concurrent update's)", r.VersionID)
	}
	if _, err := s.Read(ctx, "Observation", "o3"); !errors.Is(err, store.ErrGone) {
		t.Errorf("Read Observation/o3 after its concurrent deletion: %v, want ErrGone", err)
	}
}

// testReindexInterrupted cancels a run after its first batch: the batches
// written stay written, the rest keep their old values, and a second run
// completes exactly the rest.
func testReindexInterrupted(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := s.Reindex(ctx, store.ReindexQuery{Index: reindexed, BatchSize: 2, Progress: func(store.ReindexStats) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reindex canceled after its first batch: %v, want context.Canceled", err)
	}
	if first.Changed < 1 || first.Changed > 2 {
		t.Errorf("canceled run changed %d resources, want its first batch of 2 at most", first.Changed)
	}
	old := len(findBy(t, s, "Patient", "legacy", "old")) + len(findBy(t, s, "Observation", "legacy", "old"))
	if old != 6-first.Changed {
		t.Errorf("%d resources keep their old values after a run that changed %d of 6", old, first.Changed)
	}
	second := mustReindex(t, s, store.ReindexQuery{Index: reindexed})
	if want := (store.ReindexStats{Resources: 6, Changed: 6 - first.Changed}); second != want {
		t.Errorf("second run stats = %+v, want %+v", second, want)
	}
	checkNewIndex(t, s)
}

// testReindexErrors: an Index error stops Reindex and names the resource;
// no Index function is an invalid request.
func testReindexErrors(t *testing.T, s store.Store) {
	writeReindexFixture(t, s)
	before := takeSnapshot(t, s)
	boom := errors.New("boom")
	_, err := s.Reindex(context.Background(), store.ReindexQuery{
		Types: []string{"Observation"},
		Index: func(typ, id string, body []byte) (store.IndexUpdate, error) {
			if id == "o2" {
				return store.IndexUpdate{}, boom
			}
			return reindexed(typ, id, body)
		},
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "Observation/o2") {
		t.Errorf("Reindex error = %v, want boom naming Observation/o2", err)
	}
	// The failing batch is not written.
	wantIDs(t, "Observation legacy=old", findBy(t, s, "Observation", "legacy", "old"), "o1", "o2", "o3")
	checkUnchanged(t, before, takeSnapshot(t, s))

	if _, err := s.Reindex(context.Background(), store.ReindexQuery{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Reindex without Index: %v, want ErrInvalid", err)
	}
}

// testReindexEmpty: nothing to visit is no error.
func testReindexEmpty(t *testing.T, s store.Store) {
	var rec recorder
	for _, types := range [][]string{nil, {"Patient"}} {
		stats := mustReindex(t, s, store.ReindexQuery{Types: types, Index: rec.index})
		if stats != (store.ReindexStats{}) || rec.calls != 0 {
			t.Errorf("Reindex of types %v in an empty store: %+v, %d Index calls", types, stats, rec.calls)
		}
	}
}

// Package storetest is the conformance suite of the store interfaces. Every
// engine runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmpty(t) })
//	}
//
// The suite uses only the store package's interfaces, so what passes here
// behaves the same behind the FHIR and GraphQL APIs whichever engine runs.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Run runs every conformance test. open is called once per test and must
// return a new, empty store; it arranges for the store to be closed when the
// test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Resources", func(t *testing.T) { runResources(t, open) })
	t.Run("History", func(t *testing.T) { runHistory(t, open) })
	t.Run("Search", func(t *testing.T) { runSearch(t, open) })
	t.Run("Records", func(t *testing.T) { runRecords(t, open) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrency(t, open) })
	t.Run("Reindex", func(t *testing.T) { runReindex(t, open) })
	t.Run("Files", func(t *testing.T) { runFiles(t, open) })
}

// test is one named behaviour.
type test struct {
	name string
	run  func(t *testing.T, s store.Store)
}

func runAll(t *testing.T, open func(t *testing.T) store.Store, tests []test) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// patient is the content of a small Patient resource, without meta.
func patient(id, family string) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"Patient","id":%q,"active":true,"name":[{"family":%q,"given":["Ann"]}],"gender":"female","birthDate":"1970-01-0%d"}`,
		id, family, 1+len(family)%9))
}

// observation is the content of an Observation about a patient.
func observation(id, patientID string, value int) []byte {
	return []byte(fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":%d,"unit":"g/dL"}}`,
		id, patientID, value))
}

// stamp sets meta.versionId and meta.lastUpdated the way the FHIR layer
// does, so tests can check that engines store what Stamp returns.
func stamp(content []byte) func(int64, time.Time) ([]byte, error) {
	return func(v int64, at time.Time) ([]byte, error) {
		var doc map[string]any
		if err := json.Unmarshal(content, &doc); err != nil {
			return nil, err
		}
		meta, _ := doc["meta"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
		}
		meta["versionId"] = fmt.Sprint(v)
		meta["lastUpdated"] = at.UTC().Format(time.RFC3339Nano)
		doc["meta"] = meta
		return json.Marshal(doc)
	}
}

func write(op store.Op, typ, id string, content []byte) store.Write {
	w := store.Write{Op: op, Type: typ, ID: id}
	if content != nil {
		w.Content = content
		w.Hash = store.HashContent(content)
		w.Stamp = stamp(content)
		w.Index = []store.IndexValue{
			{Param: "_id", Value: id},
			{Param: "_lastUpdated", Low: "2024-01-01T00:00:00.000Z", High: "2024-01-01T00:00:00.999Z"},
			{Param: "identifier", Value: "urn:test|" + id},
		}
		if typ == "Patient" {
			w.Compartments = []string{"Patient/" + id}
		}
	}
	return w
}

func create(typ, id string, content []byte) store.Write {
	return write(store.OpCreate, typ, id, content)
}

func update(typ, id string, content []byte) store.Write {
	return write(store.OpUpdate, typ, id, content)
}

func del(typ, id string) store.Write { return write(store.OpDelete, typ, id, nil) }

func ifMatch(w store.Write, v int64) store.Write { w.IfMatch = v; return w }

func ifChanged(w store.Write) store.Write { w.IfChanged = true; return w }

// apply applies writes and fails the test on error. An engine that cannot
// apply several writes atomically (ErrUnsupported, as on a MongoDB server
// without transactions) gets them one at a time: tests that use apply are
// about what the writes do, not about atomicity.
func apply(t *testing.T, s store.Store, writes ...store.Write) []store.Result {
	t.Helper()
	res, err := s.Apply(context.Background(), writes)
	if errors.Is(err, store.ErrUnsupported) && len(writes) > 1 {
		res = nil
		for _, w := range writes {
			res = append(res, apply(t, s, w)...)
		}
		return res
	}
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res) != len(writes) {
		t.Fatalf("Apply returned %d results for %d writes", len(res), len(writes))
	}
	return res
}

// applyErr applies writes that must fail at write index with an error
// matching want.
func applyErr(t *testing.T, s store.Store, index int, want error, writes ...store.Write) {
	t.Helper()
	_, err := s.Apply(context.Background(), writes)
	skipUnsupported(t, err, writes)
	var we *store.WriteError
	if !errors.As(err, &we) {
		t.Fatalf("Apply error = %v, want a *store.WriteError", err)
	}
	if we.Index != index {
		t.Errorf("WriteError.Index = %d, want %d", we.Index, index)
	}
	if !errors.Is(err, want) {
		t.Errorf("Apply error = %v, want %v", err, want)
	}
}

// skipUnsupported skips a test of atomicity on an engine that cannot apply
// several writes atomically.
func skipUnsupported(t *testing.T, err error, writes []store.Write) {
	t.Helper()
	if errors.Is(err, store.ErrUnsupported) && len(writes) > 1 {
		t.Skipf("engine cannot apply %d writes atomically: %v", len(writes), err)
	}
}

func read(t *testing.T, s store.Store, typ, id string) store.Resource {
	t.Helper()
	r, err := s.Read(context.Background(), typ, id)
	if err != nil {
		t.Fatalf("Read %s/%s: %v", typ, id, err)
	}
	return r
}

// checkMeta checks that a stored body is the content stamped with the
// resource's version and time.
func checkMeta(t *testing.T, r store.Resource, content []byte) {
	t.Helper()
	want, err := stamp(content)(r.VersionID, r.LastUpdated)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(r.Body, want) {
		t.Errorf("%s/%s version %d body = %s, want %s", r.Type, r.ID, r.VersionID, r.Body, want)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// allHistory walks every page of a history listing.
func allHistory(t *testing.T, s store.Store, q store.HistoryQuery) []store.Resource {
	t.Helper()
	var out []store.Resource
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("history does not end")
		}
		p, err := s.History(context.Background(), q)
		if err != nil {
			t.Fatalf("History(%+v): %v", q, err)
		}
		out = append(out, p.Versions...)
		if p.Next == "" {
			return out
		}
		if len(p.Versions) == 0 {
			t.Fatalf("History(%+v): empty page with a next cursor", q)
		}
		q.Cursor = p.Next
	}
}

// key names a version in assertions.
func key(r store.Resource) string { return fmt.Sprintf("%s/%s/%d", r.Type, r.ID, r.VersionID) }

func keys(rs []store.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = key(r)
	}
	return out
}

// waitPast polls until the clock is past t, so that the next write is
// stamped after t by any engine whose clock granularity is 1 ms or finer.
func waitPast(t time.Time) {
	for time.Now().Before(t.Add(2 * time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
}

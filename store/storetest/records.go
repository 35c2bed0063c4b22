package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

func runRecords(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"CreateThenGet", testRecordCreateGet},
		{"CreateOnExistingIDIsErrExists", testRecordCreateExisting},
		{"GetUnknownIsErrNotFound", testRecordGetUnknown},
		{"UpdateIsCompareAndSet", testRecordUpdate},
		{"DeleteWithRev", testRecordDelete},
		{"FindByStringKey", testRecordFindString},
		{"FindByArrayKey", testRecordFindArray},
		{"FindFollowsUpdatesAndDeletes", testRecordFindFollows},
		{"FindUndeclaredKeyFails", testRecordFindUndeclared},
		{"CollectionsAreSeparate", testRecordCollections},
		{"ExpiredRecordsAreInvisible", testRecordExpiry},
		{"UpdateCanSetAndClearExpiry", testRecordUpdateExpiry},
		{"InvalidRecordFails", testRecordInvalid},
		{"ConcurrentUpdatesLoseNothing", testRecordConcurrent},
	})
}

var (
	clients  = store.CollectionDef{Name: "clients", Keys: []string{"owner", "redirects"}}
	sessions = store.CollectionDef{Name: "sessions", Keys: []string{"user"}}
)

func doc(fields map[string]any) json.RawMessage {
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return b
}

func recordIDs(rs []store.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func find(t *testing.T, c store.Collection, key, value string) []string {
	t.Helper()
	rs, err := c.Find(context.Background(), key, value)
	if err != nil {
		t.Fatalf("Find(%s=%s): %v", key, value, err)
	}
	return recordIDs(rs)
}

func testRecordCreateGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	data := doc(map[string]any{"owner": "dev1", "name": "App", "redirects": []string{"https://a/cb"}})
	got, err := c.Create(ctx, store.Record{ID: "c1", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "c1" || got.Rev != 1 || !got.ExpiresAt.IsZero() || !jsonEqual(got.Data, data) {
		t.Errorf("Create = %+v, want rev 1 and the data", got)
	}
	r, err := c.Get(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "c1" || r.Rev != 1 || !r.ExpiresAt.IsZero() || !jsonEqual(r.Data, data) {
		t.Errorf("Get = %+v", r)
	}
	// A rev given to Create is ignored: records start at 1.
	r2, err := c.Create(ctx, store.Record{ID: "c2", Rev: 7, Data: data})
	if err != nil || r2.Rev != 1 {
		t.Errorf("Create with Rev 7 = %+v, %v; want rev 1", r2, err)
	}
}

func testRecordCreateExisting(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	if _, err := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"owner": "a"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"owner": "b"})}); !errors.Is(err, store.ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
	if got := find(t, c, "owner", "b"); len(got) != 0 {
		t.Errorf("failed Create left key values: %v", got)
	}
}

func testRecordGetUnknown(t *testing.T, s store.Store) {
	if _, err := s.Collection(clients).Get(context.Background(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get unknown: %v, want ErrNotFound", err)
	}
}

func testRecordUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	r, err := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"owner": "a", "n": 1})})
	if err != nil {
		t.Fatal(err)
	}
	r.Data = doc(map[string]any{"owner": "a", "n": 2})
	r2, err := c.Update(ctx, r)
	if err != nil || r2.Rev != 2 {
		t.Fatalf("Update = %+v, %v; want rev 2", r2, err)
	}
	stale := r // still at rev 1
	stale.Data = doc(map[string]any{"owner": "a", "n": 3})
	if _, err := c.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Errorf("stale Update: %v, want ErrConflict", err)
	}
	got, err := c.Get(ctx, "c1")
	if err != nil || got.Rev != 2 || !jsonEqual(got.Data, r2.Data) {
		t.Errorf("Get after stale update = %+v, %v; want rev 2 with n=2", got, err)
	}
	if _, err := c.Update(ctx, store.Record{ID: "nope", Rev: 1, Data: doc(map[string]any{})}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update unknown: %v, want ErrNotFound", err)
	}
}

func testRecordDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	r, _ := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"owner": "a"})})
	r, _ = c.Update(ctx, r)
	if err := c.Delete(ctx, "c1", 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Delete at a stale rev: %v, want ErrConflict", err)
	}
	if _, err := c.Get(ctx, "c1"); err != nil {
		t.Errorf("Get after refused Delete: %v", err)
	}
	if err := c.Delete(ctx, "c1", r.Rev); err != nil {
		t.Errorf("Delete at the current rev: %v", err)
	}
	if _, err := c.Get(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "c1", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete of a deleted record: %v, want ErrNotFound", err)
	}
	if got := find(t, c, "owner", "a"); len(got) != 0 {
		t.Errorf("Find after Delete = %v", got)
	}
	c.Create(ctx, store.Record{ID: "c2", Data: doc(map[string]any{"owner": "a"})})
	if err := c.Delete(ctx, "c2", 0); err != nil {
		t.Errorf("unconditional Delete: %v", err)
	}
	// The id is free again.
	if r, err := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{})}); err != nil || r.Rev != 1 {
		t.Errorf("Create after Delete = %+v, %v", r, err)
	}
}

func testRecordFindString(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	for _, r := range []struct{ id, owner string }{{"c3", "a"}, {"c1", "a"}, {"c2", "b"}, {"c0", "a"}} {
		if _, err := c.Create(ctx, store.Record{ID: r.id, Data: doc(map[string]any{"owner": r.owner})}); err != nil {
			t.Fatal(err)
		}
	}
	c.Create(ctx, store.Record{ID: "c9", Data: doc(map[string]any{"owner": 42})})
	c.Create(ctx, store.Record{ID: "c8", Data: doc(map[string]any{"name": "no owner"})})
	if got := find(t, c, "owner", "a"); !slices.Equal(got, []string{"c0", "c1", "c3"}) {
		t.Errorf("Find owner=a = %v, want [c0 c1 c3] in id order", got)
	}
	if got := find(t, c, "owner", "b"); !slices.Equal(got, []string{"c2"}) {
		t.Errorf("Find owner=b = %v", got)
	}
	if got := find(t, c, "owner", "A"); len(got) != 0 {
		t.Errorf("Find is case-sensitive, owner=A found %v", got)
	}
	if got := find(t, c, "owner", "42"); len(got) != 0 {
		t.Errorf("a number is not a key value, found %v", got)
	}
	rs, _ := c.Find(ctx, "owner", "b")
	if len(rs) != 1 || rs[0].Rev != 1 || !jsonEqual(rs[0].Data, doc(map[string]any{"owner": "b"})) {
		t.Errorf("Find returns whole records, got %+v", rs)
	}
}

func testRecordFindArray(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"redirects": []string{"https://a/cb", "https://b/cb"}})})
	c.Create(ctx, store.Record{ID: "c2", Data: doc(map[string]any{"redirects": []any{"https://b/cb", 7, nil}})})
	c.Create(ctx, store.Record{ID: "c3", Data: doc(map[string]any{"redirects": []string{}})})
	for value, want := range map[string][]string{
		"https://a/cb": {"c1"},
		"https://b/cb": {"c1", "c2"},
		"https://c/cb": nil,
	} {
		if got := find(t, c, "redirects", value); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("Find redirects=%s = %v, want %v", value, got, want)
		}
	}
}

func testRecordFindFollows(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	r, _ := c.Create(ctx, store.Record{ID: "c1", Data: doc(map[string]any{"owner": "a", "redirects": []string{"x", "y"}})})
	r.Data = doc(map[string]any{"owner": "b", "redirects": []string{"y", "z"}})
	if _, err := c.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, value string
		found      bool
	}{
		{"owner", "a", false}, {"owner", "b", true},
		{"redirects", "x", false}, {"redirects", "y", true}, {"redirects", "z", true},
	} {
		if got := find(t, c, tc.key, tc.value); (len(got) == 1) != tc.found {
			t.Errorf("after update, Find %s=%s = %v, want found %v", tc.key, tc.value, got, tc.found)
		}
	}
}

func testRecordFindUndeclared(t *testing.T, s store.Store) {
	c := s.Collection(clients)
	c.Create(context.Background(), store.Record{ID: "c1", Data: doc(map[string]any{"name": "x"})})
	if _, err := c.Find(context.Background(), "name", "x"); err == nil {
		t.Error("Find on an undeclared key succeeded")
	}
}

func testRecordCollections(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := s.Collection(clients), s.Collection(sessions)
	if _, err := a.Create(ctx, store.Record{ID: "same", Data: doc(map[string]any{"owner": "u"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, store.Record{ID: "same", Data: doc(map[string]any{"user": "u"})}); err != nil {
		t.Fatalf("same id in another collection: %v", err)
	}
	if got := find(t, b, "user", "u"); !slices.Equal(got, []string{"same"}) {
		t.Errorf("Find in sessions = %v", got)
	}
	if err := a.Delete(ctx, "same", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "same"); err != nil {
		t.Errorf("deleting from one collection touched the other: %v", err)
	}
	if s.Collection(clients) == nil {
		t.Error("Collection returned nil")
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testRecordExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(sessions)
	long := time.Now().Add(time.Hour)
	if _, err := c.Create(ctx, store.Record{ID: "long", Data: doc(map[string]any{"user": "u"}), ExpiresAt: long}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, store.Record{ID: "past", Data: doc(map[string]any{"user": "u"}), ExpiresAt: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	short, err := c.Create(ctx, store.Record{ID: "short", Data: doc(map[string]any{"user": "u"}), ExpiresAt: time.Now().Add(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "past"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of a record created expired: %v, want ErrNotFound", err)
	}
	r, err := c.Get(ctx, "long")
	if err != nil {
		t.Fatal(err)
	}
	if d := r.ExpiresAt.Sub(long); d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("ExpiresAt = %v, want %v", r.ExpiresAt, long)
	}
	eventually(t, "short-lived record expires", func() bool {
		_, err := c.Get(ctx, "short")
		return errors.Is(err, store.ErrNotFound)
	})
	if got := find(t, c, "user", "u"); !slices.Equal(got, []string{"long"}) {
		t.Errorf("Find after expiry = %v, want only [long]", got)
	}
	if _, err := c.Update(ctx, short); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update of an expired record: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "short", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete of an expired record: %v, want ErrNotFound", err)
	}
	again, err := c.Create(ctx, store.Record{ID: "short", Data: doc(map[string]any{"user": "v"})})
	if err != nil || again.Rev != 1 {
		t.Fatalf("Create over an expired record = %+v, %v; want rev 1", again, err)
	}
	if got := find(t, c, "user", "v"); !slices.Equal(got, []string{"short"}) {
		t.Errorf("Find of the re-created record = %v", got)
	}
	if got := find(t, c, "user", "u"); !slices.Equal(got, []string{"long"}) {
		t.Errorf("the expired record's keys outlived it: Find = %v", got)
	}
}

func testRecordUpdateExpiry(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(sessions)
	r, err := c.Create(ctx, store.Record{ID: "s1", Data: doc(map[string]any{"user": "u"}), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r.ExpiresAt = time.Time{}
	if r, err = c.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(ctx, "s1"); !got.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt after clearing it = %v", got.ExpiresAt)
	}
	r.ExpiresAt = time.Now().Add(-time.Second)
	if _, err := c.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after updating into the past: %v, want ErrNotFound", err)
	}
}

func testRecordInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	for name, r := range map[string]store.Record{
		"no id":       {Data: doc(map[string]any{})},
		"not json":    {ID: "x", Data: json.RawMessage(`{"a":`)},
		"not object":  {ID: "x", Data: json.RawMessage(`[1,2]`)},
		"no data":     {ID: "x"},
		"json string": {ID: "x", Data: json.RawMessage(`"s"`)},
	} {
		if _, err := c.Create(ctx, r); err == nil {
			t.Errorf("Create with %s succeeded", name)
		}
	}
	if _, err := c.Get(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an invalid record was stored: %v", err)
	}
}

func testRecordConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := s.Collection(clients)
	if _, err := c.Create(ctx, store.Record{ID: "ctr", Data: doc(map[string]any{"n": 0})}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 10
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for done := 0; done < each; {
				r, err := c.Get(ctx, "ctr")
				if err != nil {
					errs <- err
					return
				}
				var d struct{ N int }
				json.Unmarshal(r.Data, &d)
				r.Data = doc(map[string]any{"n": d.N + 1})
				_, err = c.Update(ctx, r)
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	r, _ := c.Get(ctx, "ctr")
	var d struct{ N int }
	json.Unmarshal(r.Data, &d)
	if d.N != workers*each || r.Rev != workers*each+1 {
		t.Errorf("counter = %d at rev %d, want %d at rev %d", d.N, r.Rev, workers*each, workers*each+1)
	}
}

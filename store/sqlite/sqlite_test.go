package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/storetest"
)

func TestMain(m *testing.M) {
	// The crash and two-process tests run this binary again as the other
	// process; see child.
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(child(role, os.Getenv(childDirEnv)))
	}
	os.Exit(m.Run())
}

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}

func TestDataSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{})
	writes := []store.Write{
		testWrite(store.OpCreate, "Patient", "p1", `{"resourceType":"Patient","id":"p1"}`),
		testWrite(store.OpCreate, "Patient", "p2", `{"resourceType":"Patient","id":"p2"}`),
	}
	if _, err := s.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	upd, err := s.Apply(ctx, []store.Write{testWrite(store.OpUpdate, "Patient", "p1", `{"resourceType":"Patient","id":"p1","active":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []store.Write{{Op: store.OpDelete, Type: "Patient", ID: "p2"}}); err != nil {
		t.Fatal(err)
	}
	coll := store.CollectionDef{Name: "users", Keys: []string{"name"}}
	if _, err := s.Collection(coll).Create(ctx, store.Record{ID: "u1", Data: []byte(`{"name":"ann"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openTest(t, dir, Options{})
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil || got.VersionID != 2 || string(got.Body) != string(upd[0].Body) || !got.LastUpdated.Equal(upd[0].LastUpdated) {
		t.Errorf("Read p1 after reopen = %+v, %v", got, err)
	}
	if _, err := s.Read(ctx, "Patient", "p2"); !errors.Is(err, store.ErrGone) {
		t.Errorf("Read p2 after reopen: %v, want ErrGone", err)
	}
	if n, _ := s.Count(ctx, "Patient"); n != 1 {
		t.Errorf("Count after reopen = %d, want 1", n)
	}
	if p, _ := s.History(ctx, store.HistoryQuery{}); len(p.Versions) != 4 {
		t.Errorf("history after reopen has %d versions, want 4", len(p.Versions))
	}
	rs, err := s.Collection(coll).Find(ctx, "name", "ann")
	if err != nil || len(rs) != 1 {
		t.Errorf("Find after reopen = %v, %v", rs, err)
	}
	// Writes carry on from where the sequences stood.
	res, err := s.Apply(ctx, []store.Write{testWrite(store.OpUpdate, "Patient", "p1", `{"resourceType":"Patient","id":"p1"}`)})
	if err != nil || res[0].VersionID != 3 || !res[0].LastUpdated.After(upd[0].LastUpdated) {
		t.Errorf("update after reopen = %+v, %v", res, err)
	}
	checkIntegrity(t, s.Path())
}

// TestLastUpdatedNeverGoesBack pins that times come from the stored head,
// not only from the clock: a version stamped in the future (as by a clock
// that later went back) still precedes every later version.
func TestLastUpdatedNeverGoesBack(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	ctx := context.Background()
	if _, err := s.Apply(ctx, []store.Write{testWrite(store.OpCreate, "Patient", "p1", `{}`)}); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).UnixMilli()
	if _, err := s.w.ExecContext(ctx, "UPDATE versions SET last_updated = ?", future); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, "UPDATE resources SET last_updated = ?", future); err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply(ctx, []store.Write{
		testWrite(store.OpUpdate, "Patient", "p1", `{"a":1}`),
		testWrite(store.OpCreate, "Patient", "p2", `{}`),
		testWrite(store.OpUpdate, "Patient", "p1", `{"a":2}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	prev := time.UnixMilli(future)
	for _, i := range []int{0, 2} {
		if !res[i].LastUpdated.After(prev) {
			t.Errorf("Patient/p1 version %d at %v, not after %v", res[i].VersionID, res[i].LastUpdated, prev)
		}
		prev = res[i].LastUpdated
	}
	if res[1].LastUpdated.Before(time.UnixMilli(future)) {
		t.Errorf("Patient/p2 stamped %v, before the newest version %v", res[1].LastUpdated, time.UnixMilli(future))
	}
	p, err := s.History(ctx, store.HistoryQuery{Since: time.UnixMilli(future)})
	if err != nil || len(p.Versions) != 4 {
		t.Errorf("history since the future head = %d versions, %v; want 4", len(p.Versions), err)
	}
}

func TestSweeperRemovesExpiredRecords(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{SweepInterval: 10 * time.Millisecond})
	ctx := context.Background()
	c := s.Collection(store.CollectionDef{Name: "codes", Keys: []string{"client"}})
	for i := range 3 {
		if _, err := c.Create(ctx, store.Record{ID: fmt.Sprint("c", i), Data: []byte(`{"client":"a"}`), ExpiresAt: time.Now().Add(20 * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Create(ctx, store.Record{ID: "keep", Data: []byte(`{"client":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var records, keys int
		s.r.QueryRowContext(ctx, "SELECT count(*) FROM records").Scan(&records)
		s.r.QueryRowContext(ctx, "SELECT count(*) FROM record_keys").Scan(&keys)
		if records == 1 && keys == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired records not swept: %d records, %d keys left", records, keys)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestChangedKeysAreReindexed(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir, Options{})
	c := s.Collection(store.CollectionDef{Name: "apps", Keys: []string{"owner"}})
	if _, err := c.Create(ctx, store.Record{ID: "a1", Data: []byte(`{"owner":"o","tags":["x","y"]}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir, Options{})
	c = s.Collection(store.CollectionDef{Name: "apps", Keys: []string{"owner", "tags"}})
	rs, err := c.Find(ctx, "tags", "y")
	if err != nil || len(rs) != 1 {
		t.Errorf("Find on a key declared after the record was written = %v, %v", rs, err)
	}
}

func TestCloseWaitsForWrites(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	var writes []store.Write
	for i := range 2000 {
		writes = append(writes, testWrite(store.OpCreate, "Patient", fmt.Sprint("p", i), `{"resourceType":"Patient"}`))
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Apply(context.Background(), writes)
		done <- err
	}()
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	applyErr := <-done
	s = openTest(t, dir, Options{})
	n, err := s.Count(context.Background(), "Patient")
	switch {
	case err != nil:
		t.Fatal(err)
	case applyErr == nil && n != len(writes):
		t.Errorf("Apply succeeded but %d of %d resources are stored", n, len(writes))
	case applyErr != nil && (!errors.Is(applyErr, ErrClosed) || n != 0):
		t.Errorf("Apply failed with %v and left %d resources", applyErr, n)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if _, err := s.w.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database with a newer schema")
	}
}

func TestBadHistoryCursor(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	for _, c := range []string{"x", "h", "h-1", "hzzzzzzzzzzzzzzzzzzzzz", "\x00"} {
		if _, err := s.History(context.Background(), store.HistoryQuery{Cursor: c}); err == nil {
			t.Errorf("cursor %q accepted", c)
		}
	}
}

// testWrite is a create or update whose Stamp stores content as is.
func testWrite(op store.Op, typ, id, content string) store.Write {
	return store.Write{
		Op: op, Type: typ, ID: id,
		Content: []byte(content), Hash: store.HashContent([]byte(content)),
		Stamp: func(int64, time.Time) ([]byte, error) { return []byte(content), nil },
		Index: []store.IndexValue{{Param: "_id", Value: id}},
	}
}

// checkIntegrity runs SQLite's own consistency check on a database file.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Errorf("integrity_check: %s", res)
	}
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

func runResources(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"CreateThenRead", testCreateThenRead},
		{"CreateOnExistingIDIsErrExists", testCreateExisting},
		{"ReadUnknownIsErrNotFound", testReadUnknown},
		{"UpdateMakesNextVersion", testUpdateVersions},
		{"UpdateOfUnknownCreates", testUpdateAsCreate},
		{"IfMatchConflictWritesNothing", testIfMatchConflict},
		{"IfMatchOnUnknownIsConflict", testIfMatchUnknown},
		{"DeleteThenReadIsErrGone", testDelete},
		{"DeleteOfDeletedChangesNothing", testDeleteDeleted},
		{"DeleteOfUnknownIsErrNotFound", testDeleteUnknown},
		{"UpdateRevivesDeleted", testRevive},
		{"ReadReportsPracticeOfLiveAndDeleted", testReadPractice},
		{"CreateOnDeletedIDIsErrExists", testCreateOnDeleted},
		{"IfChangedSkipsEqualContent", testIfChanged},
		{"ApplyIsAtomic", testApplyAtomic},
		{"ApplySeesItsOwnWrites", testApplyOwnWrites},
		{"ApplyEachKeepsGoodWrites", testApplyEach},
		{"StampFailureWritesNothing", testStampFailure},
		{"InvalidWriteIsWriteError", testInvalidWrite},
		{"EmptyApply", testEmptyApply},
		{"Count", testCount},
		{"CanceledContext", testCanceled},
		{"IDsAreCaseSensitiveAndPerType", testIDsPerType},
	})
}

func testCreateThenRead(t *testing.T, s store.Store) {
	content := patient("p1", "Smith")
	before := time.Now().Add(-time.Second)
	res := apply(t, s, create("Patient", "p1", content))[0]
	if res.VersionID != 1 || !res.Created || res.Unchanged || res.Deleted {
		t.Errorf("create result = %+v, want version 1, Created", res)
	}
	if res.Type != "Patient" || res.ID != "p1" {
		t.Errorf("create result names %s/%s", res.Type, res.ID)
	}
	if res.LastUpdated.Before(before) || res.LastUpdated.After(time.Now().Add(time.Second)) {
		t.Errorf("LastUpdated = %v, want about now", res.LastUpdated)
	}
	checkMeta(t, res.Resource, content)

	got := read(t, s, "Patient", "p1")
	if got.VersionID != 1 || !got.LastUpdated.Equal(res.LastUpdated) || got.Deleted {
		t.Errorf("Read = version %d at %v (deleted %v), want version 1 at %v", got.VersionID, got.LastUpdated, got.Deleted, res.LastUpdated)
	}
	if string(got.Body) != string(res.Body) {
		t.Errorf("Read body = %s, want what Stamp returned: %s", got.Body, res.Body)
	}
	v, err := s.VRead(context.Background(), "Patient", "p1", 1)
	if err != nil || string(v.Body) != string(res.Body) || v.VersionID != 1 || !v.LastUpdated.Equal(res.LastUpdated) {
		t.Errorf("VRead 1 = %+v, %v", v, err)
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "First")))
	applyErr(t, s, 0, store.ErrExists, create("Patient", "p1", patient("p1", "Second")))
	got := read(t, s, "Patient", "p1")
	if got.VersionID != 1 {
		t.Errorf("version after failed create = %d, want 1", got.VersionID)
	}
	checkMeta(t, got, patient("p1", "First"))
}

func testReadUnknown(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Read(ctx, "Patient", "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read unknown: %v, want ErrNotFound", err)
	}
	if _, err := s.VRead(ctx, "Patient", "nobody", 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("VRead unknown: %v, want ErrNotFound", err)
	}
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	for _, v := range []int64{0, 2, -1} {
		if _, err := s.VRead(ctx, "Patient", "p1", v); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("VRead version %d: %v, want ErrNotFound", v, err)
		}
	}
	if _, err := s.Read(ctx, "Observation", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read of an id under another type: %v, want ErrNotFound", err)
	}
}

func testUpdateVersions(t *testing.T, s store.Store) {
	contents := [][]byte{patient("p1", "A"), patient("p1", "B"), patient("p1", "C")}
	first := apply(t, s, create("Patient", "p1", contents[0]))[0]
	prev := first.LastUpdated
	for i, c := range contents[1:] {
		res := apply(t, s, update("Patient", "p1", c))[0]
		if res.VersionID != int64(i+2) || res.Created || res.Unchanged {
			t.Errorf("update %d result = version %d created %v unchanged %v", i+1, res.VersionID, res.Created, res.Unchanged)
		}
		if !res.LastUpdated.After(prev) {
			t.Errorf("update %d LastUpdated %v not after %v", i+1, res.LastUpdated, prev)
		}
		prev = res.LastUpdated
		checkMeta(t, res.Resource, c)
	}
	checkMeta(t, read(t, s, "Patient", "p1"), contents[2])
	for i, c := range contents {
		v, err := s.VRead(context.Background(), "Patient", "p1", int64(i+1))
		if err != nil {
			t.Fatalf("VRead %d: %v", i+1, err)
		}
		checkMeta(t, v, c)
	}
}

func testUpdateAsCreate(t *testing.T, s store.Store) {
	res := apply(t, s, update("Patient", "new", patient("new", "A")))[0]
	if res.VersionID != 1 || !res.Created {
		t.Errorf("update as create = version %d created %v, want 1 true", res.VersionID, res.Created)
	}
	checkMeta(t, read(t, s, "Patient", "new"), patient("new", "A"))
}

func testIfMatchConflict(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	apply(t, s, update("Patient", "p1", patient("p1", "B")))
	applyErr(t, s, 0, store.ErrConflict, ifMatch(update("Patient", "p1", patient("p1", "C")), 1))
	applyErr(t, s, 0, store.ErrConflict, ifMatch(del("Patient", "p1"), 3))
	got := read(t, s, "Patient", "p1")
	if got.VersionID != 2 {
		t.Errorf("version after conflicts = %d, want 2", got.VersionID)
	}
	checkMeta(t, got, patient("p1", "B"))
	if h := allHistory(t, s, store.HistoryQuery{Type: "Patient", ID: "p1"}); len(h) != 2 {
		t.Errorf("history after conflicts has %d versions, want 2", len(h))
	}
	res := apply(t, s, ifMatch(update("Patient", "p1", patient("p1", "C")), 2))[0]
	if res.VersionID != 3 {
		t.Errorf("update with the right If-Match made version %d, want 3", res.VersionID)
	}
	res = apply(t, s, ifMatch(del("Patient", "p1"), 3))[0]
	if res.VersionID != 4 || !res.Deleted {
		t.Errorf("delete with the right If-Match = version %d deleted %v", res.VersionID, res.Deleted)
	}
}

func testIfMatchUnknown(t *testing.T, s store.Store) {
	applyErr(t, s, 0, store.ErrConflict, ifMatch(update("Patient", "p1", patient("p1", "A")), 1))
	if _, err := s.Read(context.Background(), "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read after failed conditional update: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	created := apply(t, s, create("Patient", "p1", patient("p1", "A")))[0]
	res := apply(t, s, del("Patient", "p1"))[0]
	if res.VersionID != 2 || !res.Deleted || res.Created || res.Body != nil {
		t.Errorf("delete result = %+v, want version 2 deleted without body", res)
	}
	if !res.LastUpdated.After(created.LastUpdated) {
		t.Errorf("delete LastUpdated %v not after %v", res.LastUpdated, created.LastUpdated)
	}
	ctx := context.Background()
	got, err := s.Read(ctx, "Patient", "p1")
	if !errors.Is(err, store.ErrGone) {
		t.Fatalf("Read deleted: %v, want ErrGone", err)
	}
	if got.VersionID != 2 || !got.Deleted || got.Body != nil || !got.LastUpdated.Equal(res.LastUpdated) {
		t.Errorf("Read deleted returned %+v, want the deletion version", got)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 2); !errors.Is(err, store.ErrGone) {
		t.Errorf("VRead of the deletion version: %v, want ErrGone", err)
	}
	v1, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil {
		t.Fatalf("VRead 1 after delete: %v", err)
	}
	checkMeta(t, v1, patient("p1", "A"))
	h := allHistory(t, s, store.HistoryQuery{Type: "Patient", ID: "p1"})
	if len(h) != 2 || !h[0].Deleted || h[0].VersionID != 2 || h[1].VersionID != 1 || h[1].Deleted {
		t.Errorf("history after delete = %v, want the deletion then version 1", keys(h))
	}
}

func testDeleteDeleted(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	first := apply(t, s, del("Patient", "p1"))[0]
	again := apply(t, s, del("Patient", "p1"))[0]
	if again.VersionID != first.VersionID || !again.Deleted || !again.LastUpdated.Equal(first.LastUpdated) {
		t.Errorf("second delete = version %d deleted %v, want the existing deletion version %d", again.VersionID, again.Deleted, first.VersionID)
	}
	if h := allHistory(t, s, store.HistoryQuery{Type: "Patient", ID: "p1"}); len(h) != 2 {
		t.Errorf("history has %d versions after deleting twice, want 2", len(h))
	}
}

func testDeleteUnknown(t *testing.T, s store.Store) {
	applyErr(t, s, 0, store.ErrNotFound, del("Patient", "nobody"))
}

func testRevive(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	apply(t, s, del("Patient", "p1"))
	res := apply(t, s, update("Patient", "p1", patient("p1", "B")))[0]
	if res.VersionID != 3 || !res.Created || res.Deleted {
		t.Errorf("revive result = version %d created %v deleted %v, want 3 true false", res.VersionID, res.Created, res.Deleted)
	}
	checkMeta(t, read(t, s, "Patient", "p1"), patient("p1", "B"))
	if n, err := s.Count(context.Background(), "Patient"); err != nil || n != 1 {
		t.Errorf("Count after revive = %d, %v; want 1", n, err)
	}
}

// testReadPractice pins down Resource.Practice: Read reports the owning
// practice of a live resource and, for a deleted one, that of its last
// live version, also when the deletion shares an Apply with the version
// that last set it; a revive takes the practice of its write.
func testReadPractice(t *testing.T, s store.Store) {
	ctx := context.Background()
	owned := func(w store.Write, practice string) store.Write { w.Practice = practice; return w }
	apply(t, s,
		owned(create("Patient", "p1", patient("p1", "A")), "1234"),
		create("Patient", "p2", patient("p2", "A")),
	)
	if got := read(t, s, "Patient", "p1"); got.Practice != "1234" {
		t.Errorf("Read of a live resource: Practice %q, want 1234", got.Practice)
	}
	apply(t, s, owned(update("Patient", "p1", patient("p1", "B")), "5678"), del("Patient", "p1"))
	apply(t, s, del("Patient", "p2"))
	for _, tc := range []struct{ id, want string }{{"p1", "5678"}, {"p2", ""}} {
		got, err := s.Read(ctx, "Patient", tc.id)
		if !errors.Is(err, store.ErrGone) || got.Practice != tc.want {
			t.Errorf("Read of deleted %s: Practice %q, %v; want %q, ErrGone", tc.id, got.Practice, err, tc.want)
		}
	}
	apply(t, s, del("Patient", "p1")) // a second delete changes nothing
	if got, _ := s.Read(ctx, "Patient", "p1"); got.Practice != "5678" {
		t.Errorf("Read after a second delete: Practice %q, want 5678", got.Practice)
	}
	apply(t, s, update("Patient", "p1", patient("p1", "C")))
	if got := read(t, s, "Patient", "p1"); got.Practice != "" {
		t.Errorf("Read of a resource revived without a practice: Practice %q, want none", got.Practice)
	}
}

func testCreateOnDeleted(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	apply(t, s, del("Patient", "p1"))
	applyErr(t, s, 0, store.ErrExists, create("Patient", "p1", patient("p1", "B")))
}

func testIfChanged(t *testing.T, s store.Store) {
	content := patient("p1", "A")
	first := apply(t, s, create("Patient", "p1", content))[0]
	same := apply(t, s, ifChanged(update("Patient", "p1", content)))[0]
	if !same.Unchanged || same.Created || same.VersionID != 1 || !same.LastUpdated.Equal(first.LastUpdated) {
		t.Errorf("IfChanged update with equal content = %+v, want Unchanged version 1", same)
	}
	if string(same.Body) != string(first.Body) {
		t.Errorf("Unchanged result body = %s, want the current version %s", same.Body, first.Body)
	}
	changed := apply(t, s, ifChanged(update("Patient", "p1", patient("p1", "B"))))[0]
	if changed.Unchanged || changed.VersionID != 2 {
		t.Errorf("IfChanged update with new content = version %d unchanged %v, want 2 false", changed.VersionID, changed.Unchanged)
	}
	forced := apply(t, s, update("Patient", "p1", patient("p1", "B")))[0]
	if forced.Unchanged || forced.VersionID != 3 {
		t.Errorf("update without IfChanged = version %d unchanged %v, want 3 false", forced.VersionID, forced.Unchanged)
	}
	apply(t, s, del("Patient", "p1"))
	revived := apply(t, s, ifChanged(update("Patient", "p1", patient("p1", "B"))))[0]
	if revived.Unchanged || revived.VersionID != 5 || !revived.Created {
		t.Errorf("IfChanged update of a deleted resource = version %d unchanged %v, want a new version 5", revived.VersionID, revived.Unchanged)
	}
}

func testApplyAtomic(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "taken", patient("taken", "A")))
	applyErr(t, s, 2, store.ErrExists,
		create("Patient", "a", patient("a", "A")),
		update("Patient", "taken", patient("taken", "B")),
		create("Patient", "taken", patient("taken", "C")),
		create("Patient", "b", patient("b", "B")),
	)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := s.Read(ctx, "Patient", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Read %s after failed Apply: %v, want ErrNotFound", id, err)
		}
	}
	got := read(t, s, "Patient", "taken")
	if got.VersionID != 1 {
		t.Errorf("version of Patient/taken after failed Apply = %d, want 1", got.VersionID)
	}
	if n, _ := s.Count(ctx, ""); n != 1 {
		t.Errorf("Count after failed Apply = %d, want 1", n)
	}
	if h := allHistory(t, s, store.HistoryQuery{}); len(h) != 1 {
		t.Errorf("system history after failed Apply = %v, want one version", keys(h))
	}
	// The store is still writable and the failed ids are free.
	apply(t, s, create("Patient", "a", patient("a", "A")))
}

func testApplyOwnWrites(t *testing.T, s store.Store) {
	res := apply(t, s,
		create("Patient", "p1", patient("p1", "A")),
		update("Patient", "p1", patient("p1", "B")),
		create("Observation", "o1", observation("o1", "p1", 12)),
		del("Patient", "p1"),
		update("Patient", "p1", patient("p1", "C")),
	)
	wantVersions := []int64{1, 2, 1, 3, 4}
	for i, r := range res {
		if r.VersionID != wantVersions[i] {
			t.Errorf("result %d version = %d, want %d", i, r.VersionID, wantVersions[i])
		}
	}
	if !res[3].Deleted || !res[4].Created {
		t.Errorf("results = %+v", res)
	}
	p := []store.Result{res[0], res[1], res[3], res[4]}
	for i := 1; i < len(p); i++ {
		if !p[i].LastUpdated.After(p[i-1].LastUpdated) {
			t.Errorf("Patient/p1 version %d LastUpdated %v not after version %d's %v", p[i].VersionID, p[i].LastUpdated, p[i-1].VersionID, p[i-1].LastUpdated)
		}
	}
	checkMeta(t, read(t, s, "Patient", "p1"), patient("p1", "C"))
}

func testStampFailure(t *testing.T, s store.Store) {
	bad := create("Patient", "p2", patient("p2", "B"))
	bad.Stamp = func(int64, time.Time) ([]byte, error) { return nil, errors.New("cannot stamp") }
	writes := []store.Write{create("Patient", "p1", patient("p1", "A")), bad}
	_, err := s.Apply(context.Background(), writes)
	skipUnsupported(t, err, writes)
	var we *store.WriteError
	if !errors.As(err, &we) || we.Index != 1 {
		t.Fatalf("Apply with a failing Stamp: %v, want a *WriteError at index 1", err)
	}
	if _, err := s.Read(context.Background(), "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read after failed Apply: %v, want ErrNotFound", err)
	}
}

func testInvalidWrite(t *testing.T, s store.Store) {
	noStamp := create("Patient", "p1", patient("p1", "A"))
	noStamp.Stamp = nil
	for name, w := range map[string]store.Write{
		"no type":    create("", "p1", patient("p1", "A")),
		"no id":      create("Patient", "", patient("p1", "A")),
		"no stamp":   noStamp,
		"unknown op": {Op: store.Op(99), Type: "Patient", ID: "p1"},
		"zero op":    {Type: "Patient", ID: "p1"},
	} {
		writes := []store.Write{create("Patient", "ok", patient("ok", "A")), w}
		_, err := s.Apply(context.Background(), writes)
		skipUnsupported(t, err, writes)
		var we *store.WriteError
		if !errors.As(err, &we) || we.Index != 1 {
			t.Errorf("%s: Apply error = %v, want a *WriteError at index 1", name, err)
		}
	}
	if n, _ := s.Count(context.Background(), ""); n != 0 {
		t.Errorf("Count after invalid writes = %d, want 0", n)
	}
}

func testEmptyApply(t *testing.T, s store.Store) {
	res, err := s.Apply(context.Background(), nil)
	if err != nil || len(res) != 0 {
		t.Errorf("Apply(nil) = %v, %v", res, err)
	}
}

func testCount(t *testing.T, s store.Store) {
	ctx := context.Background()
	count := func(typ string, want int) {
		t.Helper()
		if n, err := s.Count(ctx, typ); err != nil || n != want {
			t.Errorf("Count(%q) = %d, %v; want %d", typ, n, err, want)
		}
	}
	count("", 0)
	count("Patient", 0)
	apply(t, s,
		create("Patient", "p1", patient("p1", "A")),
		create("Patient", "p2", patient("p2", "B")),
		create("Observation", "o1", observation("o1", "p1", 1)),
	)
	apply(t, s, update("Patient", "p1", patient("p1", "C")))
	count("Patient", 2)
	count("Observation", 1)
	count("", 3)
	count("Encounter", 0)
	apply(t, s, del("Patient", "p2"))
	apply(t, s, del("Patient", "p2"))
	count("Patient", 1)
	count("", 2)
	apply(t, s, update("Patient", "p2", patient("p2", "D")))
	count("Patient", 2)
}

func testCanceled(t *testing.T, s store.Store) {
	apply(t, s, create("Patient", "p1", patient("p1", "A")))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(ctx, []store.Write{create("Patient", "p2", patient("p2", "B"))}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Read(context.Background(), "Patient", "p2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read of a write made with a canceled context: %v, want ErrNotFound", err)
	}

	// Canceled halfway through: nothing of the Apply remains.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	midway := create("Patient", "p4", patient("p4", "D"))
	inner := midway.Stamp
	midway.Stamp = func(v int64, at time.Time) ([]byte, error) { cancel(); return inner(v, at) }
	writes := []store.Write{create("Patient", "p3", patient("p3", "C")), midway}
	for i := range 20 {
		id := fmt.Sprint("q", i)
		writes = append(writes, create("Patient", id, patient(id, "E")))
	}
	_, err := s.Apply(ctx, writes)
	skipUnsupported(t, err, writes)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Apply canceled midway: %v, want context.Canceled", err)
	}
	if n, _ := s.Count(context.Background(), ""); n != 1 {
		t.Errorf("Count after an Apply canceled midway = %d, want 1", n)
	}
	apply(t, s, create("Patient", "p3", patient("p3", "C")))
}

func testIDsPerType(t *testing.T, s store.Store) {
	apply(t, s,
		create("Patient", "x", patient("x", "A")),
		create("Patient", "X", patient("X", "B")),
		create("Observation", "x", observation("x", "x", 1)),
	)
	checkMeta(t, read(t, s, "Patient", "x"), patient("x", "A"))
	checkMeta(t, read(t, s, "Patient", "X"), patient("X", "B"))
	checkMeta(t, read(t, s, "Observation", "x"), observation("x", "x", 1))
}

func testApplyEach(t *testing.T, s store.Store) {

	apply(t, s, create("Patient", "taken", patient("taken", "A")))
	badStamp := create("Patient", "bad", patient("bad", "B"))
	badStamp.Stamp = func(int64, time.Time) ([]byte, error) { return nil, errors.New("cannot stamp") }
	writes := []store.Write{
		create("Patient", "a", patient("a", "A")),
		create("Patient", "taken", patient("taken", "B")),
		ifMatch(update("Patient", "taken", patient("taken", "C")), 7),
		update("Patient", "a", patient("a", "D")),
		badStamp,
		del("Patient", "nobody"),
		{Op: store.OpCreate, Type: "Patient"},
		ifMatch(update("Patient", "taken", patient("taken", "E")), 1),
	}
	res, errs, err := s.ApplyEach(context.Background(), writes)
	if err != nil {
		t.Fatalf("ApplyEach: %v", err)
	}
	if len(res) != len(writes) || len(errs) != len(writes) {
		t.Fatalf("ApplyEach returned %d results and %d errors for %d writes", len(res), len(errs), len(writes))
	}
	for i, want := range []error{nil, store.ErrExists, store.ErrConflict, nil, nil, store.ErrNotFound, nil, nil} {
		failed := i == 4 || i == 6 || want != nil
		var we *store.WriteError
		switch {
		case !failed && errs[i] != nil:
			t.Errorf("write %d failed: %v", i, errs[i])
		case failed && (!errors.As(errs[i], &we) || we.Index != i):
			t.Errorf("write %d: error %v, want a *WriteError at index %d", i, errs[i], i)
		case want != nil && !errors.Is(errs[i], want):
			t.Errorf("write %d: error %v, want %v", i, errs[i], want)
		}
	}
	if res[0].VersionID != 1 || res[3].VersionID != 2 || res[7].VersionID != 2 {
		t.Errorf("versions made = %d, %d, %d; want 1, 2, 2", res[0].VersionID, res[3].VersionID, res[7].VersionID)
	}
	checkMeta(t, read(t, s, "Patient", "a"), patient("a", "D"))
	checkMeta(t, read(t, s, "Patient", "taken"), patient("taken", "E"))
	if _, err := s.Read(context.Background(), "Patient", "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Read of the write whose Stamp failed: %v, want ErrNotFound", err)
	}
	if n, _ := s.Count(context.Background(), "Patient"); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

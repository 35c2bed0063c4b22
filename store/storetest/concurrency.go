package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func runConcurrency(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"IfMatchUpdatesLoseNothing", testConcurrentIfMatch},
		{"ParallelCreates", testConcurrentCreates},
		{"ReadsDuringWrites", testReadsDuringWrites},
	})
}

// testConcurrentIfMatch has writers race If-Match updates on one resource:
// every success must make its own version and none may be lost.
func testConcurrentIfMatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	apply(t, s, create("Patient", "p", patient("p", "start")))
	const workers, attempts = 8, 15
	var mu sync.Mutex
	versions := map[int64]string{} // version made → by whom
	var problems []error
	report := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range attempts {
				cur, err := s.Read(ctx, "Patient", "p")
				if err != nil {
					report(err)
					return
				}
				who := fmt.Sprintf("w%d-%d", w, a)
				res, err := s.Apply(ctx, []store.Write{ifMatch(update("Patient", "p", patient("p", who)), cur.VersionID)})
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					report(err)
					return
				}
				if res[0].VersionID != cur.VersionID+1 {
					report(fmt.Errorf("If-Match %d made version %d", cur.VersionID, res[0].VersionID))
				}
				mu.Lock()
				prev, dup := versions[res[0].VersionID]
				versions[res[0].VersionID] = who
				mu.Unlock()
				if dup {
					report(fmt.Errorf("version %d made twice, by %s and %s", res[0].VersionID, prev, who))
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range problems {
		t.Error(err)
	}
	final := read(t, s, "Patient", "p")
	if final.VersionID != int64(len(versions))+1 {
		t.Errorf("final version %d after %d successful updates, want %d", final.VersionID, len(versions), len(versions)+1)
	}
	if len(versions) == 0 {
		t.Error("no update succeeded")
	}
	// Every version holds the content of the writer that made it.
	for v, who := range versions {
		r, err := s.VRead(ctx, "Patient", "p", v)
		if err != nil {
			t.Fatalf("VRead %d: %v", v, err)
		}
		checkMeta(t, r, patient("p", who))
	}
	if h := allHistory(t, s, store.HistoryQuery{Type: "Patient", ID: "p", Count: 7}); len(h) != len(versions)+1 {
		t.Errorf("history has %d versions, want %d", len(h), len(versions)+1)
	}
}

func testConcurrentCreates(t *testing.T, s store.Store) {
	ctx := context.Background()
	const workers, each = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				// Every worker also races for one shared id: exactly one wins.
				writes := []store.Write{create("Patient", id, patient(id, "A"))}
				if i == 0 {
					writes = append(writes, create("Patient", "shared", patient("shared", id)))
				}
				_, err := s.Apply(ctx, writes)
				if i == 0 && errors.Is(err, store.ErrExists) {
					_, err = s.Apply(ctx, writes[:1])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := s.Count(ctx, "Patient"); err != nil || n != workers*each+1 {
		t.Errorf("Count = %d, %v; want %d", n, err, workers*each+1)
	}
	if h := allHistory(t, s, store.HistoryQuery{Type: "Patient", Count: 13}); len(h) != workers*each+1 {
		t.Errorf("type history has %d versions, want %d", len(h), workers*each+1)
	}
}

// testReadsDuringWrites checks that readers always see a whole version:
// the body they get carries the version and time they are told.
func testReadsDuringWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	apply(t, s, create("Patient", "p", patient("p", "v1")))
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				r, err := s.Read(ctx, "Patient", "p")
				if err != nil {
					errs <- err
					return
				}
				want, _ := stamp(patient("p", fmt.Sprint("v", r.VersionID)))(r.VersionID, r.LastUpdated)
				if !jsonEqual(r.Body, want) {
					errs <- fmt.Errorf("read version %d with body %s", r.VersionID, r.Body)
					return
				}
			}
		}()
	}
	for v := 2; v <= 40; v++ {
		apply(t, s, update("Patient", "p", patient("p", fmt.Sprint("v", v))))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

package registry

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

// race runs f n times at once and returns the errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// outcomes counts nil errors and errors matching target; any other error
// fails the test.
func outcomes(t *testing.T, errs []error, target error) (ok, matched int) {
	t.Helper()
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, target):
			matched++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	return ok, matched
}

func TestConcurrentCreatesOfOneName(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		errs := race(4, func(i int) error {
			_, err := r.CreatePractice(ctx, PracticeSpec{Name: "Practice", PIN: "RACE1"})
			return err
		})
		if ok, exists := outcomes(t, errs, ErrExists); ok != 1 || exists != 3 {
			t.Errorf("practice creates: %d succeeded, %d ErrExists; want 1 and 3", ok, exists)
		}
		putResource(t, st, "Patient", "p1")
		errs = race(4, func(i int) error {
			_, err := r.CreateUser(ctx, UserSpec{Username: []string{"ada", "ADA", "Ada", "adA"}[i], Password: "password " + string(rune('a'+i)), Kind: UserPatient, Patient: "p1"})
			return err
		})
		if ok, exists := outcomes(t, errs, ErrExists); ok != 1 || exists != 3 {
			t.Errorf("user creates: %d succeeded, %d ErrExists; want 1 and 3", ok, exists)
		}
		// Exactly one password works: the winner's.
		works := 0
		for i := range 4 {
			if _, err := r.Login(ctx, "ada", "password "+string(rune('a'+i))); err == nil {
				works++
			}
		}
		if works != 1 {
			t.Errorf("%d of the racing passwords log in, want 1", works)
		}
	})
}

func TestConcurrentStatusChanges(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		c, _, err := r.CreateClient(ctx, ClientSpec{Name: "Svc", Kind: KindBackend, Scope: "system/*.read", JWKSURL: "https://svc.example.com/jwks"})
		if err != nil {
			t.Fatal(err)
		}
		// Two suspends at once both succeed, and only one writes: the
		// other finds the client suspended when its compare-and-set fails.
		errs := race(2, func(int) error {
			_, err := r.SetClientStatus(ctx, c.ID, StatusSuspended)
			return err
		})
		if ok, _ := outcomes(t, errs, nil); ok != 2 {
			t.Errorf("%d of 2 suspends succeeded", ok)
		}
		rec := rawRecord(t, st, clientsDef, c.ID)
		if rec.Rev != 2 {
			t.Errorf("client at revision %d after two suspends, want 2", rec.Rev)
		}
		// Alternating changes never lose one: each write is one revision.
		errs = race(8, func(i int) error {
			s := StatusActive
			if i%2 == 1 {
				s = StatusSuspended
			}
			_, err := r.SetClientStatus(ctx, c.ID, s)
			return err
		})
		outcomes(t, errs, nil)
		got, err := r.GetClient(ctx, c.ID)
		if err != nil || !got.Status.valid() {
			t.Fatalf("GetClient = %+v, %v", got, err)
		}
		if after := rawRecord(t, st, clientsDef, c.ID); after.Rev < 3 || after.Rev > 10 {
			t.Errorf("revision %d after 8 alternating changes from 2", after.Rev)
		}
		if _, err := r.SetClientStatus(ctx, "no-such-client", StatusSuspended); !errors.Is(err, ErrNotFound) {
			t.Errorf("suspending an unknown client: %v", err)
		}
	})
}

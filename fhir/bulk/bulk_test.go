package bulk

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

const base = "http://fhir.test/fhir"

// newService opens a store and a Service on it without workers, with a
// clock the test moves.
func newService(t *testing.T, cfg Config) (*Service, store.Store, *time.Time) {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := token.NewKeyring(st, token.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := token.NewAuthority(keys, token.NewDenylist(st, token.DenylistOptions{}), token.AuthorityOptions{Issuer: base, Audience: base})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New()
	if err != nil {
		t.Fatal(err)
	}
	g, err := authz.NewGuard(authz.GuardConfig{Authority: auth, Policy: pol, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	// The store expires records by the real clock: start there.
	now := time.Now().UTC().Truncate(time.Second)
	cfg.Store, cfg.Guard, cfg.Now = st, g, func() time.Time { return now }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, st, &now
}

func claims(client string) *token.AccessClaims {
	c := &token.AccessClaims{ClientID: client, Scope: "system/*.rs"}
	c.Subject = client
	return c
}

func TestAlternativeTypeFiltersMultiplyIntoClauses(t *testing.T) {
	pred := func(param, value string) store.Predicate {
		return store.Predicate{Param: param, Match: store.MatchEqual, Value: value}
	}
	tests := []struct {
		name    string
		queries []string
		want    []store.Clause
		err     string
	}{
		{"one query", []string{"status=final"}, []store.Clause{{pred("status", "final")}}, ""},
		{"two queries of one clause OR into one clause", []string{"status=final", "status=amended"},
			[]store.Clause{{pred("status", "final"), pred("status", "amended")}}, ""},
		{"(a and b) or c", []string{"status=final&category=laboratory", "status=amended"},
			[]store.Clause{{pred("category", "laboratory"), pred("status", "amended")}, {pred("status", "final"), pred("status", "amended")}}, ""},
		{"a result parameter", []string{"_count=3"}, nil, "not a search filter"},
		{"an unknown parameter", []string{"nonsense=1"}, nil, "unknown search parameter"},
		{"_id among alternatives", []string{"_id=1", "status=final"}, nil, "only in a type's one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp, err := compileFilters("Observation", tc.queries, base)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Compare parameter and value only (the compiler may fill in
			// more, the same way for every query).
			var got []store.Clause
			for _, c := range fp.where {
				var gc store.Clause
				for _, p := range c {
					gc = append(gc, pred(p.Param, p.Value))
				}
				got = append(got, gc)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("where %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAClientHasAtMostMaxActiveJobs(t *testing.T) {
	s, _, _ := newService(t, Config{MaxActive: 2})
	ctx := context.Background()
	spec := Spec{Level: SystemLevel, Types: []string{"Patient"}}
	var first *Job
	for i := range 2 {
		j, err := s.Submit(ctx, claims("a"), spec, "r", nil)
		if err != nil {
			t.Fatalf("job %d: %v", i+1, err)
		}
		if first == nil {
			first = j
		}
	}
	if _, err := s.Submit(ctx, claims("a"), spec, "r", nil); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third job: %v, want ErrTooMany", err)
	}
	if _, err := s.Submit(ctx, claims("b"), spec, "r", nil); err != nil {
		t.Fatalf("another client's job: %v", err)
	}
	if err := s.Cancel(ctx, first.ID, "a", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, claims("a"), spec, "r", nil); err != nil {
		t.Fatalf("job after a cancel: %v", err)
	}
}

func TestAJobWhoseLeaseExpiredIsTakenOver(t *testing.T) {
	s, _, now := newService(t, Config{Lease: 10 * time.Second})
	ctx := context.Background()
	j, err := s.Submit(ctx, claims("a"), Spec{Level: SystemLevel}, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.claim(ctx, "w1")
	if err != nil || got == nil || got.ID != j.ID || got.Epoch != 1 {
		t.Fatalf("first claim: %+v %v", got, err)
	}
	if again, err := s.claim(ctx, "w2"); err != nil || again != nil {
		t.Fatalf("claim under a live lease: %+v %v", again, err)
	}
	*now = now.Add(11 * time.Second)
	again, err := s.claim(ctx, "w2")
	if err != nil || again == nil || again.Owner != "w2" || again.Epoch != 2 {
		t.Fatalf("claim after the lease ran out: %+v %v", again, err)
	}
	// The first worker's next write under its lease finds the job gone to
	// another and gives up.
	lost := make(chan error, 1)
	l := &lease{s: s, owner: "w1", job: got, lost: func(err error) { lost <- err }}
	if err := l.store(ctx, func(j *Job) { j.Exported = 99 }); !errors.Is(err, errLost) {
		t.Fatalf("write of the old owner: %v, want errLost", err)
	}
	if cur, _ := s.jobs.get(ctx, j.ID); cur.Exported != 0 || cur.Owner != "w2" {
		t.Fatalf("the old owner's write took effect: %+v", cur)
	}
}

func TestSweepRemovesExpiredJobsAndStrayFiles(t *testing.T) {
	s, st, now := newService(t, Config{Expiry: time.Hour})
	ctx := context.Background()
	j, err := s.Submit(ctx, claims("a"), Spec{Level: SystemLevel}, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string) {
		if _, err := st.Files().PutFile(ctx, name, strings.NewReader("{}\n")); err != nil {
			t.Fatal(err)
		}
	}
	put(dir(j.ID) + "Patient-0-1.ndjson")
	put(dir("gone") + "Patient-0-1.ndjson")
	j.State, j.Expires = Completed, now.Add(time.Hour)
	j.Output = []File{{Type: "Patient", Name: "Patient-0-1.ndjson", Count: 1}}
	if err := s.jobs.update(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := st.Files().ListFiles(ctx, "export/")
	if len(files) != 1 || !strings.HasPrefix(files[0].Name, dir(j.ID)) {
		t.Fatalf("after the first sweep: %+v, want the live job's file only", files)
	}
	if rc, err := s.Open(ctx, j.ID, "a", "a", "Patient-0-1.ndjson"); err != nil {
		t.Fatalf("open before expiry: %v", err)
	} else {
		rc.Close()
	}
	*now = now.Add(time.Hour)
	if _, err := s.Job(ctx, j.ID, "a", "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired job: %v, want ErrNotFound", err)
	}
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Files().ListFiles(ctx, "export/"); len(files) != 0 {
		t.Fatalf("after expiry: %+v", files)
	}
	if _, err := s.jobs.get(ctx, j.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired job record: %v", err)
	}
}

package bulk

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// "Not revoked" is not remembered: a revocation made through another
	// Denylist on the store is seen at once.
	auth, err := token.NewAuthority(keys, token.NewDenylist(st, token.DenylistOptions{CacheTTL: time.Nanosecond}), token.AuthorityOptions{Issuer: base, Audience: base})
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

// principal is the principal of a token with claims c.
func principal(t *testing.T, s *Service, c *token.AccessClaims) *authz.Principal {
	t.Helper()
	p, err := s.cfg.Guard.Principal(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
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
		{"more alternatives than one clause may OR", manyCodes(maxClausePredicates + 1), nil, "more than"},
		{"alternatives of two values OR-ing past the bound", manyCodes(maxClausePredicates/2+1, ",x"), nil, "more than"},
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

// manyCodes is n _typeFilter queries on distinct codes, each with suffix
// added to its value.
func manyCodes(n int, suffix ...string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "code=c" + strconv.Itoa(i) + strings.Join(suffix, "")
	}
	return out
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
	if err := s.Cancel(ctx, first.ID, principal(t, s, claims("a"))); err != nil {
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
	if rc, err := s.Open(ctx, j.ID, principal(t, s, claims("a")), "Patient-0-1.ndjson"); err != nil {
		t.Fatalf("open before expiry: %v", err)
	} else {
		rc.Close()
	}
	*now = now.Add(time.Hour)
	if _, err := s.Job(ctx, j.ID, principal(t, s, claims("a"))); !errors.Is(err, ErrNotFound) {
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

func TestOnlyATokenReachingWhatTheExportReachedSeesIt(t *testing.T) {
	s, _, _ := newService(t, Config{})
	ctx := context.Background()
	started := claims("app")
	started.Practices = []string{"TEST"}
	spec := Spec{Level: SystemLevel, Types: []string{"Patient", "Observation"}, Base: base}
	j, err := s.Submit(ctx, started, spec, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	with := func(change func(c *token.AccessClaims)) *token.AccessClaims {
		c := *started
		change(&c)
		return &c
	}
	tests := []struct {
		name  string
		c     *token.AccessClaims
		id    string
		found bool
	}{
		{"the same scopes, practices and subject", with(func(*token.AccessClaims) {}), j.ID, true},
		{"wider scopes", with(func(c *token.AccessClaims) { c.Scope = "system/*.cruds" }), j.ID, true},
		{"another subject", with(func(c *token.AccessClaims) { c.Subject = "someone" }), j.ID, false},
		{"another client", with(func(c *token.AccessClaims) { c.ClientID = "other" }), j.ID, false},
		{"fewer types", with(func(c *token.AccessClaims) { c.Scope = "system/Patient.rs" }), j.ID, false},
		{"a granular scope", with(func(c *token.AccessClaims) { c.Scope = "system/Patient.rs system/Observation.rs?category=laboratory" }), j.ID, false},
		{"patient scopes", with(func(c *token.AccessClaims) { c.Scope, c.Patient = "patient/*.rs", "p1" }), j.ID, false},
		{"another practice", with(func(c *token.AccessClaims) { c.Practices = []string{"OTHER"} }), j.ID, false},
		{"a path for a job id", with(func(*token.AccessClaims) {}), "../" + j.ID, false},
		{"no job id", with(func(*token.AccessClaims) {}), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Job(ctx, tc.id, principal(t, s, tc.c))
			switch {
			case tc.found && (err != nil || got.ID != j.ID):
				t.Fatalf("Job: %v, want the job", err)
			case !tc.found && !errors.Is(err, ErrNotFound):
				t.Fatalf("Job: %+v %v, want ErrNotFound", got, err)
			}
			if !tc.found {
				if _, err := s.Open(ctx, tc.id, principal(t, s, tc.c), "Patient-0-1.ndjson"); !errors.Is(err, ErrNotFound) {
					t.Errorf("Open: %v, want ErrNotFound", err)
				}
				if err := s.Cancel(ctx, tc.id, principal(t, s, tc.c)); !errors.Is(err, ErrNotFound) {
					t.Errorf("Cancel: %v, want ErrNotFound", err)
				}
			}
		})
	}
}

func TestConcurrentKickoffsOfAClientKeepItsLimit(t *testing.T) {
	s, _, _ := newService(t, Config{MaxActive: 2})
	ctx := context.Background()
	spec := Spec{Level: SystemLevel, Types: []string{"Patient"}}
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Submit(ctx, claims("a"), spec, "r", nil)
			switch {
			case err == nil:
				accepted.Add(1)
			case !errors.Is(err, ErrTooMany):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	js, err := s.jobs.find(ctx, "client", "a")
	if err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n > 2 || len(js) != int(n) {
		t.Fatalf("%d kick-offs accepted, %d jobs stored; the limit is 2", n, len(js))
	}
}

package authz

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

const base = "http://fhir.test/fhir"

var (
	lab    = url.Values{"category": {"laboratory"}}
	vitals = url.Values{"category": {"vital-signs"}}
)

func newTestGuard(t testing.TB) (*Guard, *token.Authority) {
	t.Helper()
	_, auth, pol := newTestStack(t)
	g, err := NewGuard(GuardConfig{Authority: auth, Policy: pol, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	return g, auth
}

// newTestStack is what a guard stands on: a fresh embedded store, a token
// authority on its keyring, and the policy.
func newTestStack(t testing.TB) (store.Store, *token.Authority, *policy.Policy) {
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
	return st, auth, pol
}

func mint(t testing.TB, auth *token.Authority, g token.AccessGrant) string {
	t.Helper()
	if g.Subject == "" {
		g.Subject = "s"
	}
	if g.ClientID == "" {
		g.ClientID = "c"
	}
	raw, _, err := auth.IssueAccess(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAuthenticateReadsTheBearerToken(t *testing.T) {
	g, auth := newTestGuard(t)
	good := mint(t, auth, token.AccessGrant{Scope: "patient/*.rs", Patient: "p1", FHIRUser: "Patient/p1", UserKind: "patient"})
	tests := []struct {
		name   string
		header string
		want   string // "" for success, "none" for ErrNoToken, else the invalid_token description's start
	}{
		{"no header", "", "none"},
		{"basic", "Basic dTpw", "the Authorization header"},
		{"bearer without token", "Bearer ", "the Authorization header"},
		{"garbage", "Bearer abc", "the access token is malformed"},
		{"tampered", "Bearer " + good[:len(good)-4] + "AAAA", "the access token's signature"},
		{"good", "Bearer " + good, ""},
		{"scheme in any case", "bearer " + good, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/fhir/Patient", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			p, err := g.Authenticate(r)
			switch tt.want {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				if p.Claims.Patient != "p1" || p.input.User.Patient != "p1" || p.input.User.Kind != policy.PatientUser {
					t.Errorf("principal = %+v", p.input)
				}
			case "none":
				if !errors.Is(err, ErrNoToken) {
					t.Errorf("err = %v, want ErrNoToken", err)
				}
			default:
				te := token.AsError(err)
				if te == nil || te.Code != token.CodeInvalidToken || !strings.HasPrefix(te.Description, tt.want) {
					t.Errorf("err = %v, want invalid_token %q…", err, tt.want)
				}
			}
		})
	}
}

// Grants of a decision combine into one filter where one store query
// expresses their OR exactly, and are refused otherwise.
func TestGrantsCombineIntoOneFilter(t *testing.T) {
	g := &Guard{baseURL: base}
	labClause := store.Clause{{Param: "category", Match: store.MatchEqual, Value: "laboratory"}}
	vitalClause := store.Clause{{Param: "category", Match: store.MatchEqual, Value: "vital-signs"}}
	tests := []struct {
		name    string
		grants  []policy.Grant
		want    Filter
		refused string
	}{
		{"one compartment", []policy.Grant{{Compartment: "Patient/p1"}},
			Filter{Compartments: []string{"Patient/p1"}}, ""},
		{"practices and unowned data", []policy.Grant{{Practices: []string{"A", "B"}}},
			Filter{Practices: []string{"A", "B", ""}}, ""},
		{"granular", []policy.Grant{{Compartment: "Patient/p1", Query: lab}},
			Filter{Compartments: []string{"Patient/p1"}, Where: []store.Clause{labClause}}, ""},
		{"granular queries OR in one clause", []policy.Grant{{Compartment: "Patient/p1", Query: lab}, {Compartment: "Patient/p1", Query: vitals}},
			Filter{Compartments: []string{"Patient/p1"}, Where: []store.Clause{slices.Concat(labClause, vitalClause)}}, ""},
		{"granular queries of other parameters OR too", []policy.Grant{{Practices: []string{"A"}, Query: lab}, {Practices: []string{"A"}, Query: url.Values{"code": {"1234-5"}}}},
			Filter{Practices: []string{"A", ""}, Where: []store.Clause{slices.Concat(labClause, store.Clause{{Param: "code", Match: store.MatchEqual, Value: "1234-5"}})}}, ""},
		{"same query, other practices", []policy.Grant{{Practices: []string{"A"}, Query: lab}, {Practices: []string{"B"}, Query: lab}},
			Filter{Practices: []string{"A", "B", ""}, Where: []store.Clause{labClause}}, ""},
		{"same practices, other compartments", []policy.Grant{{Compartment: "Patient/p1", Practices: []string{"A"}}, {Compartment: "Patient/p2", Practices: []string{"A"}}},
			Filter{Compartments: []string{"Patient/p1", "Patient/p2"}, Practices: []string{"A", ""}}, ""},
		{"compartment OR granular over the practice", []policy.Grant{{Compartment: "Patient/p9", Practices: []string{"A"}}, {Practices: []string{"A"}, Query: lab}},
			Filter{}, "differ in more than one"},
		{"granular queries of several parameters", []policy.Grant{{Query: url.Values{"category": {"laboratory"}, "code": {"1"}}}, {Query: vitals}},
			Filter{}, "differ in more than one"},
		{"an unknown parameter", []policy.Grant{{Query: url.Values{"nonsense": {"x"}}}}, Filter{}, "granular scope query"},
		{"not a filter", []policy.Grant{{Query: url.Values{"_id": {"x"}}}}, Filter{}, "not a plain search filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, reason, err := g.filter("Observation", tt.grants, true)
			if err != nil {
				t.Fatal(err)
			}
			if tt.refused != "" {
				if !strings.Contains(reason, tt.refused) {
					t.Errorf("reason = %q, want it to say %q", reason, tt.refused)
				}
				return
			}
			if reason != "" {
				t.Fatalf("refused: %s", reason)
			}
			if !slices.Equal(f.Compartments, tt.want.Compartments) || !slices.Equal(f.Practices, tt.want.Practices) || !equalWhere(f.Where, tt.want.Where) {
				t.Errorf("filter = %+v, want %+v", f, tt.want)
			}
		})
	}
}

func equalWhere(a, b []store.Clause) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			p, q := a[i][j], b[i][j]
			if p.Param != q.Param || p.Match != q.Match || p.Value != q.Value {
				return false
			}
		}
	}
	return true
}

func TestFilterApplyNarrowsWhatTheQueryNames(t *testing.T) {
	f := Filter{Compartments: []string{"Patient/a"}, Practices: []string{"A", ""}}
	q := store.Query{Type: "Observation", Compartments: []string{"Patient/b"}}
	f.Apply(&q)
	if !slices.Equal(q.Compartments, []string{nothing}) || !slices.Equal(q.Practices, []string{"A", ""}) {
		t.Errorf("another patient's compartment search: %+v", q)
	}
	q = store.Query{Type: "Observation", Compartments: []string{"Patient/a", "Patient/b"}}
	f.Apply(&q)
	if !slices.Equal(q.Compartments, []string{"Patient/a"}) {
		t.Errorf("compartments = %v", q.Compartments)
	}
	if !f.Admits([]string{"Patient/a"}, "A") || f.Admits([]string{"Patient/b"}, "A") || f.Admits([]string{"Patient/a"}, "B") || !f.Admits([]string{"Patient/a", "Patient/b"}, "") {
		t.Error("Admits disagrees with the filter")
	}
	if p, ok := f.OwnPractice(); !ok || p != "A" {
		t.Errorf("OwnPractice = %q, %v", p, ok)
	}
	if _, ok := (Filter{Practices: []string{"A", "B", ""}}).OwnPractice(); ok {
		t.Error("two practices are not one")
	}
}

func TestDecideRefusesWhatTheScopesDoNotAllow(t *testing.T) {
	g, auth := newTestGuard(t)
	raw := mint(t, auth, token.AccessGrant{Scope: "patient/Observation.rs", Patient: "p1", FHIRUser: "Patient/p1", UserKind: "patient"})
	p, err := g.Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	a, err := g.Decide(p, policy.SearchType, "Condition")
	if err != nil || a.Allowed || !strings.Contains(a.Reason, "Condition") {
		t.Errorf("Condition search: %+v, %v", a, err)
	}
	a, err = g.Decide(p, policy.Create, "Observation")
	if err != nil || a.Allowed {
		t.Errorf("create with a read scope: %+v, %v", a, err)
	}
	a, err = g.Decide(p, policy.Read, "Observation")
	if err != nil || !a.Allowed || !slices.Equal(a.Filter.Compartments, []string{"Patient/p1"}) || a.Filter.Practices != nil {
		t.Errorf("Observation read: %+v, %v", a, err)
	}
}

// benchScopes is a patient app's grant of the certification kind: ten
// scopes, two of them granular queries on Observation.
const benchScopes = "launch/patient openid fhirUser offline_access patient/Patient.rs " +
	"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory " +
	"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs " +
	"patient/Condition.rs patient/MedicationRequest.rs patient/Encounter.rs"

// BenchmarkAuthorize is the cost of authorization per request for a
// typical patient token: verify the token, decide search-type on
// Observation (two granular grants OR-ed) and push the filter into a
// query. "first" verifies a token never seen (the signature check);
// "cached" a token verified before.
func BenchmarkAuthorize(b *testing.B) {
	g, auth := newTestGuard(b)
	grant := token.AccessGrant{Scope: benchScopes, Patient: "p1", FHIRUser: "Patient/p1", UserKind: "patient"}
	run := func(b *testing.B, raw string) {
		p, err := g.Verify(context.Background(), raw)
		if err != nil {
			b.Fatal(err)
		}
		a, err := g.Decide(p, policy.SearchType, "Observation")
		if err != nil || !a.Allowed {
			b.Fatal(a.Reason, err)
		}
		q := store.Query{Type: "Observation", Count: 50}
		a.Filter.Apply(&q)
		if len(q.Where) != 1 || len(q.Where[0]) != 2 {
			b.Fatalf("filter: %+v", q)
		}
	}
	b.Run("first", func(b *testing.B) {
		tokens := make([]string, b.N)
		for i := range tokens {
			tokens[i] = mint(b, auth, grant)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			run(b, tokens[i])
		}
	})
	b.Run("cached", func(b *testing.B) {
		raw := mint(b, auth, grant)
		run(b, raw)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			run(b, raw)
		}
	})
}

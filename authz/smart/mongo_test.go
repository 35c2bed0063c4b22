package smart

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/mongo/mongotest"
)

// TestFlowsOnMongoDB runs the flows that touch records (sessions,
// requests, codes, refresh tokens, launches, jtis, the denylist, the
// patient search of the picker) on the MongoDB engine, over FerretDB.
func TestFlowsOnMongoDB(t *testing.T) {
	if testing.Short() {
		t.Skip("FerretDB start-up in -short mode")
	}
	ferret := mongotest.New(t)
	st, err := mongo.Open(context.Background(), ferret.URI(ferret.NewDatabase()), mongo.Options{})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	e := newEnvOn(t, st)
	b := e.browser()

	// A practitioner's standalone launch with the picker, then reuse of
	// the code revokes its tokens.
	code, verifier := e.codeFor(b, e.public, "doc", "launch/patient offline_access patient/*.rs", "p1")
	s, tok := e.redeem(e.public, code, verifier)
	if s != 200 || tok["patient"] != "p1" {
		t.Fatalf("token: %d %v", s, tok)
	}
	s, out := e.redeem(e.public, code, verifier)
	wantError(t, s, out, 400, "invalid_grant")
	if _, err := e.verify(tok["access_token"]); err == nil {
		t.Error("the access token of a reused code still verifies")
	}

	// Refresh rotation, and a rotated token presented again.
	code, verifier = e.codeFor(e.browser(), e.public, "patty", "launch/patient offline_access patient/*.rs", "")
	_, tok = e.redeem(e.public, code, verifier)
	rt1 := tok["refresh_token"].(string)
	s, out, _ = e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "scope": {"patient/Observation.rs"}})
	if s != 200 || out["scope"] != "patient/Observation.rs" {
		t.Fatalf("refresh: %d %v", s, out)
	}
	s, out, _ = e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	wantError(t, s, out, 400, "invalid_grant")

	// EHR launch: a launch context is single use.
	p := e.do(b, "GET", "/oauth/ehr", nil) // doc is logged in in b
	f := p.hidden()
	f.Set("patient", "p1")
	f.Set("client_id", e.public.ID)
	l := e.do(b, "POST", "/oauth/launch", f)
	lu, _ := url.Parse(l.location)
	if lu == nil || lu.Query().Get("launch") == "" {
		t.Fatalf("launch: %d %s %s", l.status, l.location, l.body)
	}

	// The encounter picker: the picked patient's visits of the
	// practitioner's practice, newest first, and the one chosen.
	e.putEncounters()
	verifier, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "launch/patient launch/encounter patient/*.rs", challenge))
	p = e.do(b, "GET", r.location, nil) // doc is logged in in b
	f = p.hidden()
	f.Set("patient", "p1")
	p = e.do(b, "GET", e.do(b, "POST", "/oauth/patient", f).location, nil)
	if got := encounterRadios(p); !slices.Equal(got, []string{"e2", "e1"}) {
		t.Fatalf("encounter picker offers %v, want [e2 e1]", got)
	}
	f = p.hidden()
	f.Set("encounter", "e4")
	if x := e.do(b, "POST", "/oauth/encounter", f); x.status != http.StatusBadRequest {
		t.Errorf("choosing another patient's visit: %d", x.status)
	}
	f.Set("encounter", "e2")
	q := e.approve(b, e.do(b, "GET", e.do(b, "POST", "/oauth/encounter", f).location, nil), nil)
	if s, tok := e.redeem(e.public, q.Get("code"), verifier); s != 200 || tok["encounter"] != "e2" {
		t.Fatalf("token: %d %v", s, tok)
	}

	// Backend services, and a replayed assertion.
	a := e.assertion(nil)
	if s, out := e.clientCredentials(a, "system/*.rs"); s != 200 {
		t.Fatalf("backend: %d %v", s, out)
	}
	s, out = e.clientCredentials(a, "system/*.rs")
	wantError(t, s, out, 401, "invalid_client")
	if !strings.Contains(out["error_description"].(string), "already used") {
		t.Errorf("replay: %v", out)
	}
}

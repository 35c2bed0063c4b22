package smart

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestDiscoveryListsWhatSMARTRequires(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.fhirBase + "/.well-known/smart-configuration")
	must(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	must(t, json.NewDecoder(resp.Body).Decode(&doc))
	if doc["issuer"] != e.fhirBase || doc["token_endpoint"] != e.srv.URL+"/oauth/token" || doc["jwks_uri"] != e.srv.URL+"/oauth/jwks" {
		t.Errorf("endpoints: %v", doc)
	}
	strs := func(k string) []string {
		var out []string
		for _, v := range doc[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := strs("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want S256 only", got)
	}
	for _, c := range []string{"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient", "permission-offline", "permission-online", "permission-v1", "permission-v2", "sso-openid-connect", "authorize-post"} {
		if !slices.Contains(strs("capabilities"), c) {
			t.Errorf("capability %s missing", c)
		}
	}
	if got := strs("token_endpoint_auth_methods_supported"); !slices.Equal(got, []string{"private_key_jwt", "client_secret_basic", "client_secret_post"}) {
		t.Errorf("auth methods %v", got)
	}
	oidc := e.do(http.DefaultClient, "GET", "/fhir/.well-known/openid-configuration", nil)
	if oidc.status != 200 || !strings.Contains(oidc.body, `"issuer":"`+e.fhirBase+`"`) {
		t.Errorf("openid-configuration: %d %s", oidc.status, oidc.body)
	}
	// The JWKS the discovery names verifies the server's tokens.
	j := e.do(http.DefaultClient, "GET", "/oauth/jwks", nil)
	if j.status != 200 || !strings.Contains(j.body, `"kid"`) {
		t.Errorf("jwks: %d %s", j.status, j.body)
	}
}

func TestStandalonePatientLaunchGivesThePatientTheirOwnRecord(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code, verifier := e.codeFor(b, e.public, "patty", "launch/patient openid fhirUser offline_access patient/*.rs", "")
	st, tok := e.redeem(e.public, code, verifier)
	if st != 200 {
		t.Fatalf("token: %d %v", st, tok)
	}
	if tok["patient"] != "p1" || tok["token_type"] != "Bearer" || tok["refresh_token"] == nil || tok["need_patient_banner"] != true {
		t.Errorf("token response %v", tok)
	}
	if tok["scope"] != "fhirUser launch/patient offline_access openid patient/*.rs" {
		t.Errorf("scope %q", tok["scope"])
	}
	c, err := e.verify(tok["access_token"])
	must(t, err)
	if c.Patient != "p1" || c.UserKind != "patient" || len(c.Practices) != 0 || c.FHIRUser != "Patient/p1" || c.Subject != "patty" {
		t.Errorf("claims %+v", c)
	}
	id, err := e.tokens.VerifyID(t.Context(), tok["id_token"].(string), e.public.ID)
	must(t, err)
	if id.FHIRUser != e.fhirBase+"/Patient/p1" {
		t.Errorf("id_token fhirUser %q", id.FHIRUser)
	}
}

func TestStandalonePractitionerLaunchPicksAPatientOfTheirPractice(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "launch/patient openid fhirUser user/*.rs patient/*.rs", challenge))
	p := e.login(b, e.do(b, "GET", r.location, nil), "doc")
	if !strings.Contains(p.body, `name="patient" value="p1"`) || strings.Contains(p.body, `value="p2"`) {
		t.Fatalf("the picker must list p1 (ALPHA) and not p2 (BETA): %s", p.body)
	}
	// The name search narrows the list.
	f := p.hidden()
	f.Set("q", "stone")
	if s := e.do(b, "POST", "/oauth/patient", f); strings.Contains(s.body, `value="p1"`) {
		t.Errorf("searching stone still lists Amy Shaw")
	}
	// A patient of another practice cannot be forced through the form.
	f = p.hidden()
	f.Set("patient", "p2")
	if s := e.do(b, "POST", "/oauth/patient", f); s.status != http.StatusBadRequest {
		t.Errorf("picking p2: %d", s.status)
	}
	f.Set("patient", "p1")
	r = e.do(b, "POST", "/oauth/patient", f)
	q := e.approve(b, e.do(b, "GET", r.location, nil), nil)
	st, tok := e.redeem(e.public, q.Get("code"), verifier)
	if st != 200 || tok["patient"] != "p1" {
		t.Fatalf("token: %d %v", st, tok)
	}
	c, err := e.verify(tok["access_token"])
	must(t, err)
	if c.UserKind != "practitioner" || !slices.Equal(c.Practices, []string{"ALPHA"}) || c.FHIRUser != "Practitioner/pr1" {
		t.Errorf("claims %+v", c)
	}
	if _, ok := tok["refresh_token"]; ok {
		t.Errorf("no offline_access or online_access asked, yet a refresh token: %v", tok)
	}
}

func TestApprovalGrantsOnlyTheTickedScopesAndDenyIsAccessDenied(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "launch/patient patient/*.rs offline_access", challenge))
	p := e.login(b, e.do(b, "GET", r.location, nil), "patty")
	q := e.approve(b, p, []string{"patient/*.rs", "launch/patient", "user/*.cruds"})
	_, tok := e.redeem(e.public, q.Get("code"), verifier)
	if tok["scope"] != "launch/patient patient/*.rs" || tok["refresh_token"] != nil {
		t.Errorf("unticked offline_access, and a scope never offered, must not be granted: %v", tok)
	}

	r = e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "patient/*.rs", challenge))
	p = e.do(b, "GET", r.location, nil) // still logged in
	f := p.hidden()
	f.Set("deny", "1")
	d := e.do(b, "POST", "/oauth/approve", f)
	u, _ := url.Parse(d.location)
	if d.status != http.StatusFound || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "st-42" {
		t.Errorf("deny: %d %s", d.status, d.location)
	}
}

func TestEHRLaunchCarriesThePatientChosenInTheEHR(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := e.do(b, "GET", "/oauth/ehr", nil)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, `name="next" value="ehr"`) {
		t.Fatalf("ehr before login: %d %s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("username", "doc")
	f.Set("password", password)
	f.Set("next", "ehr")
	r := e.do(b, "POST", "/oauth/login", f)
	p = e.do(b, "GET", r.location, nil)
	if p.status != 200 || !strings.Contains(p.body, "Launch Public App") || strings.Contains(p.body, "Bob Stone") {
		t.Fatalf("ehr page: %d %s", p.status, p.body)
	}
	// A launch without the CSRF token is refused.
	if x := e.do(b, "POST", "/oauth/launch", url.Values{"patient": {"p1"}, "client_id": {e.public.ID}}); x.status != http.StatusForbidden {
		t.Errorf("launch without csrf: %d", x.status)
	}
	f = p.hidden()
	f.Set("patient", "p1")
	f.Set("encounter", "e1")
	f.Set("client_id", e.public.ID)
	l := e.do(b, "POST", "/oauth/launch", f)
	lu, _ := url.Parse(l.location)
	if l.status != http.StatusSeeOther || !strings.HasPrefix(l.location, appLaunch) || lu.Query().Get("iss") != e.fhirBase || lu.Query().Get("launch") == "" {
		t.Fatalf("launch: %d %s", l.status, l.location)
	}
	// Asked for JSON, the launch answers with the URL instead.
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/launch", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := b.Do(req)
	must(t, err)
	var js map[string]string
	decodeJSON(resp, &js)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(js["launch_url"], appLaunch+"?") || js["launch"] == "" || js["iss"] != e.fhirBase {
		t.Errorf("JSON launch: %d %v", resp.StatusCode, js)
	}

	verifier, challenge := pkce()
	params := e.authParams(e.public, "launch openid fhirUser patient/*.rs", challenge)
	params.Set("launch", lu.Query().Get("launch"))
	r = e.do(b, "POST", "/oauth/authorize", params) // authorize-post
	p = e.do(b, "GET", r.location, nil)
	q := e.approve(b, p, nil) // same browser: already logged in, no picker
	st, tok := e.redeem(e.public, q.Get("code"), verifier)
	if st != 200 || tok["patient"] != "p1" || tok["encounter"] != "e1" || tok["need_patient_banner"] != false || tok["id_token"] == nil {
		t.Fatalf("token: %d %v", st, tok)
	}
	// The launch is single use.
	r = e.do(b, "POST", "/oauth/authorize", params)
	if u, _ := url.Parse(r.location); u.Query().Get("error") != "invalid_request" {
		t.Errorf("second use of a launch: %d %s", r.status, r.location)
	}
}

func TestRefreshRotatesNarrowsAndRefusesWidening(t *testing.T) {
	e := newEnv(t)
	code, verifier := e.codeFor(e.browser(), e.public, "patty", "launch/patient offline_access patient/*.rs", "")
	_, tok := e.redeem(e.public, code, verifier)
	rt1 := tok["refresh_token"].(string)
	refresh := func(rt, scope string) (int, map[string]any) {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			f.Set("scope", scope)
		}
		st, out, _ := e.tokenReq(e.public, f)
		return st, out
	}
	st, out := refresh(rt1, "")
	rt2, _ := out["refresh_token"].(string)
	if st != 200 || rt2 == "" || rt2 == rt1 || out["patient"] != "p1" {
		t.Fatalf("refresh: %d %v", st, out)
	}
	st, out = refresh(rt2, "patient/Observation.rs")
	if st != 200 || out["scope"] != "patient/Observation.rs" {
		t.Fatalf("narrower refresh: %d %v", st, out)
	}
	rt3 := out["refresh_token"].(string)
	st, out = refresh(rt3, "patient/*.cruds")
	wantError(t, st, out, 400, "invalid_scope")
	st, out = refresh(rt3, "user/*.rs")
	wantError(t, st, out, 400, "invalid_scope")
	// The widening refused nothing: rt3 still works, with the grant's scope.
	st, out = refresh(rt3, "")
	if st != 200 || out["scope"] != "launch/patient offline_access patient/*.rs" {
		t.Fatalf("refresh after refused widening: %d %v", st, out)
	}
	live := out["access_token"]
	rt4 := out["refresh_token"].(string)
	// A rotated token presented again revokes the whole grant.
	st, out = refresh(rt1, "")
	wantError(t, st, out, 400, "invalid_grant")
	st, out = refresh(rt4, "")
	wantError(t, st, out, 400, "invalid_grant")
	if _, err := e.verify(live); err == nil {
		t.Error("the access token of a revoked grant still verifies")
	}
	st, out = refresh("nope", "")
	wantError(t, st, out, 400, "invalid_grant")
}

func TestOnlineAccessEndsWithTheLoginSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	code, verifier := e.codeFor(b, e.public, "patty", "online_access patient/*.rs launch/patient", "")
	_, tok := e.redeem(e.public, code, verifier)
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("online_access gives a refresh token: %v", tok)
	}
	st, out, _ := e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st != 200 {
		t.Fatalf("refresh while logged in: %d %v", st, out)
	}
	// Log out (the approval page carried the session's CSRF token).
	_, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "patient/*.rs", challenge))
	p := e.do(b, "GET", r.location, nil)
	e.do(b, "POST", "/oauth/logout", url.Values{"csrf": {p.hidden().Get("csrf")}})
	st, out, _ = e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {out["refresh_token"].(string)}})
	wantError(t, st, out, 400, "invalid_grant")
}

func TestConfidentialClientAuthenticatesWithItsSecret(t *testing.T) {
	e := newEnv(t)
	code, verifier := e.codeFor(e.browser(), e.conf, "patty", "launch/patient patient/*.read offline_access", "")
	st, tok := e.redeem(e.conf, code, verifier) // client_secret_basic
	if st != 200 {
		t.Fatalf("basic: %d %v", st, tok)
	}
	rt := tok["refresh_token"].(string)
	// client_secret_post
	st, out, _ := e.tokenReq(registry0(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {e.conf.ID}, "client_secret": {e.confSecret}})
	if st != 200 {
		t.Fatalf("post: %d %v", st, out)
	}
	// Wrong secret over Basic: 401 with WWW-Authenticate.
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.conf.ID, "wrong")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("wrong secret: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A confidential client cannot pass for a public one.
	st, out, _ = e.tokenReq(registry0(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {e.conf.ID}})
	wantError(t, st, out, 401, "invalid_client")
}

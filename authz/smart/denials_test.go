package smart

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
)

func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t)
	_, challenge := pkce()
	tests := []struct {
		name   string
		change func(url.Values)
		// page: shown on an error page, never redirected; else the
		// error code redirected to the app.
		page bool
		code string
	}{
		{"unknown client", func(v url.Values) { v.Set("client_id", "nobody") }, true, ""},
		{"missing redirect_uri", func(v url.Values) { v.Del("redirect_uri") }, true, ""},
		{"unregistered redirect_uri", func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9/evil") }, true, ""},
		{"redirect_uri differing by a slash", func(v url.Values) { v.Set("redirect_uri", appRedirect+"/") }, true, ""},
		{"missing PKCE", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, false, "invalid_request"},
		{"PKCE without method", func(v url.Values) { v.Del("code_challenge_method") }, false, "invalid_request"},
		{"plain PKCE", func(v url.Values) { v.Set("code_challenge_method", "plain") }, false, "invalid_request"},
		{"malformed challenge", func(v url.Values) { v.Set("code_challenge", "short") }, false, "invalid_request"},
		{"missing aud", func(v url.Values) { v.Del("aud") }, false, "invalid_request"},
		{"wrong aud", func(v url.Values) { v.Set("aud", "https://other.example/fhir") }, false, "invalid_request"},
		{"response_type token", func(v url.Values) { v.Set("response_type", "token") }, false, "unsupported_response_type"},
		{"v1 and v2 scopes mixed", func(v url.Values) { v.Set("scope", "patient/Observation.read patient/Condition.rs") }, false, "invalid_scope"},
		{"malformed scope", func(v url.Values) { v.Set("scope", "patient/Observation.xyz") }, false, "invalid_scope"},
		{"no registered scope", func(v url.Values) { v.Set("scope", "user/*.cruds system/*.rs") }, false, "invalid_scope"},
		{"launch scope without a launch", func(v url.Values) { v.Set("scope", "launch patient/*.rs") }, false, "invalid_request"},
		{"unknown launch", func(v url.Values) { v.Set("launch", "forged") }, false, "invalid_request"},
		{"repeated parameter", func(v url.Values) { v.Add("state", "again") }, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := e.authParams(e.public, "launch/patient patient/*.rs", challenge)
			tc.change(v)
			r := e.do(e.browser(), "GET", "/oauth/authorize", v)
			if tc.page {
				if r.status != http.StatusBadRequest || r.location != "" || !strings.Contains(r.body, `role="alert"`) {
					t.Fatalf("want an error page, got %d %q", r.status, r.location)
				}
				return
			}
			u, err := url.Parse(r.location)
			if r.status != http.StatusFound || err != nil || !strings.HasPrefix(r.location, appRedirect+"?") {
				t.Fatalf("want a redirect to the app, got %d %q", r.status, r.location)
			}
			if q := u.Query(); q.Get("error") != tc.code || q.Get("state") != "st-42" || q.Get("error_description") == "" || q.Get("code") != "" {
				t.Fatalf("redirect query %v, want error %s", q, tc.code)
			}
		})
	}
	// A suspended client is shown a page too.
	_, err := e.reg.SetClientStatus(t.Context(), e.public.ID, registry.StatusSuspended)
	must(t, err)
	if r := e.do(e.browser(), "GET", "/oauth/authorize", e.authParams(e.public, "patient/*.rs", challenge)); r.status != 400 || r.location != "" {
		t.Errorf("suspended client: %d %q", r.status, r.location)
	}
}

func TestFlowRefusesForgedForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, "patient/*.rs launch/patient", challenge))
	p := e.do(b, "GET", r.location, nil)
	f := p.hidden()
	f.Set("username", "patty")
	f.Set("password", password)
	f.Set("csrf", "forged")
	if x := e.do(b, "POST", "/oauth/login", f); x.status != http.StatusForbidden {
		t.Errorf("login with a forged csrf: %d", x.status)
	}
	f.Set("csrf", p.hidden().Get("csrf"))
	f.Set("password", "wrong password")
	if x := e.do(b, "POST", "/oauth/login", f); x.status != http.StatusUnauthorized || !strings.Contains(x.body, "Wrong username or password") {
		t.Errorf("wrong password: %d", x.status)
	}
	// Another browser cannot continue this request.
	if x := e.do(e.browser(), "GET", r.location, nil); x.status != http.StatusBadRequest {
		t.Errorf("another browser: %d", x.status)
	}
	// Logging in rotates the session: the old CSRF token stops working.
	oldCSRF := p.hidden().Get("csrf")
	p = e.login(b, p, "patty")
	if p.hidden().Get("csrf") == oldCSRF {
		t.Error("the CSRF token survived the login")
	}
	f = p.hidden()
	f.Set("csrf", oldCSRF)
	f.Set("approve", "1")
	f["scope"] = p.scopes()
	if x := e.do(b, "POST", "/oauth/approve", f); x.status != http.StatusForbidden {
		t.Errorf("approve with the pre-login csrf: %d %s", x.status, x.location)
	}
}

func TestCodeRedemptionRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	scope := "launch/patient patient/*.rs offline_access"

	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := e.codeFor(b, e.public, "patty", scope, "")
		other, _ := pkce()
		st, out := e.redeem(e.public, code, other)
		wantError(t, st, out, 400, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		code, _ := e.codeFor(b, e.public, "patty", scope, "")
		st, out := e.redeem(e.public, code, "")
		wantError(t, st, out, 400, "invalid_request")
	})
	t.Run("wrong redirect_uri", func(t *testing.T) {
		code, verifier := e.codeFor(b, e.public, "patty", scope, "")
		st, out, _ := e.tokenReq(e.public, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect + "x"}, "code_verifier": {verifier}})
		wantError(t, st, out, 400, "invalid_grant")
	})
	t.Run("another client", func(t *testing.T) {
		code, verifier := e.codeFor(b, e.public, "patty", scope, "")
		st, out := e.redeem(e.conf, code, verifier)
		wantError(t, st, out, 400, "invalid_grant")
		// The refusal did not burn the code for its client.
		if st, out := e.redeem(e.public, code, verifier); st != 200 {
			t.Errorf("the right client after a wrong one: %d %v", st, out)
		}
	})
	t.Run("expired", func(t *testing.T) {
		code, verifier := e.codeFor(b, e.public, "patty", scope, "")
		e.clock.Add(61 * time.Second)
		st, out := e.redeem(e.public, code, verifier)
		wantError(t, st, out, 400, "invalid_grant")
	})
	t.Run("reused code revokes its tokens", func(t *testing.T) {
		code, verifier := e.codeFor(b, e.public, "patty", scope, "")
		st, tok := e.redeem(e.public, code, verifier)
		if st != 200 {
			t.Fatalf("first use: %d %v", st, tok)
		}
		if _, err := e.verify(tok["access_token"]); err != nil {
			t.Fatal(err)
		}
		st, out := e.redeem(e.public, code, verifier)
		wantError(t, st, out, 400, "invalid_grant")
		if _, err := e.verify(tok["access_token"]); err == nil {
			t.Error("the access token of a reused code still verifies")
		}
		st, out, _ = e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
		wantError(t, st, out, 400, "invalid_grant")
	})
	t.Run("unsupported grant type", func(t *testing.T) {
		st, out, _ := e.tokenReq(e.public, url.Values{"grant_type": {"password"}})
		wantError(t, st, out, 400, "unsupported_grant_type")
	})
	t.Run("public client asking client_credentials", func(t *testing.T) {
		st, out, _ := e.tokenReq(e.public, url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"}})
		wantError(t, st, out, 400, "unauthorized_client")
	})
	t.Run("suspended client", func(t *testing.T) {
		code, verifier := e.codeFor(b, e.public, "patty", scope, "")
		_, err := e.reg.SetClientStatus(t.Context(), e.public.ID, registry.StatusSuspended)
		must(t, err)
		defer e.reg.SetClientStatus(t.Context(), e.public.ID, registry.StatusActive)
		st, out := e.redeem(e.public, code, verifier)
		wantError(t, st, out, 401, "invalid_client")
	})
}

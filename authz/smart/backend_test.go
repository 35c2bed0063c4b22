package smart

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/golang-jwt/jwt/v5"
)

func (e *env) clientCredentials(assertion, scope string) (int, map[string]any) {
	e.t.Helper()
	st, out, _ := e.tokenReq(registry0(), url.Values{
		"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {token.AssertionType}, "client_assertion": {assertion},
	})
	return st, out
}

func TestBackendServicesTokenFromAKeyAtAJWKSURL(t *testing.T) {
	e := newEnv(t)
	st, tok := e.clientCredentials(e.assertion(nil), "system/Observation.rs system/Patient.rs")
	if st != 200 || tok["scope"] != "system/Observation.rs system/Patient.rs" || tok["refresh_token"] != nil {
		t.Fatalf("token: %d %v", st, tok)
	}
	if n, _ := tok["expires_in"].(float64); n <= 0 || n > 300 {
		t.Errorf("expires_in %v", tok["expires_in"])
	}
	c, err := e.verify(tok["access_token"])
	must(t, err)
	if c.Subject != e.backend.ID || c.UserKind != "" || !slices.Equal(c.Practices, []string{"BETA"}) || c.Patient != "" {
		t.Errorf("claims %+v", c)
	}
	// No scope asks for everything registered.
	if st, tok := e.clientCredentials(e.assertion(nil), ""); st != 200 || tok["scope"] != "system/*.rs" {
		t.Errorf("default scope: %d %v", st, tok)
	}
}

func TestBackendServicesRefusals(t *testing.T) {
	e := newEnv(t)
	hs256WithPublicKey := func() string {
		raw, _ := e.backendKey.PublicKey.Bytes()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": e.backend.ID, "sub": e.backend.ID, "aud": e.srv.URL + "/oauth/token",
			"exp": time.Now().Add(time.Minute).Unix(), "jti": rand.Text(),
		})
		tok.Header["kid"] = "k1"
		s, _ := tok.SignedString(raw)
		return s
	}
	algNone := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
			"iss": e.backend.ID, "sub": e.backend.ID, "aud": e.srv.URL + "/oauth/token",
			"exp": time.Now().Add(time.Minute).Unix(), "jti": rand.Text(),
		})
		tok.Header["kid"] = "k1"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	replayed := e.assertion(nil)
	if st, out := e.clientCredentials(replayed, "system/*.rs"); st != 200 {
		t.Fatalf("first use: %d %v", st, out)
	}
	tests := []struct {
		name      string
		assertion func() string
		scope     string
		code      string
		desc      string // in error_description
	}{
		{"expired assertion", func() string {
			return e.assertion(func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() })
		}, "", "invalid_client", "expired"},
		{"exp more than 5 minutes ahead", func() string {
			return e.assertion(func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(20 * time.Minute).Unix() })
		}, "", "invalid_client", "5 minutes"},
		{"issued in the future", func() string {
			return e.assertion(func(c jwt.MapClaims, _ map[string]any) { c["iat"] = time.Now().Add(3 * time.Minute).Unix() })
		}, "", "invalid_client", "not valid yet"},
		{"replayed jti", func() string { return replayed }, "", "invalid_client", "already used"},
		{"alg none", algNone, "", "invalid_client", "alg none"},
		{"HS256 signed with the public key", hs256WithPublicKey, "", "invalid_client", "alg HS256"},
		{"wrong aud", func() string {
			return e.assertion(func(c jwt.MapClaims, _ map[string]any) { c["aud"] = e.fhirBase })
		}, "", "invalid_client", "aud"},
		{"sub not the client", func() string {
			return e.assertion(func(c jwt.MapClaims, _ map[string]any) { c["sub"] = "someone" })
		}, "", "invalid_client", "sub"},
		{"unknown kid", func() string {
			return e.assertion(func(_ jwt.MapClaims, h map[string]any) { h["kid"] = "k9" })
		}, "", "invalid_client", "k9"},
		{"signed by another key", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{
				"iss": e.backend.ID, "sub": e.backend.ID, "aud": e.srv.URL + "/oauth/token",
				"exp": time.Now().Add(time.Minute).Unix(), "jti": rand.Text(),
			})
			tok.Header["kid"] = "k1"
			s, _ := tok.SignedString(otherKey)
			return s
		}, "", "invalid_client", "signature"},
		{"garbage", func() string { return "not.a.jwt" }, "", "invalid_client", "well-formed"},
		{"patient scope", func() string { return e.assertion(nil) }, "patient/*.rs", "invalid_scope", "system/ scopes only"},
		{"unregistered system scope", func() string { return e.assertion(nil) }, "system/*.cruds", "invalid_scope", "registered"},
		{"v1 and v2 mixed", func() string { return e.assertion(nil) }, "system/Patient.read system/Observation.rs", "invalid_scope", "mixed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, out := e.clientCredentials(tc.assertion(), tc.scope)
			want := 401
			if tc.code != "invalid_client" {
				want = 400
			}
			wantError(t, st, out, want, tc.code)
			if d, _ := out["error_description"].(string); !strings.Contains(d, tc.desc) {
				t.Errorf("error_description %q does not say %q", d, tc.desc)
			}
		})
	}
	t.Run("wrong assertion type", func(t *testing.T) {
		st, out, _ := e.tokenReq(registry0(), url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:other"}, "client_assertion": {e.assertion(nil)}})
		wantError(t, st, out, 401, "invalid_client")
	})
	t.Run("unreachable JWKS URL", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		c, _, err := e.reg.CreateClient(t.Context(), registry.ClientSpec{
			Name: "Dead keys", Kind: registry.KindBackend, Dev: true, Scope: "system/*.rs", JWKSURL: deadURL + "/jwks",
		})
		must(t, err)
		a := e.assertion(func(cl jwt.MapClaims, _ map[string]any) { cl["iss"], cl["sub"] = c.ID, c.ID })
		start := time.Now()
		st, out := e.clientCredentials(a, "system/*.rs")
		wantError(t, st, out, 401, "invalid_client")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
		t.Logf("unreachable JWKS: %v", out["error_description"])
	})
	t.Run("hanging JWKS URL", func(t *testing.T) {
		stop := make(chan struct{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		}))
		defer slow.Close()
		defer close(stop)
		c, _, err := e.reg.CreateClient(t.Context(), registry.ClientSpec{
			Name: "Slow keys", Kind: registry.KindBackend, Dev: true, Scope: "system/*.rs", JWKSURL: slow.URL + "/jwks",
		})
		must(t, err)
		a := e.assertion(func(cl jwt.MapClaims, _ map[string]any) { cl["iss"], cl["sub"] = c.ID, c.ID })
		st, out := e.clientCredentials(a, "system/*.rs")
		wantError(t, st, out, 401, "invalid_client")
	})
	t.Run("suspended client", func(t *testing.T) {
		_, err := e.reg.SetClientStatus(t.Context(), e.backend.ID, registry.StatusSuspended)
		must(t, err)
		defer e.reg.SetClientStatus(t.Context(), e.backend.ID, registry.StatusActive)
		st, out := e.clientCredentials(e.assertion(nil), "system/*.rs")
		wantError(t, st, out, 401, "invalid_client")
		if !strings.Contains(out["error_description"].(string), "suspended") {
			t.Errorf("description %v", out["error_description"])
		}
	})
}

func TestIntrospectionAndRevocation(t *testing.T) {
	e := newEnv(t)
	code, verifier := e.codeFor(e.browser(), e.public, "patty", "launch/patient openid fhirUser offline_access patient/*.rs", "")
	_, tok := e.redeem(e.public, code, verifier)
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)

	introspect := func(tokenText string) (int, map[string]any) {
		t.Helper()
		st, out, _ := e.post("/oauth/introspect", e.conf, url.Values{"token": {tokenText}})
		return st, out
	}
	st, out := introspect(at)
	if st != 200 || out["active"] != true || out["client_id"] != e.public.ID || out["patient"] != "p1" || out["sub"] != "patty" ||
		out["fhirUser"] != e.fhirBase+"/Patient/p1" || out["scope"] != tok["scope"] || out["exp"] == nil || out["iat"] == nil || out["token_type"] != "Bearer" {
		t.Errorf("introspect access token: %d %v", st, out)
	}
	id, err := e.tokens.VerifyID(t.Context(), tok["id_token"].(string), e.public.ID)
	must(t, err)
	if out["fhirUser"] != id.FHIRUser || out["sub"] != id.Subject {
		t.Errorf("introspection disagrees with the id_token: %v vs %+v", out, id)
	}
	if st, out := introspect(rt); st != 200 || out["active"] != true || out["token_type"] != "refresh_token" {
		t.Errorf("introspect refresh token: %d %v", st, out)
	}
	if st, out := introspect("garbage"); st != 200 || len(out) != 1 || out["active"] != false {
		t.Errorf("introspect garbage: %d %v", st, out)
	}
	// Public clients cannot introspect.
	st, out, _ = e.post("/oauth/introspect", registry0(), url.Values{"token": {at}, "client_id": {e.public.ID}})
	wantError(t, st, out, 401, "invalid_client")
	// Unauthenticated.
	st, out, _ = e.post("/oauth/introspect", registry0(), url.Values{"token": {at}})
	wantError(t, st, out, 401, "invalid_client")

	// Revocation: unknown tokens are fine; another client's tokens are left alone.
	if st, _, _ := e.post("/oauth/revoke", registry0(), url.Values{"token": {"unknown"}, "client_id": {e.public.ID}}); st != 200 {
		t.Errorf("revoke unknown: %d", st)
	}
	if st, _, _ := e.post("/oauth/revoke", e.conf, url.Values{"token": {at}}); st != 200 {
		t.Errorf("revoke another's: %d", st)
	}
	if _, out := introspect(at); out["active"] != true {
		t.Error("another client revoked the token")
	}
	if st, _, _ := e.post("/oauth/revoke", registry0(), url.Values{"token": {at}, "client_id": {e.public.ID}}); st != 200 {
		t.Errorf("revoke: %d", st)
	}
	if _, out := introspect(at); len(out) != 1 || out["active"] != false {
		t.Errorf("revoked access token: %v", out)
	}
	if st, _, _ := e.post("/oauth/revoke", registry0(), url.Values{"token": {rt}, "client_id": {e.public.ID}}); st != 200 {
		t.Errorf("revoke refresh: %d", st)
	}
	if _, out := introspect(rt); out["active"] != false {
		t.Errorf("revoked refresh token: %v", out)
	}
	st, out, _ = e.tokenReq(e.public, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	wantError(t, st, out, 400, "invalid_grant")
}

// post posts form to path, authenticating as client (conf: Basic; none:
// the form as given).
func (e *env) post(path string, client registry.Client, form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client.ID == e.conf.ID {
		req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(e.confSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	var out map[string]any
	decodeJSON(resp, &out)
	return resp.StatusCode, out, resp.Header
}

package test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browserPage is a page an OAuth browser flow got.
type browserPage struct {
	status   int
	location string
	body     string
}

var formFieldRE = regexp.MustCompile(`name="(csrf|req)" value="([^"]*)"`)

// hidden returns the page's csrf and req form fields.
func (p browserPage) hidden() url.Values {
	v := url.Values{}
	for _, m := range formFieldRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// TestStandalonePatientLaunchThroughTheServer runs a SMART standalone
// patient launch against the real program — authorize, login, approval,
// code redemption with PKCE — and uses the access token on the FHIR API:
// the patient's own record is there, another patient's is not. The
// refresh token then gets a new access token; a code used twice gets
// nothing, and the tokens it gave stop working.
func TestStandalonePatientLaunchThroughTheServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		expect(t, s.do("PUT", "Patient/ann", patient("Ann", `,"id":"ann"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Patient/bob", patient("Bob", `,"id":"bob"`)), http.StatusCreated)
		for _, p := range []string{"ann", "bob"} {
			expect(t, s.do("PUT", "Observation/o-"+p, obs("o-"+p, p, "laboratory", "2339-0", "2024-03-01T10:00:00Z", "final")), http.StatusCreated)
		}
		redirect := "http://127.0.0.1:9/callback" // never fetched: the test reads the redirect
		out, err := e.cli(t, dir, "client", "create", "--name", "Patient app", "--kind", "public", "--dev", "--json", "--log-level", "error",
			"--scope", "launch/patient openid fhirUser offline_access patient/*.rs", "--redirect-uri", redirect)
		if err != nil {
			t.Fatalf("client create: %v\n%s", err, out)
		}
		var client createdClient
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &client); err != nil {
			t.Fatalf("client create printed %q", out)
		}
		if out, err := e.cli(t, dir, "user", "create", "--kind", "patient", "--username", "ann", "--password", "Ann-pass-123", "--patient", "ann", "--log-level", "error"); err != nil {
			t.Fatalf("user create: %v\n%s", err, out)
		}

		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		visit := func(method, u string, form url.Values) browserPage {
			t.Helper()
			if strings.HasPrefix(u, "/") {
				u = s.root + u
			}
			var resp *http.Response
			var err error
			if method == "GET" {
				resp, err = browser.Get(u)
			} else {
				resp, err = browser.PostForm(u, form)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return browserPage{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
		}
		verifier := rand.Text() + rand.Text()
		sum := sha256.Sum256([]byte(verifier))
		authorize := url.Values{
			"response_type": {"code"}, "client_id": {client.ClientID}, "redirect_uri": {redirect},
			"scope": {"launch/patient openid fhirUser offline_access patient/*.rs"}, "state": {"s-1"}, "aud": {s.base},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}
		p := visit("GET", "/oauth/authorize?"+authorize.Encode(), nil)
		for p.status == http.StatusSeeOther || p.status == http.StatusFound {
			p = visit("GET", p.location, nil)
		}
		if !strings.Contains(p.body, `name="password"`) {
			t.Fatalf("expected the login page: %d %s", p.status, p.body)
		}
		login := p.hidden()
		login.Set("username", "ann")
		login.Set("password", "Ann-pass-123")
		p = visit("POST", "/oauth/login", login)
		for p.status == http.StatusSeeOther {
			p = visit("GET", p.location, nil)
		}
		if !strings.Contains(p.body, `name="approve"`) {
			t.Fatalf("expected the approval page: %d %s", p.status, p.body)
		}
		approve := p.hidden()
		approve["scope"] = []string{"launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"}
		approve.Set("approve", "1")
		p = visit("POST", "/oauth/approve", approve)
		back, err := url.Parse(p.location)
		if err != nil || !strings.HasPrefix(p.location, redirect) || back.Query().Get("state") != "s-1" || back.Query().Get("code") == "" {
			t.Fatalf("approval redirected to %q (%d)", p.location, p.status)
		}
		code := back.Query().Get("code")

		redeem := func(form url.Values) (int, map[string]any) {
			form.Set("client_id", client.ClientID)
			resp, err := http.PostForm(s.root+"/oauth/token", form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			return resp.StatusCode, m
		}
		status, tok := redeem(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
		if status != http.StatusOK || tok["patient"] != "ann" || tok["id_token"] == nil || tok["refresh_token"] == nil {
			t.Fatalf("token: %d %v", status, tok)
		}
		ann := s.as(tok["access_token"].(string))
		expect(t, ann.do("GET", "Patient/ann", nil), http.StatusOK)
		expectOutcome(t, ann.do("GET", "Patient/bob", nil), http.StatusNotFound)
		expectOutcome(t, ann.do("GET", "Observation/o-bob", nil), http.StatusNotFound)
		if got := ids(t, ann, "Observation?code=2339-0"); len(got) != 1 || got[0] != "o-ann" {
			t.Errorf("the patient's search finds %v, want only o-ann", got)
		}

		// The refresh token gives a new access token.
		status, refreshed := redeem(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
		if status != http.StatusOK || refreshed["access_token"] == nil {
			t.Fatalf("refresh: %d %v", status, refreshed)
		}
		expect(t, s.as(refreshed["access_token"].(string)).do("GET", "Observation/o-ann", nil), http.StatusOK)

		// A code used twice gets nothing, and what it gave is revoked.
		if status, body := redeem(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("reused code: %d %v", status, body)
		}
		if r := ann.do("GET", "Patient/ann", nil); r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("the access token of a reused code still works: %d %s", r.status, r.header.Get("WWW-Authenticate"))
		}
	})
}

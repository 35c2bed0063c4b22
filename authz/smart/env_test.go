package smart

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable clock starting at the wall clock (the store expires
// records by the wall clock).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	password    = "correct horse battery"
	appRedirect = "http://127.0.0.1:9/callback"
	appLaunch   = "http://127.0.0.1:9/launch"
)

// env is an authorization server on a real store, over HTTP, with:
// practices ALPHA and BETA; patients p1 (ALPHA, "Amy Shaw") and p2
// (BETA, "Bob Stone"); users "patty" (patient p1) and "doc" (practitioner
// pr1 in ALPHA); a public app, a confidential (secret) app and a backend
// client whose P-384 key is served by a local JWKS endpoint.
type env struct {
	t        testing.TB
	st       store.Store
	reg      *registry.Registry
	srv      *httptest.Server
	s        *Server
	tokens   *token.Authority
	clock    *clock
	fhirBase string

	public, conf, backend registry.Client
	confSecret            string
	backendKey            *ecdsa.PrivateKey
	jwks                  *httptest.Server
}

func openSQLite(t testing.TB) store.Store {
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnv(t testing.TB) *env { return newEnvOn(t, openSQLite(t)) }

func newEnvOn(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, st: st, clock: &clock{t: time.Now()}}
	var h http.Handler
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(e.srv.Close)
	e.fhirBase = e.srv.URL + "/fhir"

	keys, err := token.NewKeyring(st, token.KeyringOptions{Now: e.clock.Now})
	must(t, err)
	deny := token.NewDenylist(st, token.DenylistOptions{Now: e.clock.Now})
	e.tokens, err = token.NewAuthority(keys, deny, token.AuthorityOptions{Issuer: e.fhirBase, Audience: e.fhirBase, Now: e.clock.Now})
	must(t, err)
	av, err := token.NewAssertionVerifier(st, token.AssertionOptions{
		TokenURL: e.srv.URL + "/oauth/token", Dev: true, Now: e.clock.Now, FetchTimeout: 2 * time.Second,
	})
	must(t, err)
	t.Cleanup(av.Close)
	e.reg = registry.New(st, registry.Options{KDF: registry.KDF{Memory: 64, Time: 1, Threads: 1}})
	e.s, err = New(Config{
		Store: st, Registry: e.reg, Keys: keys, Tokens: e.tokens, Assertions: av,
		RootURL: e.srv.URL, FHIRBase: e.fhirBase, Dev: true, Now: e.clock.Now,
	})
	must(t, err)
	mux := http.NewServeMux()
	mux.Handle("/oauth/", e.s.Handler())
	mux.Handle("GET /fhir/.well-known/smart-configuration", e.s.Discovery())
	mux.Handle("GET /fhir/.well-known/openid-configuration", e.s.OpenIDConfiguration())
	h = mux

	for _, pin := range []string{"ALPHA", "BETA"} {
		_, err := e.reg.CreatePractice(ctx, registry.PracticeSpec{Name: "Practice " + pin, PIN: pin})
		must(t, err)
	}
	e.putResource("Patient", "p1", "ALPHA", `{"resourceType":"Patient","name":[{"family":"Shaw","given":["Amy"]}],"birthDate":"1980-02-03"}`)
	e.putResource("Patient", "p2", "BETA", `{"resourceType":"Patient","name":[{"family":"Stone","given":["Bob"]}],"birthDate":"1975-06-07"}`)
	e.putResource("Practitioner", "pr1", "ALPHA", `{"resourceType":"Practitioner","name":[{"family":"House","given":["Greg"]}]}`)
	_, err = e.reg.CreateUser(ctx, registry.UserSpec{Username: "patty", Password: password, Kind: registry.UserPatient, Patient: "p1"})
	must(t, err)
	_, err = e.reg.CreateUser(ctx, registry.UserSpec{Username: "doc", Password: password, Kind: registry.UserPractitioner, Practitioner: "pr1", Practices: []string{"ALPHA"}})
	must(t, err)

	e.public, _, err = e.reg.CreateClient(ctx, registry.ClientSpec{
		Name: "Public App", Kind: registry.KindPublic, Dev: true,
		Scope:        "launch launch/patient launch/encounter openid fhirUser offline_access online_access patient/*.rs user/*.rs",
		RedirectURIs: []string{appRedirect}, LaunchURL: appLaunch, Practices: []string{"ALPHA", "BETA"},
	})
	must(t, err)
	e.conf, e.confSecret, err = e.reg.CreateClient(ctx, registry.ClientSpec{
		Name: "Confidential App", Kind: registry.KindConfidential, Secret: true, Dev: true,
		Scope:        "launch/patient openid fhirUser offline_access patient/*.read user/*.read",
		RedirectURIs: []string{appRedirect}, Practices: []string{"ALPHA"},
	})
	must(t, err)

	e.backendKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(t, err)
	jwksDoc := jwksOf("k1", &e.backendKey.PublicKey)
	e.jwks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwksDoc)
	}))
	t.Cleanup(e.jwks.Close)
	e.backend, _, err = e.reg.CreateClient(ctx, registry.ClientSpec{
		Name: "Backend", Kind: registry.KindBackend, Dev: true, Scope: "system/*.rs",
		JWKSURL: e.jwks.URL + "/jwks.json", Practices: []string{"BETA"},
	})
	must(t, err)
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) putResource(typ, id, practice, body string) {
	obj, err := fhirjson.Parse([]byte(body))
	must(e.t, err)
	w, issues := resource.Prepare(store.OpUpdate, typ, id, obj, e.fhirBase)
	if len(issues) > 0 {
		e.t.Fatalf("%s/%s: %v", typ, id, issues)
	}
	w.Practice = practice
	_, err = e.st.Apply(context.Background(), []store.Write{w})
	must(e.t, err)
}

func jwksOf(kid string, pub *ecdsa.PublicKey) []byte {
	b := func(x []byte) string { return base64.RawURLEncoding.EncodeToString(x) }
	raw, _ := pub.Bytes() // 0x04 || X || Y
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-384", "kid": kid, "alg": "ES384", "use": "sig",
		"x": b(raw[1:49]), "y": b(raw[49:]),
	}}})
	return doc
}

// assertion signs a client assertion for the backend client; change may
// alter the claims and header before signing.
func (e *env) assertion(change func(c jwt.MapClaims, h map[string]any)) string {
	now := e.clock.Now()
	c := jwt.MapClaims{
		"iss": e.backend.ID, "sub": e.backend.ID, "aud": e.srv.URL + "/oauth/token",
		"exp": now.Add(4 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES384, c)
	tok.Header["kid"] = "k1"
	if change != nil {
		change(c, tok.Header)
	}
	raw, err := tok.SignedString(e.backendKey)
	must(e.t, err)
	return raw
}

// browser is a client with a cookie jar that does not follow redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (e *env) do(c *http.Client, method, path string, form url.Values) page {
	e.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = e.srv.URL + path
	}
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		if form != nil {
			u += "?" + form.Encode()
		}
		resp, err = c.Get(u)
	} else {
		resp, err = c.PostForm(u, form)
	}
	must(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b), header: resp.Header}
}

var hiddenRE = regexp.MustCompile(`name="(csrf|req)" value="([^"]*)"`)

// hidden returns a page's csrf and req fields.
func (p page) hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

var scopeBoxRE = regexp.MustCompile(`name="scope" value="([^"]*)"`)

func (p page) scopes() []string {
	var out []string
	for _, m := range scopeBoxRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// pkce returns a verifier and its S256 challenge.
func pkce() (string, string) {
	v := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authParams are a valid authorization request of client.
func (e *env) authParams(client registry.Client, scope, challenge string) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {appRedirect},
		"scope": {scope}, "state": {"st-42"}, "aud": {e.fhirBase},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
}

// login answers a login page p with user's credentials and returns the
// page the flow shows next.
func (e *env) login(b *http.Client, p page, user string) page {
	e.t.Helper()
	if !strings.Contains(p.body, `name="password"`) {
		e.t.Fatalf("expected the login page, got %d %s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("username", user)
	f.Set("password", password)
	r := e.do(b, "POST", "/oauth/login", f)
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return e.do(b, "GET", r.location, nil)
}

// approve approves the approval page p with the given scopes (all
// offered when nil) and returns the redirect URL's query.
func (e *env) approve(b *http.Client, p page, scopes []string) url.Values {
	e.t.Helper()
	if !strings.Contains(p.body, `name="approve"`) {
		e.t.Fatalf("expected the approval page, got %d %s", p.status, p.body)
	}
	f := p.hidden()
	if scopes == nil {
		scopes = p.scopes()
	}
	f["scope"] = scopes
	f.Set("approve", "1")
	r := e.do(b, "POST", "/oauth/approve", f)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location, appRedirect) {
		e.t.Fatalf("approve: %d %q %s", r.status, r.location, r.body)
	}
	u, _ := url.Parse(r.location)
	return u.Query()
}

// codeFor runs a standalone launch of client for user to its code; a
// practitioner picks patient.
func (e *env) codeFor(b *http.Client, client registry.Client, user, scope, patient string) (code, verifier string) {
	e.t.Helper()
	verifier, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(client, scope, challenge))
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("authorize: %d %q %s", r.status, r.location, r.body)
	}
	p := e.do(b, "GET", r.location, nil)
	if strings.Contains(p.body, `name="password"`) {
		p = e.login(b, p, user)
	}
	if strings.Contains(p.body, `type="radio"`) {
		f := p.hidden()
		f.Set("patient", patient)
		r := e.do(b, "POST", "/oauth/patient", f)
		if r.status != http.StatusSeeOther {
			e.t.Fatalf("picker: %d %s", r.status, r.body)
		}
		p = e.do(b, "GET", r.location, nil)
	}
	q := e.approve(b, p, nil)
	if q.Get("state") != "st-42" || q.Get("code") == "" {
		e.t.Fatalf("redirect query %v", q)
	}
	return q.Get("code"), verifier
}

// tokenReq posts to the token endpoint as client (public: client_id;
// confidential: Basic) and decodes the JSON answer.
func (e *env) tokenReq(client registry.Client, form url.Values) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	switch client.ID {
	case e.conf.ID:
		req.SetBasicAuth(url.QueryEscape(client.ID), url.QueryEscape(e.confSecret))
	case "":
	default:
		if form.Get("client_assertion") == "" && form.Get("client_id") == "" {
			form.Set("client_id", client.ID)
			req, _ = http.NewRequest("POST", e.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	resp, err := http.DefaultClient.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

func (e *env) redeem(client registry.Client, code, verifier string) (int, map[string]any) {
	e.t.Helper()
	st, out, _ := e.tokenReq(client, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "code_verifier": {verifier}})
	return st, out
}

// wantError checks an RFC 6749 error answer.
func wantError(t testing.TB, status int, body map[string]any, wantStatus int, code string) {
	t.Helper()
	if status != wantStatus || body["error"] != code {
		t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, code)
	}
	if d, _ := body["error_description"].(string); d == "" {
		t.Errorf("no error_description in %v", body)
	}
}

func (e *env) verify(raw any) (*token.AccessClaims, error) {
	s, _ := raw.(string)
	return e.tokens.VerifyAccess(context.Background(), s)
}

var _ = fmt.Sprintf

// registry0 is no client: tokenReq sends the form as given.
func registry0() registry.Client { return registry.Client{} }

func decodeJSON(resp *http.Response, v any) { json.NewDecoder(resp.Body).Decode(v) }

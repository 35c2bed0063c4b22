package portal

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/enginetest"
)

// The test world: practices ALPHA and BETA; staff users rita (reviewer,
// ALPHA), alan (administrator of ALPHA), bea (administrator of BETA) and
// sam (staff of ALPHA without a portal role).
const staffPass = "Staff-pass-1!"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	st    store.Store
	reg   *registry.Registry
	p     *Portal
	srv   *httptest.Server
	clock *clock
}

func TestMain(m *testing.M) { enginetest.Main(m) }

// newEnv is the test world on a new SQLite store.
func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvOn(t, enginetest.SQLite(t), mutate...)
}

// newEnvOn is the test world on st.
func newEnvOn(t *testing.T, st store.Store, mutate ...func(*Config)) *env {
	t.Helper()
	var err error
	ctx := context.Background()
	c := &clock{t: time.Now()}
	reg := registry.New(st, registry.Options{KDF: registry.KDF{Memory: 64, Time: 1, Threads: 1}, Now: c.now})
	for _, pin := range []string{"ALPHA", "BETA"} {
		if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: "Practice " + pin, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
	pol, err := policy.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, Registry: reg, Policy: pol, Dev: true, Now: c.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Limits: Limits{Burst: 1000, Every: time.Millisecond}}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name, pin string
		roles     []string
	}{{"rita", "ALPHA", []string{policy.RoleReviewer}}, {"alan", "ALPHA", []string{policy.RolePracticeAdmin}}, {"bea", "BETA", []string{policy.RolePracticeAdmin}}, {"sam", "ALPHA", nil}} {
		if _, err := reg.CreateUser(ctx, registry.UserSpec{Username: u.name, Password: staffPass, Kind: registry.UserStaff, Practices: []string{u.pin}}); err != nil {
			t.Fatal(err)
		}
		if u.roles != nil {
			if err := p.GrantRoles(ctx, u.name, u.roles...); err != nil {
				t.Fatal(err)
			}
		}
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, reg: reg, p: p, srv: srv, clock: c}
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status   int
	location string
	body     string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.t.Helper()
	var resp *http.Response
	var err error
	if method == "GET" {
		resp, err = b.c.Get(b.e.srv.URL + path)
	} else {
		resp, err = b.c.PostForm(b.e.srv.URL+path, form)
	}
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body)}
}

func (b *browser) get(path string) page { return b.do("GET", path, nil) }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

func (p page) csrf() string {
	if m := csrfRE.FindStringSubmatch(p.body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// submit GETs a form page and POSTs fields to action with its CSRF token.
func (b *browser) submit(formPage, action string, fields url.Values) page {
	b.e.t.Helper()
	pg := b.get(formPage)
	if pg.status != http.StatusOK {
		b.e.t.Fatalf("GET %s: %d %s", formPage, pg.status, pg.body)
	}
	f := url.Values{}
	for k, v := range fields {
		f[k] = v
	}
	f.Set("csrf", pg.csrf())
	return b.do("POST", action, f)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL + "/portal/")
	if name == "fhirgraph_admin" {
		u, _ = url.Parse(b.e.srv.URL + "/admin/")
	}
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

const devPass = "Vitals-Dev-42!"

// signup creates and verifies a developer account and logs the browser
// in.
func (e *env) developer(email string) *browser {
	e.t.Helper()
	b := e.browser()
	pg := b.submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada Dev"}, "organization": {"Acme Health"}, "email": {email}, "password": {devPass}, "password_confirm": {devPass}})
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Check your email") {
		e.t.Fatalf("signup: %d %s", pg.status, pg.body)
	}
	link := e.lastLink(email)
	u, _ := url.Parse(link)
	pg = b.get(u.RequestURI())
	if pg.status != http.StatusOK {
		e.t.Fatalf("verify page: %d %s", pg.status, pg.body)
	}
	pg = b.do("POST", "/portal/verify", url.Values{"csrf": {pg.csrf()}, "token": {u.Query().Get("token")}})
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "verified") {
		e.t.Fatalf("verify: %d %s", pg.status, pg.body)
	}
	b.login(email, devPass)
	return b
}

func (b *browser) login(email, pw string) page {
	b.e.t.Helper()
	pg := b.submit("/portal/login", "/portal/login", url.Values{"email": {email}, "password": {pw}})
	if pg.status != http.StatusSeeOther {
		b.e.t.Fatalf("login: %d %s", pg.status, pg.body)
	}
	return pg
}

func (e *env) staff(user string) *browser {
	e.t.Helper()
	b := e.browser()
	pg := b.submit("/admin/login", "/admin/login", url.Values{"username": {user}, "password": {staffPass}})
	if pg.status != http.StatusSeeOther {
		e.t.Fatalf("staff login %s: %d %s", user, pg.status, pg.body)
	}
	return b
}

func (e *env) lastLink(email string) string {
	e.t.Helper()
	e.p.bg.Wait() // mail written after an answer
	ms, err := e.p.Outbox(context.Background(), email)
	if err != nil || len(ms) == 0 {
		e.t.Fatalf("outbox of %s: %v, %d messages", email, err, len(ms))
	}
	return ms[len(ms)-1].Link
}

// validApp is a valid practitioner EHR-launch request for ALPHA.
func validApp() url.Values {
	return url.Values{
		"app_name": {"Vitals Viewer"}, "app_type": {"practitioner"},
		"purpose": {"Show vital signs"}, "intended_users": {"Nurses"},
		"requester_name": {"Ada Dev"}, "requester_organization": {"Acme Health"}, "requester_email": {"ada@example.org"}, "requester_phone": {"+1 555 010 0100"},
		"launch_type": {"ehr"}, "launch_url": {"https://app.example.org/launch"}, "practice_count": {"1"},
		"practice_pin_1": {"ALPHA"}, "practice_agreed_1": {"yes"},
		"client_type": {"confidential-symmetric"}, "refresh_token": {"yes"},
		"redirect_uris": {"https://app.example.org/callback"},
		"smart_version": {"2.0.0"}, "scope": {"launch openid fhirUser user/Patient.rs user/Observation.rs offline_access"},
		"accept_terms": {"yes"},
	}
}

func (b *browser) submitApp(form url.Values) page {
	b.e.t.Helper()
	return b.submit("/portal/applications/new", "/portal/applications/new", form)
}

func (e *env) apps(t *testing.T) []Application {
	t.Helper()
	apps, _, err := e.p.apps.Find(context.Background(), "record", "application")
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

package test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/portal"
	"github.com/fhirgraph/fhirgraph/authz/registry"
)

// The portal world: practices PORTA and PORTB with two patients each; a
// clinician of both practices; a reviewer; PORTA's administrator.
const (
	portA     = "PORTA"
	portB     = "PORTB"
	portPass  = "Portal-staff-1!"
	devEmail  = "ada@vitals.example"
	devPasswd = "Vitals-Dev-42!"
)

// portalWorld starts a server in development mode (the test app listens
// on http://127.0.0.1) with the world above, the staff's portal roles
// given with --portal-role, and returns it with a portal over its store,
// for the outbox.
func portalWorld(t *testing.T, e engine) (*server, *portal.Portal) {
	t.Helper()
	dir := t.TempDir()
	for _, pin := range []string{portA, portB} {
		if out, err := e.cli(t, dir, "practice", "create", "--name", "Practice "+pin, "--pin", pin, "--log-level", "error"); err != nil {
			t.Fatalf("practice create: %v\n%s", err, out)
		}
	}
	for _, user := range []struct{ name, pin string }{{"reviewer", portA}, {"porta-admin", portA}, {"portb-admin", portB}} {
		if out, err := e.cli(t, dir, "user", "create", "--kind", "staff", "--username", user.name, "--practice", user.pin, "--password", portPass, "--log-level", "error"); err != nil {
			t.Fatalf("user create %s: %v\n%s", user.name, err, out)
		}
	}
	s := e.start(t, dir, "--dev", "--portal-role", "reviewer=reviewer", "--portal-role", "porta-admin=practice-admin", "--portal-role", "portb-admin=practice-admin")
	a := s.as(s.mint("--scope", "system/*.cruds", "--practice", portA))
	b := s.as(s.mint("--scope", "system/*.cruds", "--practice", portB))
	for _, p := range []struct {
		w      *server
		id, fn string
	}{{a, "pa-1", "Alder"}, {a, "pa-2", "Aspen"}, {b, "pb-1", "Birch"}, {b, "pb-2", "Beech"}} {
		expect(t, p.w.do("PUT", "Patient/"+p.id, patient(p.fn, `,"id":"`+p.id+`"`)), http.StatusCreated)
	}
	expect(t, a.do("PUT", "Practitioner/prac-a", `{"resourceType":"Practitioner","id":"prac-a","name":[{"family":"Cole","given":["Casey"]}]}`), http.StatusCreated)
	if out, err := e.cli(t, dir, "user", "create", "--kind", "practitioner", "--username", "clinician", "--practitioner", "prac-a",
		"--practice", portA, "--practice", portB, "--password", portPass, "--log-level", "error"); err != nil {
		t.Fatalf("user create clinician: %v\n%s", err, out)
	}
	// A portal over the server's store, for its outbox.
	st := s.openStore(t)
	t.Cleanup(func() { st.Close() })
	pol, err := policy.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := portal.New(portal.Config{Store: st, Registry: registry.New(st, registry.Options{}), Policy: pol, Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// smartApp is the developer's app: its launch URL starts an
// authorization request with PKCE (the launch and iss it is given), its
// redirect URI keeps the code.
type smartApp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	clientID string
	verifier string
	codes    chan string
	iss      string
}

func newSMARTApp(t *testing.T, root string) *smartApp {
	a := &smartApp{codes: make(chan string, 1)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/launch":
			a.mu.Lock()
			a.verifier = rand.Text() + rand.Text()
			sum := sha256.Sum256([]byte(a.verifier))
			a.iss = r.URL.Query().Get("iss")
			q := url.Values{
				"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.srv.URL + "/callback"},
				"scope": {"launch openid fhirUser user/Patient.rs"}, "state": {"st-portal"}, "aud": {a.iss},
				"launch": {r.URL.Query().Get("launch")}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
			}
			a.mu.Unlock()
			http.Redirect(w, r, root+"/oauth/authorize?"+q.Encode(), http.StatusFound)
		case "/callback":
			select {
			case a.codes <- r.URL.Query().Get("code"):
			default:
			}
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<!doctype html><html lang="en"><title>Vitals Viewer</title><main><h1 id="app-done">Vitals Viewer is connected</h1></main></html>`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// TestPortalDeveloperToSMARTLaunchInChromium is the portal end to end in
// headless Chromium: a developer signs up, verifies the address with the
// link from the outbox, logs in and submits a practitioner EHR-launch
// app for PORTA; the reviewer approves it, PORTA's administrator
// consents; the developer sees it ACTIVE with its client id and creates
// its secret; a clinician of both PORTA and PORTB launches the app from
// the EHR, and the token the app gets reads PORTA's patients and none of
// PORTB's.
func TestPortalDeveloperToSMARTLaunchInChromium(t *testing.T) {
	if _, err := os.Stat(dashChromium); err != nil {
		t.Skipf("headless Chromium is not installed at %s (apt-get install chromium): %v", dashChromium, err)
	}
	s, p := portalWorld(t, embedded)
	app := newSMARTApp(t, s.root)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(dashChromium), chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	// tab is a browser context of its own (cookies apart): the developer,
	// the reviewer, the practice administrator, the clinician.
	tab := func() context.Context {
		ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
		ctx, cancel2 := context.WithTimeout(ctx, 90*time.Second)
		t.Cleanup(cancel2)
		return ctx
	}
	run := func(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("%s: %v\npage: %s", what, err, text)
		}
	}
	text := func(ctx context.Context, sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	pages := newPageWeights(t)

	// 1. Sign up.
	dev := tab()
	run(dev, "sign-up",
		chromedp.Navigate(s.root+"/portal/signup"),
		chromedp.WaitVisible(chromedp.ID("name")),
	)
	pages.measure(t, dev, "signup")
	screenshot(t, dev, "portal-signup.png")
	// An empty form: every field says what is missing, next to it.
	run(dev, "empty sign-up",
		chromedp.Click(chromedp.ID("signup")),
		chromedp.WaitVisible(chromedp.ID("page-error")),
		chromedp.WaitVisible(chromedp.ID("email-error")),
	)
	pages.measure(t, dev, "signup-errors")
	screenshot(t, dev, "portal-signup-errors.png")
	run(dev, "sign-up form",
		chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.SendKeys(chromedp.ID("organization"), "Vitals Inc"),
		chromedp.SendKeys(chromedp.ID("email"), devEmail),
		chromedp.SendKeys(chromedp.ID("password"), devPasswd),
		chromedp.SendKeys(chromedp.ID("password_confirm"), devPasswd),
		chromedp.Click(chromedp.ID("signup")),
		chromedp.WaitVisible(chromedp.ID("page-message")),
	)
	if msg := text(dev, "#page-message"); !strings.Contains(msg, devEmail) {
		t.Fatalf("after sign-up: %q", msg)
	}

	// 2. The verification link, from the outbox in the store.
	msgs, err := p.Outbox(context.Background(), devEmail)
	if err != nil || len(msgs) != 1 || !strings.HasPrefix(msgs[0].Link, s.root+"/portal/verify?token=") {
		t.Fatalf("outbox: %v %+v", err, msgs)
	}
	run(dev, "verification",
		chromedp.Navigate(msgs[0].Link),
		chromedp.WaitVisible(chromedp.ID("verify")),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("to-login")),
		chromedp.Click(chromedp.ID("to-login")),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	pages.measure(t, dev, "login")
	screenshot(t, dev, "portal-login.png")
	run(dev, "login",
		chromedp.SendKeys(chromedp.ID("email"), devEmail),
		chromedp.SendKeys(chromedp.ID("password"), devPasswd),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("tab-new")),
	)
	pages.measure(t, dev, "applications-empty")

	// 3. Submit a practitioner EHR-launch app for PORTA.
	run(dev, "the request form",
		chromedp.Click(chromedp.ID("tab-new")),
		chromedp.WaitVisible(chromedp.ID("app_name")),
	)
	pages.measure(t, dev, "new")
	run(dev, "empty request",
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("app_name-error")),
	)
	pages.measure(t, dev, "new-errors")
	screenshot(t, dev, "portal-new-errors.png")
	run(dev, "filling the request",
		chromedp.SendKeys(chromedp.ID("app_name"), "Vitals Viewer"),
		chromedp.Click(chromedp.ID("app_type-practitioner")),
		chromedp.SendKeys(chromedp.ID("purpose"), "Show a patient's vital signs during the visit"),
		chromedp.SendKeys(chromedp.ID("intended_users"), "Nurses and physicians"),
		chromedp.SendKeys(chromedp.ID("requester_phone"), "+1 555 010 0100"),
		chromedp.Click(chromedp.ID("launch_type-ehr")),
		chromedp.SendKeys(chromedp.ID("launch_url"), app.srv.URL+"/launch"),
		chromedp.SendKeys(chromedp.ID("practice_count"), "1"),
		chromedp.SendKeys(chromedp.ID("practice_pin_1"), portA),
		chromedp.Click(chromedp.ID("practice_agreed_1")),
		chromedp.Click(chromedp.ID("client_type-confidential-symmetric")),
		chromedp.Click(chromedp.ID("refresh_token-no")),
		chromedp.SendKeys(chromedp.ID("redirect_uris"), app.srv.URL+"/callback"),
		chromedp.Click(chromedp.CSS(`input[name="smart_version"][value="2.0.0"]`)),
		chromedp.SendKeys(chromedp.ID("scope"), "launch openid fhirUser user/Patient.rs user/Observation.rs"),
		chromedp.Click(chromedp.ID("accept_terms")),
	)
	screenshot(t, dev, "portal-new.png")
	run(dev, "submitting",
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("applications")),
	)
	if st := text(dev, "#applications tbody td.status"); st != "PENDING REVIEW" {
		t.Fatalf("after submitting the status is %q", st)
	}
	pages.measure(t, dev, "applications")
	screenshot(t, dev, "portal-applications-pending.png")

	// 4. The reviewer approves.
	rev := tab()
	run(rev, "reviewer login",
		chromedp.Navigate(s.root+"/admin"),
		chromedp.WaitVisible(chromedp.ID("username")),
	)
	pages.measure(t, rev, "admin-login")
	run(rev, "reviewer",
		chromedp.SendKeys(chromedp.ID("username"), "reviewer"),
		chromedp.SendKeys(chromedp.ID("password"), portPass),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("admin-applications")),
	)
	pages.measure(t, rev, "admin")
	screenshot(t, rev, "portal-admin.png")
	run(rev, "approval",
		chromedp.Click(chromedp.CSS(`#admin-applications a`)),
		chromedp.WaitVisible(chromedp.ID("approve")),
	)
	pages.measure(t, rev, "admin-application")
	screenshot(t, rev, "portal-admin-review.png")
	run(rev, "approving",
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("client-id")),
	)
	if st := text(rev, "#app-status"); st != "ACTIVE" {
		t.Fatalf("after approval: %q", st)
	}

	// 5. PORTA's administrator consents.
	adm := tab()
	run(adm, "practice administrator",
		chromedp.Navigate(s.root+"/admin/login"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "porta-admin"),
		chromedp.SendKeys(chromedp.ID("password"), portPass),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("admin-applications")),
		chromedp.Click(chromedp.CSS(`#admin-applications a`)),
		chromedp.WaitVisible(chromedp.ID("consent-"+portA)),
	)
	screenshot(t, adm, "portal-admin-consent.png")
	run(adm, "consenting",
		chromedp.Click(chromedp.ID("consent-"+portA)),
		chromedp.WaitVisible(chromedp.CSS(`#history tbody tr:nth-child(3)`)),
	)
	if c := text(adm, `#consents tr[data-pin="PORTA"]`); !strings.Contains(c, "confirmed by porta-admin") {
		t.Fatalf("consent row: %q", c)
	}

	// 6. The developer sees ACTIVE and the client id, and creates the secret.
	run(dev, "My Applications again",
		chromedp.Navigate(s.root+"/portal/applications"),
		chromedp.WaitVisible(chromedp.CSS(`#applications code.client-id`)),
	)
	if st := text(dev, "#applications tbody td.status"); st != "ACTIVE" {
		t.Fatalf("the developer sees %q", st)
	}
	clientID := text(dev, "#applications code.client-id")
	screenshot(t, dev, "portal-applications-active.png")
	run(dev, "the app's page",
		chromedp.Click(chromedp.CSS(`#applications a`)),
		chromedp.WaitVisible(chromedp.ID("rotate")),
	)
	pages.measure(t, dev, "application")
	run(dev, "creating the secret",
		chromedp.Click(chromedp.ID("rotate")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
	)
	secret := text(dev, "#client-secret")
	screenshot(t, dev, "portal-secret.png")
	if clientID == "" || len(secret) < 40 {
		t.Fatalf("client id %q, secret %q", clientID, secret)
	}
	app.mu.Lock()
	app.clientID = clientID
	app.mu.Unlock()

	// 7. A clinician of PORTA and PORTB launches the app from the EHR.
	doc := tab()
	run(doc, "EHR login",
		chromedp.Navigate(s.root+"/oauth/ehr"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "clinician"),
		chromedp.SendKeys(chromedp.ID("password"), portPass),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Launch Vitals Viewer for Ada Alder"]`)),
	)
	// The EHR lists both practices' patients (the clinician's), but the
	// app only where it may launch.
	if ehr := text(doc, "table"); !strings.Contains(ehr, "Ada Birch") {
		t.Fatalf("the EHR does not list PORTB's patients to their clinician: %s", ehr)
	}
	// PORTB did not consent: the app is not launched for its patient.
	run(doc, "EHR launch for PORTB's patient",
		chromedp.Click(chromedp.CSS(`button[aria-label="Launch Vitals Viewer for Ada Birch"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role="alert"]`)),
	)
	if refusal := text(doc, `p[role="alert"]`); !strings.Contains(refusal, "not one this app may open") {
		t.Errorf("launching for PORTB's patient: %q", refusal)
	}
	run(doc, "EHR launch and approval",
		chromedp.Navigate(s.root+"/oauth/ehr"),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Launch Vitals Viewer for Ada Alder"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Launch Vitals Viewer for Ada Alder"]`)),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("app-done")),
	)
	var code string
	select {
	case code = <-app.codes:
	case <-time.After(10 * time.Second):
		t.Fatal("the app got no code")
	}
	app.mu.Lock()
	verifier, iss := app.verifier, app.iss
	app.mu.Unlock()
	if iss != s.base {
		t.Errorf("launch iss %q, want %q", iss, s.base)
	}
	resp, err := http.PostForm(s.root+"/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.srv.URL + "/callback"},
		"code_verifier": {verifier}, "client_id": {clientID}, "client_secret": {secret},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || tok["access_token"] == nil || tok["patient"] != "pa-1" {
		t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	if tok["refresh_token"] != nil {
		t.Errorf("an app registered without refresh tokens got one")
	}

	// 8. The token reads PORTA's patients only.
	api := s.as(tok["access_token"].(string))
	got := ids(t, api, "Patient")
	sort.Strings(got)
	if strings.Join(got, ",") != "pa-1,pa-2" {
		t.Errorf("the app reads patients %v, want PORTA's pa-1 and pa-2 only", got)
	}
	expect(t, api.do("GET", "Patient/pa-2", nil), http.StatusOK)
	expectOutcome(t, api.do("GET", "Patient/pb-1", nil), http.StatusNotFound)

	pages.report(t)
}

// portalUser is a cookie-keeping HTTP client on the portal.
type portalUser struct {
	t *testing.T
	s *server
	c *http.Client
}

func newPortalUser(t *testing.T, s *server) *portalUser {
	jar, _ := cookiejar.New(nil)
	return &portalUser{t: t, s: s, c: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (u *portalUser) do(method, path string, form url.Values) browserPage {
	u.t.Helper()
	var resp *http.Response
	var err error
	if method == "GET" {
		resp, err = u.c.Get(u.s.root + path)
	} else {
		resp, err = u.c.PostForm(u.s.root+path, form)
	}
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return browserPage{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(b)}
}

// post GETs page and POSTs fields with its CSRF token to action.
func (u *portalUser) post(page, action string, fields url.Values) browserPage {
	u.t.Helper()
	f := url.Values{"csrf": {u.do("GET", page, nil).hidden().Get("csrf")}}
	for k, v := range fields {
		f[k] = v
	}
	return u.do("POST", action, f)
}

func (u *portalUser) expect(p browserPage, status int, what string) browserPage {
	u.t.Helper()
	if p.status != status {
		u.t.Fatalf("%s: %d, want %d\n%s", what, p.status, status, p.body)
	}
	return p
}

var appRowRE = regexp.MustCompile(`<tr data-id="([^"]+)"><td><a href="/admin/applications/[^"]+">([^<]+)</a>`)

// TestPortalPendingRejectedAndSuspendedAppsGetNoToken drives the portal
// over HTTP, on each engine: a pending request and a rejected one have no
// client at all; an approved app's client authenticates at the token
// endpoint, and once suspended it does not, nor may it start an
// authorization.
func TestPortalPendingRejectedAndSuspendedAppsGetNoToken(t *testing.T) {
	forEachEngine(t, pendingRejectedAndSuspendedAppsGetNoToken)
}

func pendingRejectedAndSuspendedAppsGetNoToken(t *testing.T, e engine) {
	s, p := portalWorld(t, e)
	dev := newPortalUser(t, s)
	dev.expect(dev.post("/portal/signup", "/portal/signup", url.Values{"name": {"Ada"}, "organization": {"Vitals Inc"}, "email": {devEmail}, "password": {devPasswd}, "password_confirm": {devPasswd}}), http.StatusOK, "sign-up")
	msgs, err := p.Outbox(context.Background(), devEmail)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outbox %v %v", msgs, err)
	}
	link, _ := url.Parse(msgs[0].Link)
	verify := dev.do("GET", link.RequestURI(), nil)
	dev.expect(dev.do("POST", "/portal/verify", url.Values{"csrf": {verify.hidden().Get("csrf")}, "token": {link.Query().Get("token")}}), http.StatusOK, "verify")
	dev.expect(dev.post("/portal/login", "/portal/login", url.Values{"email": {devEmail}, "password": {devPasswd}}), http.StatusSeeOther, "login")

	request := func(name string) url.Values {
		return url.Values{
			"app_name": {name}, "app_type": {"practitioner"}, "purpose": {"Charts"}, "intended_users": {"Nurses"},
			"requester_name": {"Ada"}, "requester_organization": {"Vitals Inc"}, "requester_email": {devEmail}, "requester_phone": {"555 010 0100"},
			"launch_type": {"standalone"}, "practice_count": {"1"}, "practice_pin_1": {portA}, "practice_agreed_1": {"yes"},
			"client_type": {"confidential-symmetric"}, "refresh_token": {"no"}, "redirect_uris": {"http://127.0.0.1:9/callback"},
			"smart_version": {"1.0.0"}, "scope": {"openid fhirUser user/Patient.read"}, "accept_terms": {"yes"},
		}
	}
	// CSRF through the real server: refused, nothing saved.
	f := request("Forged")
	dev.expect(dev.do("POST", "/portal/applications/new", f), http.StatusForbidden, "a request without the CSRF token")
	dev.expect(dev.post("/portal/applications/new", "/portal/applications/new", request("Rejected App")), http.StatusSeeOther, "first request")
	dev.expect(dev.post("/portal/applications/new", "/portal/applications/new", request("Suspended App")), http.StatusSeeOther, "second request")

	st := s.openStore(t)
	defer st.Close()
	reg := registry.New(st, registry.Options{})
	clients := func() map[string]registry.Client {
		all, err := reg.ListClients(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]registry.Client{}
		for _, c := range all {
			m[c.Name] = c
		}
		return m
	}
	if c := clients(); len(c) != 0 {
		t.Fatalf("pending requests have clients: %v", c)
	}
	if mine := dev.do("GET", "/portal/applications", nil).body; strings.Count(mine, "PENDING REVIEW") != 2 || strings.Contains(mine, `class="client-id"`) {
		t.Fatalf("My Applications: %s", mine)
	}

	rev := newPortalUser(t, s)
	rev.expect(rev.post("/admin/login", "/admin/login", url.Values{"username": {"reviewer"}, "password": {portPass}}), http.StatusSeeOther, "reviewer login")
	ids := map[string]string{}
	for _, m := range appRowRE.FindAllStringSubmatch(rev.do("GET", "/admin", nil).body, -1) {
		ids[m[2]] = m[1]
	}
	if len(ids) != 2 {
		t.Fatalf("the reviewer sees %v", ids)
	}
	page := "/admin/applications/" + ids["Rejected App"]
	rev.expect(rev.post(page, page+"/review", url.Values{"decision": {"reject"}, "reason": {"Duplicate of another app"}}), http.StatusSeeOther, "reject")
	page = "/admin/applications/" + ids["Suspended App"]
	rev.expect(rev.post(page, page+"/review", url.Values{"decision": {"approve"}}), http.StatusSeeOther, "approve")
	c := clients()
	if _, ok := c["Rejected App"]; ok || len(c) != 1 {
		t.Fatalf("clients after review: %v", c)
	}
	client := c["Suspended App"]
	if client.Status != registry.StatusActive || len(client.Practices) != 0 {
		t.Fatalf("approved client %+v: want active with no practice until PORTA consents", client)
	}
	if mine := dev.do("GET", "/portal/applications", nil).body; !strings.Contains(mine, "Reason: Duplicate of another app") || !strings.Contains(mine, client.ID) {
		t.Errorf("My Applications after review: %s", mine)
	}

	devPage := "/portal/applications/" + ids["Suspended App"]
	shown := dev.expect(dev.post(devPage, devPage+"/secret", nil), http.StatusOK, "secret")
	secret := regexp.MustCompile(`id="client-secret">([^<]+)<`).FindStringSubmatch(shown.body)
	if secret == nil {
		t.Fatalf("no secret shown: %s", shown.body)
	}
	tokenCall := func() (int, string) {
		resp, err := http.PostForm(s.root+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"},
			"redirect_uri": {"http://127.0.0.1:9/callback"}, "code_verifier": {strings.Repeat("v", 43)}, "client_id": {client.ID}, "client_secret": {secret[1]}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, str(m["error"])
	}
	if st, e := tokenCall(); st != http.StatusBadRequest || e != "invalid_grant" {
		t.Errorf("the active client at the token endpoint: %d %s, want the code refused (invalid_grant)", st, e)
	}
	rev.expect(rev.post(page, page+"/suspend", url.Values{"suspend_reason": {"Misuse"}}), http.StatusSeeOther, "suspend")
	if st, e := tokenCall(); st != http.StatusUnauthorized || e != "invalid_client" {
		t.Errorf("the suspended client at the token endpoint: %d %s, want invalid_client", st, e)
	}
	q := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {"http://127.0.0.1:9/callback"}, "scope": {"openid user/Patient.read"},
		"state": {"s"}, "aud": {s.base}, "code_challenge": {strings.Repeat("c", 43)}, "code_challenge_method": {"S256"}}
	if r := dev.do("GET", "/oauth/authorize?"+q.Encode(), nil); r.status < 400 || r.location != "" {
		t.Errorf("the suspended client starts an authorization: %d %s", r.status, r.location)
	}
}

// TestPortalOfTheDemo: serve --demo prints the portal and its staff
// logins, has a second practice with its own patients, and its reviewer
// logs in at /admin.
func TestPortalOfTheDemo(t *testing.T) {
	s := start(t, "", "--demo")
	out := s.out.String()
	if !strings.Contains(out, "developer portal: "+s.root+"/portal/signup") || !strings.Contains(out, `portal review: `+s.root+`/admin (log in as "reviewer"`) {
		t.Fatalf("the banner does not show the portal:\n%s", out)
	}
	harbor := s.as(s.mint("--scope", "system/*.rs", "--practice", "HARBOR"))
	if got := ids(t, harbor, "Patient"); len(got) != 5 || got[0] != "h0001" {
		t.Errorf("HARBOR's patients: %v", got)
	}
	rev := newPortalUser(t, s)
	rev.expect(rev.post("/admin/login", "/admin/login", url.Values{"username": {"reviewer"}, "password": {"Demo-pass1!"}}), http.StatusSeeOther, "the demo reviewer")
	adm := newPortalUser(t, s)
	adm.expect(adm.post("/admin/login", "/admin/login", url.Values{"username": {"harbor-admin"}, "password": {"Demo-pass1!"}}), http.StatusSeeOther, "HARBOR's administrator")
}

// --portal-role names a staff user and a known role, or serve refuses
// to start.
func TestPortalRoleFlagIsChecked(t *testing.T) {
	dir := t.TempDir()
	for flag, want := range map[string]string{
		"nobody=reviewer": "--portal-role nobody=reviewer",
		"someone=admin":   "want USER=reviewer or USER=practice-admin",
	} {
		out, err := cli(t, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "error", "--portal-role", flag)
		if err == nil || !strings.Contains(err.Error()+out, want) {
			t.Errorf("--portal-role %s: %v\n%s", flag, err, out)
		}
	}
}

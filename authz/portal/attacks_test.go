package portal

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
)

// After login, next= never sends the browser off the portal, however the
// path is dressed up: browsers drop tabs and newlines from a Location,
// and read "//host" as another host.
func TestLoginNextNeverLeavesThePortal(t *testing.T) {
	e := newEnv(t)
	e.developer("ada@example.org")
	for _, next := range []string{
		"/portal/../\t/evil.example/",
		"/portal/..\t/..//evil.example/",
		"/portal/../\x0b/evil.example/",
		"/portal/../%2F/evil.example/",
		"/portal/%2e%2e/%2E%2E/admin",
		"/portal/./../admin",
		"/portal/../..//evil.example",
		"/portal/..\\/evil.example",
		"//evil.example/portal/",
		"https://evil.example/portal/",
		"/portal/applications\r\nSet-Cookie: x=y",
	} {
		b := e.browser()
		pg := b.submit("/portal/login", "/portal/login", url.Values{"email": {"ada@example.org"}, "password": {devPass}, "next": {next}})
		if pg.status != http.StatusSeeOther {
			t.Fatalf("next=%q: login %d", next, pg.status)
		}
		// What a browser makes of the Location (WHATWG URL: tabs and
		// newlines removed, backslashes read as slashes).
		loc := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(pg.location)
		u, err := url.Parse(loc)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, "/portal/") || strings.ContainsAny(pg.location, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r") {
			t.Errorf("next=%q: redirected to %q", next, pg.location)
		}
	}
	// A plain portal page is kept.
	pg := e.browser().submit("/portal/login", "/portal/login", url.Values{"email": {"ada@example.org"}, "password": {devPass}, "next": {"/portal/applications/new?x=1"}})
	if pg.location != "/portal/applications/new?x=1" {
		t.Errorf("a portal page as next: %q", pg.location)
	}
}

// blockingMailer holds every Send while its gate is set, until the gate
// is closed.
type blockingMailer struct {
	mu   sync.Mutex
	gate chan struct{}
	sent []Message
}

func (m *blockingMailer) Send(ctx context.Context, msg Message) error {
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return nil
}

// The reset page answers without doing the registered address's work
// (its link, its mail) first: otherwise how long it takes tells whether
// the address has an account (an SMTP conversation takes a while).
func TestResetAnswerDoesNotWaitForTheAccountsMail(t *testing.T) {
	m := &blockingMailer{}
	e := newEnv(t, func(c *Config) { c.Mailer = m })
	e.developer("ada@example.org")
	gate := make(chan struct{})
	m.mu.Lock()
	m.gate = gate
	m.mu.Unlock()
	b := e.browser()
	form := b.get("/portal/reset")
	done := make(chan page, 1)
	go func() {
		done <- b.do("POST", "/portal/reset", url.Values{"csrf": {form.csrf()}, "email": {"ada@example.org"}})
	}()
	select {
	case pg := <-done:
		if pg.status != http.StatusOK || !strings.Contains(pg.body, "Check your email") {
			t.Errorf("reset: %d %s", pg.status, pg.body)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		<-done
		t.Fatal("the reset page waits for the registered address's mail to be sent")
	}
	close(gate)
	e.p.bg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.sent); n != 2 || !strings.Contains(m.sent[1].Body, "/portal/reset/confirm?token=") {
		t.Errorf("the reset mail was not sent afterwards: %d messages", n)
	}
}

// The JWKS fetch connects to public unicast addresses only
// (authz/internal/addr decides which).
func TestJWKSFetchRefusesAddressesThatAreNotPublic(t *testing.T) {
	// Outside development mode a loopback server is not fetched, even
	// though the test server answers.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"keys":[{"kty":"EC"}]}`))
	}))
	defer srv.Close()
	e := newEnv(t, func(c *Config) { c.Dev = false })
	if m := e.p.checkJWKS(context.Background(), srv.URL+"/jwks"); m == "" {
		t.Error("a loopback JWKS URL was fetched outside development mode")
	}
}

// A reviewer does not review a request they submitted or ask for
// themselves: a staff user whose username is the developer's or the
// requester's email is refused, and nothing changes.
func TestReviewerCannotReviewTheirOwnRequest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"ada@example.org", "req@example.org"} {
		if _, err := e.reg.CreateUser(ctx, registry.UserSpec{Username: name, Password: staffPass, Kind: registry.UserStaff, Practices: []string{"ALPHA"}}); err != nil {
			t.Fatal(err)
		}
		if err := e.p.GrantRoles(ctx, name, policy.RoleReviewer); err != nil {
			t.Fatal(err)
		}
	}
	dev := e.developer("ada@example.org")
	f := validApp()
	f.Set("requester_email", "REQ@example.org")
	if pg := dev.submitApp(f); pg.status != http.StatusSeeOther {
		t.Fatalf("submit: %d", pg.status)
	}
	a := e.apps(t)[0]
	for _, who := range []string{"ada@example.org", "req@example.org"} {
		rev := e.staff(who)
		pg := rev.get("/admin/applications/" + a.ID)
		for _, decision := range []string{"approve", "reject"} {
			if got := rev.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {pg.csrf()}, "decision": {decision}, "reason": {"mine"}}); got.status != http.StatusForbidden {
				t.Errorf("%s %ss their own request: %d", who, decision, got.status)
			}
		}
	}
	if a = e.apps(t)[0]; a.Status != StatusPending || a.ClientID != "" {
		t.Errorf("after self-review: %+v", a)
	}
	// Another reviewer may.
	rita := e.staff("rita")
	pg := rita.get("/admin/applications/" + a.ID)
	if got := rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {pg.csrf()}, "decision": {"approve"}}); got.status != http.StatusSeeOther {
		t.Errorf("rita approves: %d", got.status)
	}
}

// Outside development mode, a redirect or launch URL whose host a
// browser reads as an IPv4 address (its last label a number: "127.1",
// "0177.0.0.1", "0x7f.0.0.1") is held to the address's rules, which
// netip's strict parser would otherwise let through as a host name.
func TestRedirectAndLaunchURLsWithAddressesInDisguiseAreRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Dev = false })
	dev := e.developer("ada@example.org")
	for _, c := range []struct{ field, value string }{
		{"redirect_uris", "https://127.1/cb"},
		{"redirect_uris", "https://0177.0.0.1/cb"},
		{"redirect_uris", "https://0x7f.0.0.1/cb"},
		{"redirect_uris", "https://10.1.1/cb"},
		{"redirect_uris", "https://169.254.169.254./cb"},
		{"redirect_uris", "https://app.example.org/cb\nhttps://0x0a000001/cb"},
		{"redirect_uris", "https://192.168.0.0x1/cb"},
		{"redirect_uris", "https://[64:ff9b::7f00:1]/cb"},
		{"redirect_uris", "https://0.1.2.3/cb"},
		{"redirect_uris", "https://198.18.0.1/cb"},
		{"launch_url", "https://127.0.1/launch"},
		{"launch_url", "HTTPS://0x7F.1/launch"},
	} {
		f := validApp()
		f.Set(c.field, c.value)
		if pg := dev.submitApp(f); pg.status != http.StatusBadRequest || !strings.Contains(between(pg.body, `id="`+c.field+`-error">`, `</p>`), "public host") {
			t.Errorf("%s=%q: %d %s", c.field, c.value, pg.status, between(pg.body, `id="`+c.field+`-error">`, `</p>`))
		}
	}
	if n := len(e.apps(t)); n != 0 {
		t.Errorf("%d applications saved", n)
	}
	// Names with digits are names.
	f := validApp()
	f.Set("redirect_uris", "https://app1.example.org/cb\nhttps://1.example.org/cb\nhttps://93.184.215.14/cb")
	if pg := dev.submitApp(f); pg.status != http.StatusSeeOther {
		t.Errorf("ordinary hosts: %d %s", pg.status, between(pg.body, `id="redirect_uris-error">`, `</p>`))
	}
}

// A practice suspended after it consented does not turn the next
// consent, or the approval, into a server error (with the app's record
// and its client disagreeing): the client's practices are the confirmed
// ones that are active.
func TestConsentAndApprovalSkipSuspendedPractices(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dev := e.developer("ada@example.org")
	f := validApp()
	f.Set("practice_count", "2")
	f.Set("practice_pin_2", "BETA")
	f.Set("practice_agreed_2", "yes")
	dev.submitApp(f)
	a := e.apps(t)[0]
	consent := func(who, pin string) page {
		b := e.staff(who)
		pg := b.get("/admin/applications/" + a.ID)
		return b.do("POST", "/admin/applications/"+a.ID+"/consent", url.Values{"csrf": {pg.csrf()}, "pin": {pin}})
	}
	if pg := consent("alan", "ALPHA"); pg.status != http.StatusSeeOther {
		t.Fatalf("ALPHA consents: %d", pg.status)
	}
	if _, err := e.reg.SetPracticeStatus(ctx, "ALPHA", registry.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	rita := e.staff("rita")
	pg := rita.get("/admin/applications/" + a.ID)
	if got := rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {pg.csrf()}, "decision": {"approve"}}); got.status != http.StatusSeeOther {
		t.Fatalf("approval with a suspended consenting practice: %d %s", got.status, between(got.body, "<main", "</main>"))
	}
	a = e.apps(t)[0]
	if c, err := e.reg.GetClient(ctx, a.ClientID); err != nil || len(c.Practices) != 0 {
		t.Errorf("client %v %v: the suspended practice reaches it", c.Practices, err)
	}
	if pg := consent("bea", "BETA"); pg.status != http.StatusSeeOther {
		t.Fatalf("BETA consents after ALPHA's suspension: %d", pg.status)
	}
	if c, _ := e.reg.GetClient(ctx, a.ClientID); strings.Join(c.Practices, ",") != "BETA" {
		t.Errorf("client practices %v, want BETA", c.Practices)
	}
}

// Outside development mode a link (a bearer credential: it verifies an
// address or sets a password) is never written to the log, mailer or
// not; in development mode without a mailer it is.
func TestLinksAreLoggedOnlyInDevelopmentMode(t *testing.T) {
	for _, dev := range []bool{false, true} {
		var buf safeBuffer
		e := newEnv(t, func(c *Config) { c.Dev = dev; c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
		e.browser().submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada"}, "organization": {"Acme"}, "email": {"ada@example.org"}, "password": {devPass}, "password_confirm": {devPass}})
		e.browser().submit("/portal/reset", "/portal/reset", url.Values{"email": {"ada@example.org"}})
		e.p.bg.Wait()
		ms, _ := e.p.Outbox(context.Background(), "ada@example.org")
		if len(ms) != 2 {
			t.Fatalf("dev=%v: %d messages", dev, len(ms))
		}
		for _, m := range ms {
			_, tok, _ := strings.Cut(m.Link, "token=")
			if logged := strings.Contains(buf.String(), tok); tok == "" || logged != dev {
				t.Errorf("dev=%v: the link %s is logged: %v", dev, m.Link, logged)
			}
		}
	}
}

// A developer's password reset ends the developer's sessions, not those
// of a staff user whose username is the same address.
func TestResetEndsOnlyTheDevelopersSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.reg.CreateUser(ctx, registry.UserSpec{Username: "ada@example.org", Password: staffPass, Kind: registry.UserStaff, Practices: []string{"ALPHA"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.GrantRoles(ctx, "ada@example.org", policy.RoleReviewer); err != nil {
		t.Fatal(err)
	}
	dev := e.developer("ada@example.org")
	staff := e.staff("ada@example.org")
	b := e.browser()
	b.submit("/portal/reset", "/portal/reset", url.Values{"email": {"ada@example.org"}})
	link, _ := url.Parse(e.lastLink("ada@example.org"))
	form := b.get(link.RequestURI())
	const newPass = "Brand-new-Pass-7?"
	if pg := b.do("POST", "/portal/reset/confirm", url.Values{"csrf": {form.csrf()}, "token": {link.Query().Get("token")}, "password": {newPass}, "password_confirm": {newPass}}); pg.status != http.StatusOK {
		t.Fatalf("reset: %d", pg.status)
	}
	if pg := dev.get("/portal/applications"); pg.status != http.StatusSeeOther {
		t.Errorf("the developer's session outlives the reset: %d", pg.status)
	}
	if pg := staff.get("/admin"); pg.status != http.StatusOK {
		t.Errorf("the staff session of the same address ended: %d", pg.status)
	}
}

// Anyone may sign up with anyone's address: the mail that address then
// gets carries nothing the signer-up typed (a name could be a phishing
// message sent in the server's name). A verified account's reset mail
// greets its owner.
func TestMailToAnUnverifiedAddressCarriesNothingTyped(t *testing.T) {
	e := newEnv(t)
	const bait = "Call +1 555 0100 now https://evil.example/claim"
	b := e.browser()
	b.submit("/portal/signup", "/portal/signup", url.Values{"name": {bait}, "organization": {bait}, "email": {"victim@example.org"}, "password": {devPass}, "password_confirm": {devPass}})
	b.submit("/portal/reset", "/portal/reset", url.Values{"email": {"victim@example.org"}})
	e.p.bg.Wait()
	ms, _ := e.p.Outbox(context.Background(), "victim@example.org")
	if len(ms) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	for _, m := range ms {
		if strings.Contains(m.Body+m.Subject, "evil.example") {
			t.Errorf("%q carries the typed name:\n%s", m.Subject, m.Body)
		}
	}
	e.developer("ada@example.org")
	b.submit("/portal/reset", "/portal/reset", url.Values{"email": {"ada@example.org"}})
	e.p.bg.Wait()
	if ms, _ = e.p.Outbox(context.Background(), "ada@example.org"); !strings.HasPrefix(ms[len(ms)-1].Body, "Hello Ada Dev,") {
		t.Errorf("a verified account's reset mail: %q", ms[len(ms)-1].Body)
	}
}

// Visiting a form writes nothing to the store: an anonymous session is a
// cookie, and its CSRF token is derived from it. Otherwise every request
// without a cookie would add a record, for anyone to fill the store with.
func TestAnonymousVisitsWriteNoSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	stored := func(cookie string) bool {
		_, _, err := e.p.sessions.Get(ctx, hashID(cookie))
		return err == nil
	}
	for _, path := range []string{"/portal/login", "/portal/signup", "/portal/reset", "/admin/login", "/portal/verify?token=x.y", "/portal/reset/confirm?token=x.y"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cs := resp.Cookies(); len(cs) != 1 || cs[0].Value == "" || !cs[0].HttpOnly {
			t.Errorf("GET %s sets cookies %+v", path, cs)
		} else if stored(cs[0].Value) {
			t.Errorf("GET %s stored a session", path)
		}
	}
	// The anonymous token still guards the forms: another browser's is
	// refused; a login stores a session under a new cookie.
	a, b := e.browser(), e.browser()
	pa, pb := a.get("/admin/login"), b.get("/admin/login")
	if pa.csrf() == "" || pa.csrf() == pb.csrf() {
		t.Fatalf("anonymous tokens %q %q", pa.csrf(), pb.csrf())
	}
	if again := a.get("/admin/login"); again.csrf() != pa.csrf() {
		t.Error("the anonymous token changes between two pages of one browser")
	}
	if pg := a.do("POST", "/admin/login", url.Values{"csrf": {pb.csrf()}, "username": {"rita"}, "password": {staffPass}}); pg.status != http.StatusForbidden {
		t.Errorf("another browser's anonymous token: %d", pg.status)
	}
	before := a.cookie("fhirgraph_admin")
	if pg := a.do("POST", "/admin/login", url.Values{"csrf": {pa.csrf()}, "username": {"rita"}, "password": {staffPass}}); pg.status != http.StatusSeeOther {
		t.Errorf("the browser's own token: %d", pg.status)
	}
	if after := a.cookie("fhirgraph_admin"); after == before || !stored(after) {
		t.Error("the login stored no new session")
	}
	// A developer's anonymous token is no staff token.
	dev := e.browser()
	dev.jar.SetCookies(mustURL(e.srv.URL+"/portal/"), []*http.Cookie{{Name: "fhirgraph_portal", Value: before, Path: "/portal"}})
	if pg := dev.get("/portal/login"); pg.csrf() == "" || pg.csrf() == pa.csrf() {
		t.Error("one cookie value gives one token for both kinds")
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// One IPv6 host holds a whole /64: per-address limits count the /64, or
// a single client steps past them by changing its address.
func TestRateLimitsCountAnIPv6SlashSixtyFourAsOneClient(t *testing.T) {
	ip := func(remote string) string { return clientIP(&http.Request{RemoteAddr: remote}) }
	if a, b := ip("[2001:db8:1:2::1]:5555"), ip("[2001:db8:1:2:ffff:ee::9]:1"); a != b {
		t.Errorf("one /64 counts as %q and %q", a, b)
	}
	if a, b := ip("[2001:db8:1:2::1]:5555"), ip("[2001:db8:1:3::1]:5555"); a == b {
		t.Errorf("two /64s count as one: %q", a)
	}
	if a, b := ip("192.0.2.1:1"), ip("192.0.2.2:1"); a == b {
		t.Errorf("two IPv4 addresses count as one: %q", a)
	}
	if a, b := ip("[::ffff:192.0.2.1]:1"), ip("192.0.2.1:2"); a != b {
		t.Errorf("an IPv4-mapped address counts apart: %q %q", a, b)
	}
}

// A refused attempt charges and creates no further bucket (else one
// client, refused by its address's bucket, still makes a bucket per
// email it names), and the buckets are bounded in number.
func TestRefusedAttemptsDoNotGrowTheLimiter(t *testing.T) {
	lim := newLimiter(Limits{Burst: 1, Every: time.Hour})
	now := time.Now()
	if !lim.allow(now, "ip a", "email 0") {
		t.Fatal("the first attempt is refused")
	}
	for i := range 1000 {
		if lim.allow(now, "ip a", "email "+strings.Repeat("x", i)) {
			t.Fatal("a limited address passes")
		}
	}
	if n := len(lim.buckets); n != 2 {
		t.Errorf("%d buckets after one client's refused attempts", n)
	}
	full := newLimiter(Limits{Burst: 5, Every: time.Minute})
	for i := range maxBuckets {
		full.allow(now, "ip "+strings.Repeat("y", i%7)+string(rune(0x10000+i)))
	}
	if full.allow(now, "ip new") || len(full.buckets) > maxBuckets {
		t.Errorf("a full limiter takes a new client: %d buckets", len(full.buckets))
	}
	if !full.allow(now.Add(time.Hour), "ip new") {
		t.Error("idle buckets are not forgotten")
	}
}

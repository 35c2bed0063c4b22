package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/enginetest"
)

// TestRequestReviewConsentAndCredentials follows one practitioner app
// through the portal, on each engine: submitted PENDING REVIEW (no
// client), approved (ACTIVE, a registry client consented by no practice
// yet), consented by ALPHA's administrator (the client's practices are
// exactly ALPHA), the secret created once, rotated with a grace period,
// revoked; then suspended.
func TestRequestReviewConsentAndCredentials(t *testing.T) {
	enginetest.Each(t, func(t *testing.T, st store.Store) { requestReviewConsentAndCredentials(t, newEnvOn(t, st)) })
}

func requestReviewConsentAndCredentials(t *testing.T, e *env) {
	ctx := context.Background()
	dev := e.developer("ada@example.org")
	form := validApp()
	form.Set("practice_count", "2")
	form.Set("practice_pin_2", "beta")
	form.Set("practice_agreed_2", "yes")
	pg := dev.submitApp(form)
	if pg.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", pg.status, pg.body)
	}
	apps := e.apps(t)
	if len(apps) != 1 || apps[0].Status != StatusPending || apps[0].ClientID != "" || strings.Join(apps[0].PINs, ",") != "ALPHA,BETA" {
		t.Fatalf("stored %+v", apps)
	}
	a := apps[0]
	if a.Terms.Version != TermsVersion || a.Terms.AcceptedAt.IsZero() {
		t.Errorf("terms %+v", a.Terms)
	}
	if pg := dev.get("/portal/applications"); !strings.Contains(pg.body, "PENDING REVIEW") || strings.Contains(pg.body, `class="client-id"`) {
		t.Errorf("My Applications: %s", pg.body)
	}

	// sam has no portal role; alan administers ALPHA but does not review.
	if pg := e.browser().submit("/admin/login", "/admin/login", url.Values{"username": {"sam"}, "password": {staffPass}}); pg.status != http.StatusUnauthorized {
		t.Errorf("sam logs in at /admin: %d", pg.status)
	}
	alan := e.staff("alan")
	adminPage := alan.get("/admin/applications/" + a.ID)
	if strings.Contains(adminPage.body, `id="approve"`) || !strings.Contains(adminPage.body, `id="consent-ALPHA"`) || strings.Contains(adminPage.body, `id="consent-BETA"`) {
		t.Errorf("alan's page: %s", adminPage.body)
	}
	if pg := alan.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {adminPage.csrf()}, "decision": {"approve"}}); pg.status != http.StatusForbidden {
		t.Errorf("a practice administrator approves: %d", pg.status)
	}
	if pg := alan.do("POST", "/admin/applications/"+a.ID+"/consent", url.Values{"csrf": {adminPage.csrf()}, "pin": {"BETA"}}); pg.status != http.StatusForbidden {
		t.Errorf("ALPHA's administrator consents for BETA: %d", pg.status)
	}

	rita := e.staff("rita")
	review := rita.get("/admin/applications/" + a.ID)
	if pg := rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {review.csrf()}, "decision": {"approve"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", pg.status, pg.body)
	}
	a = e.apps(t)[0]
	if a.Status != StatusActive || a.ClientID == "" {
		t.Fatalf("after approval %+v", a)
	}
	c, err := e.reg.GetClient(ctx, a.ClientID)
	if err != nil || len(c.Practices) != 0 || c.Status != registry.StatusActive || c.LaunchURL != "https://app.example.org/launch" || c.SMARTVersion != registry.SMARTv2 {
		t.Fatalf("client %+v, %v: want active, no practice consented yet", c, err)
	}
	if pg := alan.do("POST", "/admin/applications/"+a.ID+"/consent", url.Values{"csrf": {adminPage.csrf()}, "pin": {"ALPHA"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("consent: %d %s", pg.status, pg.body)
	}
	if c, _ = e.reg.GetClient(ctx, a.ClientID); strings.Join(c.Practices, ",") != "ALPHA" {
		t.Fatalf("client practices %v, want ALPHA only", c.Practices)
	}
	a = e.apps(t)[0]
	var events []string
	for _, h := range a.History {
		events = append(events, string(h.Status)+"/"+h.Event+"/"+h.By)
	}
	if strings.Join(events, " ") != "pending-review//ada@example.org active//rita active/consent ALPHA/alan" {
		t.Errorf("history %v", events)
	}

	// The secret: created once, shown once, only its hash kept.
	appPage := dev.get("/portal/applications/" + a.ID)
	if !strings.Contains(appPage.body, a.ClientID) || !strings.Contains(appPage.body, "ACTIVE") {
		t.Fatalf("app page: %s", appPage.body)
	}
	pg = dev.do("POST", "/portal/applications/"+a.ID+"/secret", url.Values{"csrf": {appPage.csrf()}})
	first := between(pg.body, `id="client-secret">`, "<")
	if pg.status != http.StatusOK || first == "" {
		t.Fatalf("secret: %d %s", pg.status, pg.body)
	}
	if again := dev.get("/portal/applications/" + a.ID); strings.Contains(again.body, first) {
		t.Error("the secret is shown twice")
	}
	if _, err := e.reg.Authenticate(ctx, a.ClientID, first); err != nil {
		t.Fatalf("the secret shown does not authenticate: %v", err)
	}
	pg = dev.do("POST", "/portal/applications/"+a.ID+"/secret", url.Values{"csrf": {appPage.csrf()}})
	second := between(pg.body, `id="client-secret">`, "<")
	for _, s := range []string{first, second} {
		if _, err := e.reg.Authenticate(ctx, a.ClientID, s); err != nil {
			t.Errorf("during the grace period a secret fails: %v", err)
		}
	}
	e.clock.add(25 * 3600e9)
	if _, err := e.reg.Authenticate(ctx, a.ClientID, first); err == nil {
		t.Error("the rotated secret works after the grace period")
	}
	if _, err := e.reg.Authenticate(ctx, a.ClientID, second); err != nil {
		t.Errorf("the new secret fails: %v", err)
	}
	dev.login("ada@example.org", devPass) // the session outlived the clock's jump
	appPage = dev.get("/portal/applications/" + a.ID)
	dev.do("POST", "/portal/applications/"+a.ID+"/revoke", url.Values{"csrf": {appPage.csrf()}})
	if _, err := e.reg.Authenticate(ctx, a.ClientID, second); err == nil {
		t.Error("a revoked secret works")
	}

	// Suspension needs a reason; the client stops authenticating.
	rita.login2(t)
	review = rita.get("/admin/applications/" + a.ID)
	if pg := rita.do("POST", "/admin/applications/"+a.ID+"/suspend", url.Values{"csrf": {review.csrf()}}); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "Give the reason for the suspension") {
		t.Errorf("suspend without reason: %d", pg.status)
	}
	if pg := rita.do("POST", "/admin/applications/"+a.ID+"/suspend", url.Values{"csrf": {review.csrf()}, "suspend_reason": {"Leaked secret"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("suspend: %d %s", pg.status, pg.body)
	}
	if c, _ = e.reg.GetClient(ctx, a.ClientID); c.Status != registry.StatusSuspended {
		t.Errorf("client after suspension: %s", c.Status)
	}
	if pg := dev.get("/portal/applications"); !strings.Contains(pg.body, "SUSPENDED") || !strings.Contains(pg.body, "Leaked secret") {
		t.Errorf("developer sees %s", pg.body)
	}
}

// login2 logs rita in again after the clock moved past her session.
func (b *browser) login2(t *testing.T) {
	t.Helper()
	pg := b.submit("/admin/login", "/admin/login", url.Values{"username": {"rita"}, "password": {staffPass}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("rita: %d", pg.status)
	}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}

// A rejection needs a reason, which the developer sees; a rejected
// request never becomes a client.
func TestRejectionShowsTheReasonAndMakesNoClient(t *testing.T) {
	e := newEnv(t)
	dev := e.developer("ada@example.org")
	dev.submitApp(validApp())
	a := e.apps(t)[0]
	rita := e.staff("rita")
	review := rita.get("/admin/applications/" + a.ID)
	pg := rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {review.csrf()}, "decision": {"reject"}})
	if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, `id="reason-error"`) || !strings.Contains(pg.body, "Give the reason for the rejection") {
		t.Fatalf("reject without reason: %d %s", pg.status, pg.body)
	}
	if e.apps(t)[0].Status != StatusPending {
		t.Fatal("a reasonless rejection changed the status")
	}
	rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {review.csrf()}, "decision": {"reject"}, "reason": {"Scopes too broad"}})
	a = e.apps(t)[0]
	if a.Status != StatusRejected || a.ClientID != "" || a.Reason != "Scopes too broad" {
		t.Fatalf("after rejection %+v", a)
	}
	clients, _ := e.reg.ListClients(context.Background())
	if len(clients) != 0 {
		t.Errorf("a rejected request made clients %v", clients)
	}
	if pg := dev.get("/portal/applications"); !strings.Contains(pg.body, "REJECTED") || !strings.Contains(pg.body, "Reason: Scopes too broad") {
		t.Errorf("My Applications: %s", pg.body)
	}
	// A second review is refused.
	if pg := rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {review.csrf()}, "decision": {"approve"}}); pg.status != http.StatusBadRequest {
		t.Errorf("approving a rejected request: %d", pg.status)
	}
}

// A practice may consent before the review: the client made at approval
// starts with it.
func TestConsentBeforeApprovalReachesTheClient(t *testing.T) {
	e := newEnv(t)
	dev := e.developer("ada@example.org")
	dev.submitApp(validApp())
	a := e.apps(t)[0]
	alan := e.staff("alan")
	pg := alan.get("/admin/applications/" + a.ID)
	if pg := alan.do("POST", "/admin/applications/"+a.ID+"/consent", url.Values{"csrf": {pg.csrf()}, "pin": {"ALPHA"}}); pg.status != http.StatusSeeOther {
		t.Fatalf("consent: %d", pg.status)
	}
	if a = e.apps(t)[0]; a.Status != StatusPending || a.ClientID != "" || strings.Join(a.Confirmed(), ",") != "ALPHA" {
		t.Fatalf("after consent %+v", a)
	}
	rita := e.staff("rita")
	pg = rita.get("/admin/applications/" + a.ID)
	rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {pg.csrf()}, "decision": {"approve"}})
	a = e.apps(t)[0]
	c, err := e.reg.GetClient(context.Background(), a.ClientID)
	if err != nil || strings.Join(c.Practices, ",") != "ALPHA" {
		t.Fatalf("client %+v %v, want ALPHA consented", c, err)
	}
}

// Pages that need a login send the browser to it.
func TestPagesNeedingALoginRedirect(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for path, want := range map[string]string{
		"/portal/applications":     "/portal/login?next=%2Fportal%2Fapplications",
		"/portal/applications/new": "/portal/login?next=%2Fportal%2Fapplications%2Fnew",
		"/portal/applications/abc": "/portal/login?next=%2Fportal%2Fapplications%2Fabc",
		"/admin":                   "/admin/login",
		"/admin/applications/abc":  "/admin/login",
	} {
		if pg := b.get(path); pg.status != http.StatusSeeOther || pg.location != want {
			t.Errorf("GET %s: %d %q, want a redirect to %s", path, pg.status, pg.location, want)
		}
	}
	// A developer session does not open the staff pages.
	dev := e.developer("ada@example.org")
	if pg := dev.get("/admin"); pg.status != http.StatusSeeOther || pg.location != "/admin/login" {
		t.Errorf("a developer at /admin: %d %s", pg.status, pg.location)
	}
	// Another developer's application is not found.
	dev.submitApp(validApp())
	other := e.developer("bob@example.org")
	if pg := other.get("/portal/applications/" + e.apps(t)[0].ID); pg.status != http.StatusNotFound {
		t.Errorf("another developer's application: %d", pg.status)
	}
}

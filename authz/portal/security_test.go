package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every form refuses a POST without the session's CSRF token, or with
// another session's, and changes nothing.
func TestFormsRefuseMissingOrForeignCSRFTokens(t *testing.T) {
	e := newEnv(t)
	dev := e.developer("ada@example.org")
	dev.submitApp(validApp())
	a := e.apps(t)[0]
	rita := e.staff("rita")
	other := e.browser()
	foreign := other.get("/portal/signup").csrf()
	staffForeign := other.get("/admin/login").csrf()
	for _, c := range []struct {
		b      *browser
		path   string
		fields url.Values
		token  string
	}{
		{e.browser(), "/portal/signup", url.Values{"name": {"X"}, "organization": {"Y"}, "email": {"x@example.org"}, "password": {devPass}, "password_confirm": {devPass}}, ""},
		{e.browser(), "/portal/login", url.Values{"email": {"ada@example.org"}, "password": {devPass}}, foreign},
		{e.browser(), "/portal/reset", url.Values{"email": {"ada@example.org"}}, ""},
		{dev, "/portal/applications/new", validApp(), foreign},
		{dev, "/portal/applications/new", validApp(), ""},
		{dev, "/portal/logout", nil, ""},
		{rita, "/admin/applications/" + a.ID + "/review", url.Values{"decision": {"approve"}}, ""},
		{rita, "/admin/applications/" + a.ID + "/review", url.Values{"decision": {"approve"}}, staffForeign},
		{e.browser(), "/admin/login", url.Values{"username": {"rita"}, "password": {staffPass}}, ""},
	} {
		f := url.Values{}
		for k, v := range c.fields {
			f[k] = v
		}
		if c.token != "" {
			f.Set("csrf", c.token)
		}
		if pg := c.b.do("POST", c.path, f); pg.status != http.StatusForbidden || !strings.Contains(pg.body, "The form expired or was not sent by this site") {
			t.Errorf("POST %s with csrf %q: %d", c.path, c.token, pg.status)
		}
	}
	if apps := e.apps(t); len(apps) != 1 || apps[0].Status != StatusPending {
		t.Errorf("applications changed: %+v", apps)
	}
	if recs, _, _ := e.p.developers.Find(context.Background(), "record", "developer"); len(recs) != 1 {
		t.Errorf("%d accounts", len(recs))
	}
	// The developer is still logged in (the logout was refused).
	if pg := dev.get("/portal/applications"); pg.status != http.StatusOK {
		t.Errorf("after a forged logout: %d", pg.status)
	}
}

// Logging in replaces the session: a session id planted before login
// (session fixation) is worth nothing after it; logging out ends it.
func TestLoginRotatesTheSession(t *testing.T) {
	e := newEnv(t)
	e.developer("ada@example.org")
	for _, side := range []struct{ cookie, loginPage, user, pass, home, field string }{
		{"fhirgraph_portal", "/portal/login", "ada@example.org", devPass, "/portal/applications", "email"},
		{"fhirgraph_admin", "/admin/login", "rita", staffPass, "/admin", "username"},
	} {
		b := e.browser()
		pg := b.get(side.loginPage)
		before := b.cookie(side.cookie)
		if before == "" {
			t.Fatalf("%s set no cookie", side.loginPage)
		}
		// The attacker keeps a copy of the pre-login cookie.
		attacker := e.browser()
		u, _ := url.Parse(e.srv.URL + side.loginPage)
		attacker.jar.SetCookies(u, []*http.Cookie{{Name: side.cookie, Value: before, Path: "/"}})
		if pg := b.do("POST", side.loginPage, url.Values{"csrf": {pg.csrf()}, side.field: {side.user}, "password": {side.pass}}); pg.status != http.StatusSeeOther {
			t.Fatalf("login: %d %s", pg.status, pg.body)
		}
		after := b.cookie(side.cookie)
		if after == "" || after == before {
			t.Errorf("%s: the session id did not change at login", side.cookie)
		}
		if pg := attacker.get(side.home); pg.status != http.StatusSeeOther {
			t.Errorf("%s: the pre-login session reaches %s: %d", side.cookie, side.home, pg.status)
		}
		if pg := b.get(side.home); pg.status != http.StatusOK {
			t.Errorf("%s: the new session does not reach %s: %d", side.cookie, side.home, pg.status)
		}
		home := b.get(side.home)
		b.do("POST", strings.TrimSuffix(side.home, "/applications")+"/logout", url.Values{"csrf": {home.csrf()}})
		if pg := b.get(side.home); pg.status != http.StatusSeeOther {
			t.Errorf("%s: after logout %s answers %d", side.cookie, side.home, pg.status)
		}
	}
}

// Cookies are HttpOnly and SameSite=Lax, and Secure outside development
// mode.
func TestSessionCookieAttributes(t *testing.T) {
	for _, dev := range []bool{true, false} {
		e := newEnv(t, func(c *Config) { c.Dev = dev })
		resp, err := http.Get(e.srv.URL + "/portal/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode || cs[0].Secure == dev || cs[0].Path != "/portal" {
			t.Errorf("dev=%v: cookies %+v", dev, cs)
		}
	}
}

// What a user typed is shown escaped on every page that shows it.
func TestUserInputIsEscapedEverywhere(t *testing.T) {
	e := newEnv(t)
	const x = `<script>alert("x")</script>`
	b := e.browser()
	b.submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada " + x}, "organization": {"Org " + x}, "email": {"ada@example.org"}, "password": {devPass}, "password_confirm": {devPass}})
	link, _ := url.Parse(e.lastLink("ada@example.org"))
	pg := b.get(link.RequestURI())
	b.do("POST", "/portal/verify", url.Values{"csrf": {pg.csrf()}, "token": {link.Query().Get("token")}})
	b.login("ada@example.org", devPass)
	f := validApp()
	for _, k := range []string{"app_name", "purpose", "intended_users", "requester_name", "requester_organization"} {
		f.Set(k, f.Get(k)+" "+x)
	}
	f.Set("redirect_uris", `https://app.example.org/cb?x="><script>alert(1)</script>`)
	// A refused form shows the values back, escaped.
	bad := url.Values{}
	for k, v := range f {
		bad[k] = v
	}
	bad.Set("requester_phone", "<b>"+x)
	pages := map[string]string{"refused form": b.submitApp(bad).body}
	if pg := b.submitApp(f); pg.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", pg.status, between(pg.body, "<main", "</main>"))
	}
	a := e.apps(t)[0]
	rita := e.staff("rita")
	review := rita.get("/admin/applications/" + a.ID)
	rita.do("POST", "/admin/applications/"+a.ID+"/review", url.Values{"csrf": {review.csrf()}, "decision": {"reject"}, "reason": {"No " + x}})
	pages["My Applications"] = b.get("/portal/applications").body
	pages["application"] = b.get("/portal/applications/" + a.ID).body
	pages["admin list"] = rita.get("/admin").body
	pages["admin application"] = rita.get("/admin/applications/" + a.ID).body
	for name, body := range pages {
		if strings.Contains(body, "<script") || strings.Contains(body, "<b>") {
			t.Errorf("%s shows markup a user typed:\n%s", name, body)
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("%s does not show the typed text (escaped)", name)
		}
	}
	for _, want := range []string{"Ada ", "Org ", "Vitals Viewer ", "Show vital signs ", "Nurses ", "No "} {
		all := strings.Join([]string{pages["application"], pages["admin application"], pages["My Applications"]}, "")
		if !strings.Contains(all, want+"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%q is not shown escaped", want)
		}
	}
}

// Sign-up, login and reset are limited per client address and per
// email: a 429 page with the form and a message, nothing done.
func TestSignupLoginAndResetAreRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits = Limits{Burst: 3, Every: time.Hour} })
	b := e.browser()
	for _, c := range []struct {
		path   string
		fields func(i int) url.Values
	}{
		{"/portal/login", func(i int) url.Values { return url.Values{"email": {"ada@example.org"}, "password": {"Wrong-pass-1!"}} }},
		{"/portal/reset", func(i int) url.Values { return url.Values{"email": {"x" + string(rune('a'+i)) + "@example.org"}} }},
		{"/portal/signup", func(i int) url.Values {
			return url.Values{"name": {"N"}, "organization": {"O"}, "email": {"s" + string(rune('a'+i)) + "@example.org"}, "password": {devPass}, "password_confirm": {devPass}}
		}},
	} {
		var last page
		for i := range 4 {
			last = b.submit(c.path, c.path, c.fields(i))
			if i < 3 && last.status == http.StatusTooManyRequests {
				t.Fatalf("%s: attempt %d limited", c.path, i+1)
			}
		}
		if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "Too many attempts. Wait a minute and try again.") || !strings.Contains(last.body, `<form method="post"`) {
			t.Errorf("%s: the 4th attempt from one address: %d", c.path, last.status)
		}
	}
	// Three sign-ups went through; the fourth did nothing.
	if recs, _, _ := e.p.developers.Find(context.Background(), "record", "developer"); len(recs) != 3 {
		t.Errorf("%d accounts, want 3", len(recs))
	}
	// Per email: a limited address stays limited from another client.
	lim := newLimiter(Limits{Burst: 2, Every: time.Hour})
	now := time.Now()
	if !lim.allow(now, "ip a", "email x") || !lim.allow(now, "ip b", "email x") || lim.allow(now, "ip c", "email x") {
		t.Error("the per-email bucket does not limit across addresses")
	}
	if !lim.allow(now.Add(time.Hour), "ip c", "email x") {
		t.Error("the bucket does not refill")
	}
}

// Whether an email has an account is not told: sign-up, reset and login
// answer alike (the mail differs, which only the address's owner reads).
func TestMessagesDoNotRevealRegisteredEmails(t *testing.T) {
	e := newEnv(t)
	e.developer("ada@example.org")
	strip := func(body, email string) string {
		main := strings.ReplaceAll(between(body, `<main id="main">`, "</main>"), email, "EMAIL")
		return csrfRE.ReplaceAllString(main, "CSRF")
	}
	signup := func(email string) page {
		return e.browser().submit("/portal/signup", "/portal/signup", url.Values{"name": {"N"}, "organization": {"O"}, "email": {email}, "password": {devPass}, "password_confirm": {devPass}})
	}
	known, unknown := signup("ada@example.org"), signup("new@example.org")
	if known.status != unknown.status || strip(known.body, "ada@example.org") != strip(unknown.body, "new@example.org") {
		t.Errorf("sign-up differs:\n%s\n%s", known.body, unknown.body)
	}
	ms, _ := e.p.Outbox(context.Background(), "ada@example.org")
	if last := ms[len(ms)-1]; last.Link != "" || !strings.Contains(last.Body, "already has one") {
		t.Errorf("the owner of a registered address is not told: %+v", last)
	}
	reset := func(email string) page {
		return e.browser().submit("/portal/reset", "/portal/reset", url.Values{"email": {email}})
	}
	known, unknown = reset("ada@example.org"), reset("nobody@example.org")
	if known.status != unknown.status || strip(known.body, "ada@example.org") != strip(unknown.body, "nobody@example.org") {
		t.Errorf("reset differs:\n%s\n%s", known.body, unknown.body)
	}
	login := func(email, pw string) page {
		return e.browser().submit("/portal/login", "/portal/login", url.Values{"email": {email}, "password": {pw}})
	}
	known, unknown = login("ada@example.org", "Wrong-pass-1!"), login("nobody@example.org", "Wrong-pass-1!")
	if known.status != http.StatusUnauthorized || known.status != unknown.status || strip(known.body, "ada@example.org") != strip(unknown.body, "nobody@example.org") {
		t.Errorf("login differs: %d %d", known.status, unknown.status)
	}
}

// A reset link works once, within its lifetime, for a password that
// meets the policy; it ends the account's sessions.
func TestPasswordResetLink(t *testing.T) {
	e := newEnv(t)
	old := e.developer("ada@example.org")
	b := e.browser()
	b.submit("/portal/reset", "/portal/reset", url.Values{"email": {"ada@example.org"}})
	link, _ := url.Parse(e.lastLink("ada@example.org"))
	form := b.get(link.RequestURI())
	if form.status != http.StatusOK {
		t.Fatalf("reset page: %d", form.status)
	}
	tok := link.Query().Get("token")
	pg := b.do("POST", "/portal/reset/confirm", url.Values{"csrf": {form.csrf()}, "token": {tok}, "password": {"password"}, "password_confirm": {"password"}})
	if pg.status != http.StatusBadRequest || !fieldError(pg.body, "password", "Include at least one capital letter (A to Z).") {
		t.Fatalf("weak password: %d", pg.status)
	}
	const newPass = "Brand-new-Pass-7?"
	pg = b.do("POST", "/portal/reset/confirm", url.Values{"csrf": {form.csrf()}, "token": {tok}, "password": {newPass}, "password_confirm": {newPass}})
	if pg.status != http.StatusOK || !strings.Contains(pg.body, "Your password is changed") {
		t.Fatalf("reset: %d %s", pg.status, pg.body)
	}
	if pg := b.do("POST", "/portal/reset/confirm", url.Values{"csrf": {form.csrf()}, "token": {tok}, "password": {newPass}, "password_confirm": {newPass}}); pg.status != http.StatusBadRequest {
		t.Errorf("the link works twice: %d", pg.status)
	}
	if pg := old.get("/portal/applications"); pg.status != http.StatusSeeOther {
		t.Errorf("a session from before the reset lives on: %d", pg.status)
	}
	if pg := e.browser().submit("/portal/login", "/portal/login", url.Values{"email": {"ada@example.org"}, "password": {devPass}}); pg.status != http.StatusUnauthorized {
		t.Errorf("the old password works: %d", pg.status)
	}
	e.browser().login("ada@example.org", newPass)

	// Expired links are refused.
	b.submit("/portal/reset", "/portal/reset", url.Values{"email": {"ada@example.org"}})
	link, _ = url.Parse(e.lastLink("ada@example.org"))
	e.clock.add(61 * time.Minute)
	if pg := b.get(link.RequestURI()); pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "not valid") {
		t.Errorf("an expired reset link: %d", pg.status)
	}
}

// Verification links are signed, single-use and of one purpose.
func TestVerificationLinksAreSignedAndSingleUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.p.newLink(ctx, purposeVerify, "ada@example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nonce, sig, _ := strings.Cut(tok, ".")
	forged := nonce + "." + strings.Repeat("A", len(sig))
	if _, err := e.p.useLink(ctx, purposeVerify, forged); err != errBadLink {
		t.Errorf("a forged signature: %v", err)
	}
	if _, err := e.p.useLink(ctx, purposeReset, tok); err != errBadLink {
		t.Errorf("a verification link resets: %v", err)
	}
	// A copy of the record changed to another address does not verify it.
	l, rev, _ := e.p.links.Get(ctx, nonce)
	l.Email = "eve@example.org"
	e.p.links.Change(ctx, nonce, l.Exp, func(x *link) (bool, error) { *x = l; return true, nil })
	if _, err := e.p.useLink(ctx, purposeVerify, tok); err != errBadLink {
		t.Errorf("a tampered record: %v", err)
	}
	_ = rev
	tok, _ = e.p.newLink(ctx, purposeVerify, "ada@example.org", time.Hour)
	if email, err := e.p.useLink(ctx, purposeVerify, tok); err != nil || email != "ada@example.org" {
		t.Fatalf("use: %q %v", email, err)
	}
	if _, err := e.p.useLink(ctx, purposeVerify, tok); err != errBadLink {
		t.Errorf("second use: %v", err)
	}
	tok, _ = e.p.newLink(ctx, purposeVerify, "ada@example.org", time.Hour)
	e.clock.add(2 * time.Hour)
	if _, err := e.p.useLink(ctx, purposeVerify, tok); err != errBadLink {
		t.Errorf("expired: %v", err)
	}
}

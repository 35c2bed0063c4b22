package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// developer is a developer account, id = the email in lower case:
//
//	{"record": "developer", "email": "…", "name": "…", "organization": "…",
//	 "password_hash": "$argon2id$…", "verified": true, "verified_at": "…", "created": "…"}
type developer struct {
	Record       string    `json:"record"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Organization string    `json:"organization"`
	PasswordHash string    `json:"password_hash"`
	Verified     bool      `json:"verified"`
	VerifiedAt   time.Time `json:"verified_at,omitzero"`
	Created      time.Time `json:"created"`
}

const tooMany = "Too many attempts. Wait a minute and try again."

// formPage serves the GET of a page that is a form and nothing else
// (signup, reset, staff login): v, with the session's CSRF token.
func (p *Portal) formPage(kind, tmpl string, v view) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := p.ensure(r.Context(), w, r, kind)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		page := v
		page.CSRF = s.CSRF
		p.render(w, r, http.StatusOK, tmpl, &page)
	}
}

// signup serves POST /portal/signup. Whether or not the address has an
// account, the answer is the same page; the mail differs (a verification
// link, or a note that the address already has an account).
func (p *Portal) signup(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	ctx := r.Context()
	email := normalizeEmail(form.Get("email"))
	v := &view{Title: "Create a developer account", Nav: "signup", CSRF: s.CSRF, Form: form, Errors: map[string]string{}}
	if !p.limiter.allow(p.cfg.Now(), "signup ip "+clientIP(r), "signup email "+email) {
		v.Error = tooMany
		p.render(w, r, http.StatusTooManyRequests, "signup", v)
		return
	}
	name, org, pw := strings.TrimSpace(form.Get("name")), strings.TrimSpace(form.Get("organization")), form.Get("password")
	if m := textProblem(name, "your name"); m != "" {
		v.Errors["name"] = m
	}
	if m := textProblem(org, "your organization"); m != "" {
		v.Errors["organization"] = m
	}
	if m := emailProblem(strings.TrimSpace(form.Get("email"))); m != "" {
		v.Errors["email"] = m
	}
	if m := passwordProblem(pw, email); m != "" {
		v.Errors["password"] = m
	} else if form.Get("password_confirm") != pw {
		v.Errors["password_confirm"] = "The two passwords are not the same."
	}
	if len(v.Errors) > 0 {
		v.Error = "Correct the fields marked below."
		p.render(w, r, http.StatusBadRequest, "signup", v)
		return
	}
	hash, err := p.cfg.Registry.HashSecret(ctx, pw)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := developer{Record: "developer", Email: email, Name: name, Organization: org, PasswordHash: hash, Created: p.cfg.Now()}
	switch err := p.developers.Create(ctx, email, d, time.Time{}); {
	case errors.Is(err, store.ErrExists):
		p.send(ctx, Message{To: email, Subject: "Your developer account",
			Body: "Someone tried to create a developer account with this address, which already has one.\n\n" +
				"If it was you, log in at " + p.root(r) + "/portal/login or reset your password at " + p.root(r) + "/portal/reset.\n" +
				"If it was not, you need not do anything."})
	case err != nil:
		p.fail(w, r, err)
		return
	default:
		if err := p.sendVerification(ctx, r, d); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Check your email", Nav: "signup",
		Message: "We sent a message to " + email + ". Follow the link in it within 24 hours to verify your address, then log in."})
}

// greeting opens a mail to a developer: by name once the address is
// verified. Before that, the name is whatever someone who typed the
// address wrote, and mail sent in the server's name must not carry it.
func greeting(d developer) string {
	if d.Verified {
		return "Hello " + d.Name + ","
	}
	return "Hello,"
}

// sendVerification mails d a verification link. It greets no one by
// name (see greeting).
func (p *Portal) sendVerification(ctx context.Context, r *http.Request, d developer) error {
	tok, err := p.newLink(ctx, purposeVerify, d.Email, verifyLifetime)
	if err != nil {
		return err
	}
	u := p.root(r) + "/portal/verify?token=" + url.QueryEscape(tok)
	p.send(ctx, Message{To: d.Email, Subject: "Verify your email address", Link: u,
		Body: "Hello,\n\nverify your email address for the developer portal by opening this link within 24 hours:\n\n" + u + "\n\nThe link works once."})
	return nil
}

// verifyPage serves GET /portal/verify?token=…: a button that verifies
// (a GET changes nothing, so mail scanners that follow links do not use
// them up).
func (p *Portal) verifyPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok := r.URL.Query().Get("token")
	s, err := p.ensure(ctx, w, r, kindDeveloper)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if _, _, _, err := p.checkLink(ctx, purposeVerify, tok); errors.Is(err, errBadLink) {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "Verify your email address", CSRF: s.CSRF,
			Error: "This link is not valid: it is wrong, expired, or already used. Log in to have a new one sent."})
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "verify", &view{Title: "Verify your email address", CSRF: s.CSRF, Token: tok})
}

// verify serves POST /portal/verify: it uses the link up and marks the
// account verified.
func (p *Portal) verify(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	ctx := r.Context()
	email, err := p.useLink(ctx, purposeVerify, form.Get("token"))
	if errors.Is(err, errBadLink) {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "Verify your email address", CSRF: s.CSRF,
			Error: "This link is not valid: it is wrong, expired, or already used. Log in to have a new one sent."})
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	if _, err := p.developers.Change(ctx, email, time.Time{}, func(d *developer) (bool, error) {
		if d.Verified {
			return false, nil
		}
		d.Verified, d.VerifiedAt = true, p.cfg.Now()
		return true, nil
	}); err != nil {
		p.fail(w, r, err)
		return
	}
	v := &view{Title: "Email address verified", Message: "Your email address is verified. You can now submit API requests."}
	if s.Subject == email {
		v.Who, v.Verified, v.CSRF = email, true, s.CSRF
	}
	p.render(w, r, http.StatusOK, "verified", v)
}

// resend serves POST /portal/verify/resend for a logged-in, unverified
// developer.
func (p *Portal) resend(w http.ResponseWriter, r *http.Request) {
	_, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	d, ok := p.developerOf(w, r, s)
	if !ok {
		return
	}
	if !p.limiter.allow(p.cfg.Now(), "signup ip "+clientIP(r), "signup email "+d.Email) {
		p.render(w, r, http.StatusTooManyRequests, "message", &view{Title: "Verify your email address", Who: d.Name, CSRF: s.CSRF, Error: tooMany})
		return
	}
	if !d.Verified {
		if err := p.sendVerification(r.Context(), r, d); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Check your email", Who: d.Name, CSRF: s.CSRF,
		Message: "We sent a new verification link to " + d.Email + "."})
}

func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	s, err := p.ensure(r.Context(), w, r, kindDeveloper)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	form := url.Values{"next": {localNext(r.URL.Query().Get("next"), "/portal/")}}
	p.render(w, r, http.StatusOK, "login", &view{Title: "Log in", Nav: "login", CSRF: s.CSRF, Form: form})
}

// login serves POST /portal/login. Unknown address and wrong password
// get the same answer, after the same work (one hash evaluation).
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	ctx := r.Context()
	email := normalizeEmail(form.Get("email"))
	v := &view{Title: "Log in", Nav: "login", CSRF: s.CSRF, Form: url.Values{"email": {form.Get("email")}, "next": {localNext(form.Get("next"), "/portal/")}}, Errors: map[string]string{}}
	if !p.limiter.allow(p.cfg.Now(), "login ip "+clientIP(r), "login email "+email) {
		v.Error = tooMany
		p.render(w, r, http.StatusTooManyRequests, "login", v)
		return
	}
	d, _, err := p.developers.Get(ctx, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.fail(w, r, err)
		return
	}
	match, err := p.cfg.Registry.VerifySecret(ctx, form.Get("password"), d.PasswordHash)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if !match || d.Email == "" {
		v.Error = "The email address or the password is not right."
		p.render(w, r, http.StatusUnauthorized, "login", v)
		return
	}
	if _, err := p.start(ctx, w, r, kindDeveloper, d.Email); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, v.Form.Get("next"), http.StatusSeeOther)
}

// localNext is next when it is a portal page, else def: a login never
// sends the browser elsewhere, nor off the portal's pages. Refused: a
// next with control characters (browsers drop tabs and newlines from a
// Location, and Go's client refuses them) or backslashes, and one with
// dot segments, encoded or not (browsers resolve "%2e%2e" as "..", which
// http.Redirect's cleaning does not see).
func localNext(next, def string) string {
	if !strings.HasPrefix(next, "/portal/") || strings.Contains(next, "\\") ||
		strings.IndexFunc(next, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		return def
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return def
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return def
		}
	}
	return next
}

// logout serves POST /portal/logout and POST /admin/logout.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	kind, to := kindDeveloper, "/portal/login"
	if strings.HasPrefix(r.URL.Path, "/admin") {
		kind, to = kindStaff, "/admin/login"
	}
	_, s, ok := p.checkForm(w, r, kind)
	if !ok {
		return
	}
	if err := p.end(r.Context(), w, r, s); err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Logged out", Message: "You are logged out.", Form: url.Values{"again": {to}}})
}

// reset serves POST /portal/reset: a reset link goes to the address if it
// has an account; the page says the same either way.
func (p *Portal) reset(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	ctx := r.Context()
	raw := strings.TrimSpace(form.Get("email"))
	email := normalizeEmail(raw)
	v := &view{Title: "Reset your password", Nav: "login", CSRF: s.CSRF, Form: url.Values{"email": {raw}}, Errors: map[string]string{}}
	if !p.limiter.allow(p.cfg.Now(), "reset ip "+clientIP(r), "reset email "+email) {
		v.Error = tooMany
		p.render(w, r, http.StatusTooManyRequests, "reset", v)
		return
	}
	if m := emailProblem(raw); m != "" {
		v.Errors["email"] = m
		v.Error = "Correct the fields marked below."
		p.render(w, r, http.StatusBadRequest, "reset", v)
		return
	}
	// Whether the address has an account is looked up after the answer:
	// the link and the mail (an SMTP conversation) of a registered
	// address would otherwise make its answer measurably slower.
	root := p.root(r)
	p.later(ctx, func(ctx context.Context) error {
		d, _, err := p.developers.Get(ctx, email)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		tok, err := p.newLink(ctx, purposeReset, email, resetLifetime)
		if err != nil {
			return err
		}
		u := root + "/portal/reset/confirm?token=" + url.QueryEscape(tok)
		p.send(ctx, Message{To: email, Subject: "Reset your password", Link: u,
			Body: greeting(d) + "\n\nto choose a new password for the developer portal, open this link within an hour:\n\n" + u + "\n\nIf you did not ask for it, you need not do anything."})
		return nil
	})
	p.render(w, r, http.StatusOK, "message", &view{Title: "Check your email",
		Message: "If an account uses " + email + ", we sent it a link to choose a new password. The link works once, within an hour."})
}

func (p *Portal) resetConfirmPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, err := p.ensure(ctx, w, r, kindDeveloper)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	tok := r.URL.Query().Get("token")
	if _, _, _, err := p.checkLink(ctx, purposeReset, tok); errors.Is(err, errBadLink) {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "Reset your password",
			Error: "This link is not valid: it is wrong, expired, or already used. Ask for a new one."})
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "reset_confirm", &view{Title: "Choose a new password", CSRF: s.CSRF, Token: tok})
}

// resetConfirm serves POST /portal/reset/confirm: a new password that
// meets the policy uses the link up, replaces the hash, verifies the
// address (the mail reached it) and ends the account's sessions.
func (p *Portal) resetConfirm(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	ctx := r.Context()
	tok, pw := form.Get("token"), form.Get("password")
	v := &view{Title: "Choose a new password", CSRF: s.CSRF, Token: tok, Errors: map[string]string{}}
	email, _, _, err := p.checkLink(ctx, purposeReset, tok)
	if errors.Is(err, errBadLink) {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "Reset your password",
			Error: "This link is not valid: it is wrong, expired, or already used. Ask for a new one."})
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	if m := passwordProblem(pw, email); m != "" {
		v.Errors["password"] = m
	} else if form.Get("password_confirm") != pw {
		v.Errors["password_confirm"] = "The two passwords are not the same."
	}
	if len(v.Errors) > 0 {
		v.Error = "Correct the fields marked below."
		p.render(w, r, http.StatusBadRequest, "reset_confirm", v)
		return
	}
	hash, err := p.cfg.Registry.HashSecret(ctx, pw)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if _, err := p.useLink(ctx, purposeReset, tok); errors.Is(err, errBadLink) {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "Reset your password", Error: "This link was used already. Ask for a new one."})
		return
	} else if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.cfg.Now()
	if _, err := p.developers.Change(ctx, email, time.Time{}, func(d *developer) (bool, error) {
		d.PasswordHash = hash
		if !d.Verified {
			d.Verified, d.VerifiedAt = true, now
		}
		return true, nil
	}); err != nil {
		p.fail(w, r, err)
		return
	}
	// Sessions opened with the old password end with it (a staff user's
	// of the same name are not the developer's).
	if ss, recs, err := p.sessions.Find(ctx, "subject", email); err == nil {
		for i, rec := range recs {
			if ss[i].Kind == kindDeveloper {
				p.sessions.Delete(ctx, rec.ID, 0)
			}
		}
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Password changed", Message: "Your password is changed. Log in with the new one."})
}

// requireDeveloper returns the logged-in developer, or sends the browser
// to the login page (ok false).
func (p *Portal) requireDeveloper(w http.ResponseWriter, r *http.Request) (session, developer, bool) {
	s, found, err := p.current(r.Context(), r, kindDeveloper)
	if err != nil {
		p.fail(w, r, err)
		return session{}, developer{}, false
	}
	if !found || s.Subject == "" {
		http.Redirect(w, r, "/portal/login?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
		return session{}, developer{}, false
	}
	d, ok := p.developerOf(w, r, s)
	return s, d, ok
}

func (p *Portal) developerOf(w http.ResponseWriter, r *http.Request, s session) (developer, bool) {
	if s.Subject == "" {
		http.Redirect(w, r, "/portal/login", http.StatusSeeOther)
		return developer{}, false
	}
	d, _, err := p.developers.Get(r.Context(), s.Subject)
	if errors.Is(err, store.ErrNotFound) {
		http.Redirect(w, r, "/portal/login", http.StatusSeeOther)
		return developer{}, false
	} else if err != nil {
		p.fail(w, r, err)
		return developer{}, false
	}
	return d, true
}

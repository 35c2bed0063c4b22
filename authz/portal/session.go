package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// session is a browser session, developer's or staff's:
//
//	{"kind": "developer", "subject": "ada@example.org", "csrf": "…", "created": "…", "exp": "…"}
//
// Only logged-in sessions are stored; the record expires with the
// session. Before login a browser's session is anonymous (Subject empty):
// its cookie alone, whose CSRF token is an HMAC of the cookie (see
// anonymous), so that a request without a cookie writes nothing. Logging
// in replaces the session by a new one (new cookie, new CSRF token), so
// an id planted before login is worth nothing after it.
type session struct {
	ID      string    `json:"-"`
	Kind    string    `json:"kind"` // "developer" or "staff"
	Subject string    `json:"subject,omitempty"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
	Exp     time.Time `json:"exp"`
}

const (
	kindDeveloper = "developer"
	kindStaff     = "staff"

	anonLifetime  = time.Hour
	loginLifetime = 8 * time.Hour
)

// cookie is the session cookie of a kind: each side of the portal has
// its own, scoped to its pages.
func cookie(kind string) (name, path string) {
	if kind == kindStaff {
		return "fhirgraph_admin", "/admin"
	}
	return "fhirgraph_portal", "/portal"
}

// current returns the browser's live logged-in session of a kind; ok is
// false when it has none.
func (p *Portal) current(ctx context.Context, r *http.Request, kind string) (session, bool, error) {
	name, _ := cookie(kind)
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return session{}, false, nil
	}
	id := hashID(c.Value)
	s, _, err := p.sessions.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return session{}, false, nil
	case err != nil:
		return session{}, false, err
	case s.Kind != kind || !p.cfg.Now().Before(s.Exp):
		return session{}, false, nil
	}
	s.ID = id
	return s, true, nil
}

// ensure returns the browser's session of a kind: its logged-in one, or
// an anonymous one (for the CSRF token of a form), whose cookie it sets
// when the browser has none. An anonymous session is not stored.
func (p *Portal) ensure(ctx context.Context, w http.ResponseWriter, r *http.Request, kind string) (session, error) {
	s, ok, err := p.current(ctx, r, kind)
	if err != nil || ok {
		return s, err
	}
	raw := cookieValue(r, kind)
	if raw == "" {
		raw = randomText(32)
		name, path := cookie(kind)
		http.SetCookie(w, &http.Cookie{Name: name, Value: raw, Path: path, Expires: p.cfg.Now().Add(anonLifetime),
			HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	}
	return p.anonymous(ctx, kind, raw)
}

// anonymous is the anonymous session of a cookie: its CSRF token is an
// HMAC of the kind and the cookie (with the links' key, in its own
// domain), which only a holder of the cookie is shown.
func (p *Portal) anonymous(ctx context.Context, kind, raw string) (session, error) {
	key, err := p.key(ctx)
	if err != nil {
		return session{}, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf\n" + kind + "\n" + raw))
	return session{Kind: kind, CSRF: base64.RawURLEncoding.EncodeToString(m.Sum(nil))}, nil
}

// cookieValue is the browser's session cookie of a kind, or "".
func cookieValue(r *http.Request, kind string) string {
	name, _ := cookie(kind)
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 128 {
		return ""
	}
	return c.Value
}

// start creates a logged-in session for subject and sets its cookie.
// Logging in calls it, and ends the session it replaces.
func (p *Portal) start(ctx context.Context, w http.ResponseWriter, r *http.Request, kind, subject string) (session, error) {
	if old, ok, err := p.current(ctx, r, kind); err == nil && ok {
		p.sessions.Delete(ctx, old.ID, 0)
	}
	now := p.cfg.Now()
	raw := randomText(32)
	s := session{ID: hashID(raw), Kind: kind, Subject: subject, CSRF: randomText(32), Created: now, Exp: now.Add(loginLifetime)}
	if err := p.sessions.Create(ctx, s.ID, s, s.Exp); err != nil {
		return session{}, err
	}
	name, path := cookie(kind)
	http.SetCookie(w, &http.Cookie{Name: name, Value: raw, Path: path, Expires: s.Exp,
		HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	return s, nil
}

// secure says whether cookies get the Secure flag: always, except in
// development mode over plain http.
func (p *Portal) secure(r *http.Request) bool { return !p.cfg.Dev || r.TLS != nil }

// end deletes the session and its cookie.
func (p *Portal) end(ctx context.Context, w http.ResponseWriter, r *http.Request, s session) error {
	if s.ID != "" {
		if err := p.sessions.Delete(ctx, s.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	name, path := cookie(s.Kind)
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// checkForm reads a POST form and the session of a kind, and checks the
// form's CSRF token. On failure it has answered (403 for a missing or
// wrong token) and ok is false.
func (p *Portal) checkForm(w http.ResponseWriter, r *http.Request, kind string) (url.Values, session, bool) {
	form, ok := p.form(w, r)
	if !ok {
		return nil, session{}, false
	}
	s, found, err := p.current(r.Context(), r, kind)
	if err == nil && !found {
		if raw := cookieValue(r, kind); raw != "" {
			s, err = p.anonymous(r.Context(), kind, raw)
			found = err == nil
		}
	}
	if err != nil {
		p.fail(w, r, err)
		return nil, session{}, false
	}
	got := form.Get("csrf")
	if !found || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
		p.render(w, r, http.StatusForbidden, "message", &view{Title: "The form has expired",
			Error: "The form expired or was not sent by this site. Reload the page and try again."})
		return nil, session{}, false
	}
	return form, s, true
}

// randomText is n random bytes, base64url.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

package smart

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/fhirgraph/fhirgraph/store"
)

// cookieName is the browser session cookie, scoped to /oauth/.
const cookieName = "fhirgraph_oauth"

// currentSession returns the browser's live session; ok is false when it
// has none (no cookie, unknown or expired).
func (s *Server) currentSession(ctx context.Context, r *http.Request) (session, bool, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return session{}, false, nil
	}
	id := hashID(c.Value)
	sess, rev, err := s.sessions.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return session{}, false, nil
	case err != nil:
		return session{}, false, err
	case !s.cfg.Now().Before(sess.Exp):
		return session{}, false, nil
	}
	sess.ID, sess.Rev = id, rev
	return sess, true, nil
}

// ensureSession returns the browser's session, starting an anonymous one
// (for the CSRF token of the login form) when it has none.
func (s *Server) ensureSession(ctx context.Context, w http.ResponseWriter, r *http.Request) (session, error) {
	sess, ok, err := s.currentSession(ctx, r)
	if err != nil || ok {
		return sess, err
	}
	return s.startSession(ctx, w, "")
}

// startSession creates a session for user (anonymous when empty) and
// sets its cookie; logging in calls it so the session id changes.
func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, user string) (session, error) {
	now := s.cfg.Now()
	raw := secret()
	sess := session{User: user, CSRF: secret(), Created: now}
	d := anonSession
	if user != "" {
		d = s.cfg.SessionLifetime
		sess.AuthTime = now
	}
	sess.Exp = now.Add(d)
	sess.ID = hashID(raw)
	if err := s.sessions.Create(ctx, sess.ID, sess, sess.Exp); err != nil {
		return session{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: raw, Path: "/oauth/", Expires: sess.Exp,
		HttpOnly: true, Secure: !s.cfg.Dev, SameSite: http.SameSiteLaxMode,
	})
	return sess, nil
}

// csrfOK reports whether a form carries the session's CSRF token.
func csrfOK(sess session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// logout ends the browser session (and with it its online_access
// refresh tokens).
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The form could not be read."})
		return
	}
	sess, ok, err := s.currentSession(r.Context(), r)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	if ok && csrfOK(sess, form.Get("csrf")) {
		if err := s.sessions.Delete(r.Context(), sess.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.serverErrorPage(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/oauth/", MaxAge: -1, HttpOnly: true, Secure: !s.cfg.Dev, SameSite: http.SameSiteLaxMode})
	s.page(w, http.StatusOK, "error", pageData{Title: "Logged out", Message: "You are logged out."})
}

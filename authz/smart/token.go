package smart

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// token serves POST /oauth/token: the client authenticates, then its
// grant type's handler answers.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	gt := form.Get("grant_type")
	var handle func(context.Context, registry.Client, url.Values) (tokenResponse, error)
	switch gt {
	case registry.GrantAuthorizationCode:
		handle = s.codeGrant
	case registry.GrantRefreshToken:
		handle = s.refreshGrant
	case registry.GrantClientCredentials:
		handle = s.clientCredentials
	case "":
		s.fail(w, r, invalidRequest("grant_type is missing"))
		return
	default:
		s.fail(w, r, errf(400, "unsupported_grant_type", "grant_type must be authorization_code, refresh_token or client_credentials"))
		return
	}
	client, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !contains(client.GrantTypes, gt) {
		s.fail(w, r, errf(400, "unauthorized_client", "this client may not use the "+gt+" grant"))
		return
	}
	resp, err := handle(r.Context(), client, form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// verifierRE is RFC 7636's code_verifier: 43 to 128 unreserved characters.
var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// codeGrant redeems an authorization code: once, within codeLifetime, by
// the client it was issued to, with the same redirect_uri and the PKCE
// verifier of its challenge. A code presented again revokes what its
// first redemption issued.
func (s *Server) codeGrant(ctx context.Context, client registry.Client, form url.Values) (tokenResponse, error) {
	code, redirect, verifier := form.Get("code"), form.Get("redirect_uri"), form.Get("code_verifier")
	switch {
	case code == "":
		return tokenResponse{}, invalidRequest("code is missing")
	case redirect == "":
		return tokenResponse{}, invalidRequest("redirect_uri is missing")
	case verifier == "":
		return tokenResponse{}, invalidRequest("code_verifier is missing (PKCE is required)")
	case !verifierRE.MatchString(verifier):
		return tokenResponse{}, invalidRequest("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")
	}
	id := hashID(code)
	rec, rev, err := s.codes.Get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, invalidGrant("the code is unknown or expired")
	case err != nil:
		return tokenResponse{}, err
	case rec.Used:
		return tokenResponse{}, s.codeReused(ctx, id, rec)
	case !s.cfg.Now().Before(rec.Exp):
		return tokenResponse{}, invalidGrant("the code has expired")
	case rec.Client != client.ID:
		return tokenResponse{}, invalidGrant("the code was issued to another client")
	case rec.RedirectURI != redirect:
		return tokenResponse{}, invalidGrant("redirect_uri differs from the authorization request's")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(rec.Challenge)) != 1 {
		return tokenResponse{}, invalidGrant("code_verifier does not match the code_challenge")
	}
	rec.Used = true
	exp := rec.Exp.Add(codeRetention)
	rev, err = s.codes.Update(ctx, id, rev, rec, exp)
	switch {
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, s.codeReused(ctx, id, rec)
	case err != nil:
		return tokenResponse{}, err
	}
	granted, err := scope.Parse(rec.Grant.Scope)
	if err != nil {
		return tokenResponse{}, err
	}
	out, err := s.issueUser(ctx, client, rec.Grant, granted, refreshPlan{family: id, session: rec.Session}, rec.Nonce)
	if err != nil {
		return tokenResponse{}, err
	}
	rec.AccessJTI, rec.AccessExp, rec.RefreshToken = out.accessJTI, out.accessExp, out.refreshID
	if _, err := s.codes.Update(ctx, id, rev, rec, exp); err != nil {
		// A second redemption raced this one and revoked nothing yet
		// issued: revoke what was just issued instead of handing it out.
		if rerr := s.revokeIssued(ctx, id, out); rerr != nil {
			return tokenResponse{}, rerr
		}
		if errors.Is(err, store.ErrConflict) {
			return tokenResponse{}, invalidGrant("the code was used twice; its tokens are revoked")
		}
		return tokenResponse{}, err
	}
	return out.resp, nil
}

// codeReused revokes what the first redemption of a code issued, and
// refuses the second.
func (s *Server) codeReused(ctx context.Context, id string, rec authCode) error {
	if err := s.revokeAccess(ctx, rec.AccessJTI, rec.AccessExp); err != nil {
		return err
	}
	if err := s.revokeFamily(ctx, id); err != nil {
		return err
	}
	s.log.Warn("smart: an authorization code was presented twice; its tokens are revoked", "client", rec.Client)
	return invalidGrant("the code was already used; the tokens issued with it are revoked")
}

func (s *Server) revokeIssued(ctx context.Context, family string, out issued) error {
	if err := s.revokeAccess(ctx, out.accessJTI, out.accessExp); err != nil {
		return err
	}
	return s.revokeFamily(ctx, family)
}

// refreshGrant exchanges a refresh token for a new access token and a new
// refresh token (rotation): the same scope as granted or a narrower one.
// A rotated token presented again revokes its whole family; an
// online_access token dies with its login session.
func (s *Server) refreshGrant(ctx context.Context, client registry.Client, form url.Values) (tokenResponse, error) {
	if !client.RefreshTokens {
		return tokenResponse{}, errf(400, "unauthorized_client", "this client may not use refresh tokens")
	}
	raw := form.Get("refresh_token")
	if raw == "" {
		return tokenResponse{}, invalidRequest("refresh_token is missing")
	}
	id := hashID(raw)
	rt, rev, err := s.refresh.Get(ctx, id)
	now := s.cfg.Now()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return tokenResponse{}, invalidGrant("the refresh token is unknown, expired or revoked")
	case err != nil:
		return tokenResponse{}, err
	case rt.Client != client.ID:
		return tokenResponse{}, invalidGrant("the refresh token was issued to another client")
	case rt.Rotated:
		if err := s.revokeFamily(ctx, rt.Family); err != nil {
			return tokenResponse{}, err
		}
		s.log.Warn("smart: a rotated refresh token was presented again; its grant is revoked", "client", rt.Client)
		return tokenResponse{}, invalidGrant("the refresh token was already used; the grant is revoked")
	case !now.Before(rt.Exp):
		return tokenResponse{}, invalidGrant("the refresh token has expired")
	}
	if rt.Online {
		sess, _, err := s.sessions.Get(ctx, rt.Session)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.User != rt.Grant.User || !now.Before(sess.Exp))) {
			return tokenResponse{}, invalidGrant("the login session this online_access token depends on has ended")
		}
		if err != nil {
			return tokenResponse{}, err
		}
	}
	granted, err := scope.Parse(rt.Grant.Scope)
	if err != nil {
		return tokenResponse{}, err
	}
	if req := form.Get("scope"); req != "" {
		asked, err := s.parseScope(req)
		if err != nil {
			return tokenResponse{}, err
		}
		if extra := granted.Uncovered(asked); len(extra) > 0 {
			return tokenResponse{}, invalidScope("the refresh may not widen the grant: " + scopesText(extra) + " was not granted")
		}
		granted = asked
	}
	rt.Rotated = true
	if _, err := s.refresh.Update(ctx, id, rev, rt, rt.Exp); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return tokenResponse{}, invalidGrant("the refresh token was used concurrently; use the newest one")
		}
		return tokenResponse{}, err
	}
	out, err := s.issueUser(ctx, client, rt.Grant, granted, refreshPlan{family: rt.Family, session: rt.Session}, "")
	if err != nil {
		return tokenResponse{}, err
	}
	return out.resp, nil
}

// clientCredentials issues a backend client's token for itself: system/
// scopes only, within its registration, no refresh token.
func (s *Server) clientCredentials(ctx context.Context, client registry.Client, form url.Values) (tokenResponse, error) {
	allowed, err := scope.Parse(client.Scope)
	if err != nil {
		return tokenResponse{}, err
	}
	var granted scope.Set
	if req := form.Get("scope"); req != "" {
		asked, err := s.parseScope(req)
		if err != nil {
			return tokenResponse{}, err
		}
		for _, sc := range asked.Scopes {
			if sc.Kind != scope.Resource || sc.Context != scope.System {
				return tokenResponse{}, invalidScope("client_credentials grants system/ scopes only, not " + sc.String())
			}
		}
		granted = within(allowed, asked)
	} else {
		granted = within(allowed, systemOnly(allowed))
	}
	if len(granted.Scopes) == 0 {
		return tokenResponse{}, invalidScope("none of the requested scopes is registered for this client (registered: " + client.Scope + ")")
	}
	raw, claims, err := s.cfg.Tokens.IssueAccess(ctx, token.AccessGrant{
		Subject: client.ID, ClientID: client.ID, Scope: granted.String(),
		Practices: client.Practices, Lifetime: s.backendLifetime(),
	})
	if err != nil {
		return tokenResponse{}, err
	}
	life := claims.ExpiresAt.Sub(claims.IssuedAt.Time)
	return tokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: int(life.Seconds()), Scope: claims.Scope}, nil
}

// backendLifetime: SMART Backend Services recommends access tokens of at
// most five minutes.
func (s *Server) backendLifetime() (d time.Duration) {
	d = 5 * time.Minute
	if s.cfg.AccessLifetime < d {
		d = s.cfg.AccessLifetime
	}
	return d
}

// parseScope parses a requested scope string; malformed or mixed-version
// requests are invalid_scope.
func (s *Server) parseScope(req string) (scope.Set, error) {
	set, err := s.scopes.Parse(req)
	if err != nil {
		var se *scope.Error
		if errors.As(err, &se) {
			return scope.Set{}, invalidScope(se.Error())
		}
		return scope.Set{}, invalidScope("the scope is malformed")
	}
	return set, nil
}

// within returns the scopes of asked that allowed covers.
func within(allowed, asked scope.Set) scope.Set {
	var kept []string
	for _, sc := range asked.Scopes {
		one := scope.Set{Scopes: []scope.Scope{sc}, Version: sc.Version}
		if allowed.Contains(one) {
			kept = append(kept, sc.String())
		}
	}
	set, _ := scope.Parse(strings.Join(kept, " "))
	return set
}

func systemOnly(set scope.Set) scope.Set {
	var kept []string
	for _, sc := range set.Scopes {
		if sc.Kind == scope.Resource && sc.Context == scope.System {
			kept = append(kept, sc.String())
		}
	}
	out, _ := scope.Parse(strings.Join(kept, " "))
	return out
}

func scopesText(scs []scope.Scope) string {
	parts := make([]string, len(scs))
	for i, sc := range scs {
		parts[i] = sc.String()
	}
	return strings.Join(parts, " ")
}

package smart

import (
	"context"
	"errors"
	"net/http"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// introspect serves POST /oauth/introspect (RFC 7662) to authenticated
// confidential clients (resource servers, backend clients, confidential
// apps): an active access token's claims, or a refresh token's; anything
// else is {"active": false} and nothing more.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err == nil {
		var c registry.Client
		c, err = s.authenticateClient(r.Context(), r, form)
		if err == nil && c.Type == registry.TypePublic {
			err = invalidClient("introspection needs an authenticated confidential client")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	raw := form.Get("token")
	if raw == "" {
		s.fail(w, r, invalidRequest("token is missing"))
		return
	}
	resp, err := s.introspectToken(r.Context(), raw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) introspectToken(ctx context.Context, raw string) (map[string]any, error) {
	inactive := map[string]any{"active": false}
	c, err := s.cfg.Tokens.VerifyAccess(ctx, raw)
	if err == nil {
		resp := map[string]any{
			"active": true, "scope": c.Scope, "client_id": c.ClientID, "sub": c.Subject,
			"exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix(), "token_type": "Bearer",
			"iss": c.Issuer, "aud": s.cfg.FHIRBase,
		}
		if c.Patient != "" {
			resp["patient"] = c.Patient
		}
		if c.Encounter != "" {
			resp["encounter"] = c.Encounter
		}
		if c.FHIRUser != "" {
			resp["fhirUser"] = s.absolute(c.FHIRUser) // as the id_token says it
		}
		return resp, nil
	}
	if token.AsError(err) == nil {
		return nil, err
	}
	rt, _, err := s.refresh.Get(ctx, hashID(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return inactive, nil
	case err != nil:
		return nil, err
	case rt.Rotated || !s.cfg.Now().Before(rt.Exp):
		return inactive, nil
	}
	resp := map[string]any{
		"active": true, "scope": rt.Grant.Scope, "client_id": rt.Client, "sub": rt.Grant.User,
		"exp": rt.Exp.Unix(), "token_type": "refresh_token",
	}
	if rt.Grant.Patient != "" {
		resp["patient"] = rt.Grant.Patient
	}
	return resp, nil
}

// revoke serves POST /oauth/revoke (RFC 7009): the client's own access
// token goes on the denylist; its own refresh token is revoked with its
// whole grant (the access tokens issued with it too). Unknown tokens, and
// other clients' tokens, are answered 200 as well, and left alone.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.authenticateClient(r.Context(), r, form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	raw := form.Get("token")
	if raw == "" {
		s.fail(w, r, invalidRequest("token is missing"))
		return
	}
	if err := s.revokeToken(r.Context(), c, raw); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revokeToken(ctx context.Context, c registry.Client, raw string) error {
	claims, err := s.cfg.Tokens.VerifyAccess(ctx, raw)
	if err == nil {
		if claims.ClientID != c.ID {
			return nil
		}
		return s.cfg.Tokens.Revoke(ctx, claims)
	}
	if token.AsError(err) == nil {
		return err
	}
	rt, _, err := s.refresh.Get(ctx, hashID(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case rt.Client != c.ID:
		return nil
	}
	return s.revokeFamily(ctx, rt.Family)
}

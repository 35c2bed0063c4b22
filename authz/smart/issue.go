package smart

import (
	"context"
	"errors"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/golang-jwt/jwt/v5"
)

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1 with the
// SMART launch context).
type tokenResponse struct {
	AccessToken       string           `json:"access_token"`
	TokenType         string           `json:"token_type"`
	ExpiresIn         int              `json:"expires_in"`
	Scope             string           `json:"scope"`
	RefreshToken      string           `json:"refresh_token,omitempty"`
	IDToken           string           `json:"id_token,omitempty"`
	Patient           string           `json:"patient,omitempty"`
	Encounter         string           `json:"encounter,omitempty"`
	FHIRContext       []map[string]any `json:"fhirContext,omitempty"`
	NeedPatientBanner *bool            `json:"need_patient_banner,omitempty"`
	SmartStyleURL     string           `json:"smart_style_url,omitempty"`
}

// issued is what one issuance made, for the record that produced it (a
// code, a refresh token) to remember.
type issued struct {
	resp      tokenResponse
	accessJTI string
	accessExp time.Time
	refreshID string // record id of the new refresh token, if any
}

// refreshPlan says whether and how a refresh token is issued with a user
// token: family groups the refresh tokens of one grant, session is the
// login session online_access binds to.
type refreshPlan struct {
	family  string
	session string
}

// issueUser issues the tokens of a user grant to client: the access token
// (scope may be narrower than g.Scope, on refresh), an id_token for
// openid fhirUser, and a refresh token when the scopes and the client
// allow one. The user must still be active; the token's practices are
// the user's practices the client is consented to, read now.
func (s *Server) issueUser(ctx context.Context, client registry.Client, g grant, granted scope.Set, plan refreshPlan, nonce string) (issued, error) {
	u, err := s.cfg.Registry.GetUser(ctx, g.User)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return issued{}, invalidGrant("the user of this grant no longer exists")
	case err != nil:
		return issued{}, err
	case u.Status != registry.StatusActive:
		return issued{}, invalidGrant("the user of this grant is " + string(u.Status))
	}
	ag := token.AccessGrant{
		Subject: u.Username, ClientID: client.ID, Scope: granted.String(),
		Patient: g.Patient, Encounter: g.Encounter, FHIRUser: fhirUser(u), UserKind: string(u.Kind),
		Lifetime: s.cfg.AccessLifetime,
	}
	if u.Kind != registry.UserPatient {
		ag.Practices = intersect(u.Practices, client.Practices)
	}
	raw, claims, err := s.cfg.Tokens.IssueAccess(ctx, ag)
	if err != nil {
		return issued{}, err
	}
	out := issued{accessJTI: claims.ID, accessExp: claims.ExpiresAt.Time}
	out.resp = tokenResponse{
		AccessToken: raw, TokenType: "Bearer", ExpiresIn: int(s.cfg.AccessLifetime / time.Second),
		Scope: ag.Scope, Patient: g.Patient, Encounter: g.Encounter,
	}
	if g.Patient != "" {
		banner := g.Banner
		out.resp.NeedPatientBanner = &banner
		out.resp.SmartStyleURL = s.cfg.RootURL + "/oauth/smart-style.json"
	}
	if g.Encounter != "" {
		out.resp.FHIRContext = []map[string]any{{"reference": "Encounter/" + g.Encounter}}
	}
	if granted.Has(scope.OpenID) && (granted.Has(scope.FHIRUser) || granted.Has(scope.Profile)) && ag.FHIRUser != "" {
		out.resp.IDToken, err = s.cfg.Tokens.IssueID(ctx, token.IDGrant{
			Subject: u.Username, ClientID: client.ID, FHIRUser: s.absolute(ag.FHIRUser), Nonce: nonce,
		})
		if err != nil {
			return issued{}, err
		}
	}
	if err := s.issueRefresh(ctx, client, g, plan, &out); err != nil {
		return issued{}, err
	}
	return out, nil
}

// issueRefresh adds a refresh token to out when the client may have one
// and the grant's scopes ask for one (the grant's, not a refresh's
// narrower request: narrowing once does not end the grant): offline_access lives
// RefreshLifetime from now; online_access lives as long as the login
// session it was granted in (and dies with it, see refreshGrant).
func (s *Server) issueRefresh(ctx context.Context, client registry.Client, g grant, plan refreshPlan, out *issued) error {
	granted, err := scope.Parse(g.Scope)
	if err != nil {
		return err
	}
	offline, online := granted.Has(scope.OfflineAccess), granted.Has(scope.OnlineAccess)
	if !client.RefreshTokens || !contains(client.GrantTypes, registry.GrantRefreshToken) || (!offline && !online) {
		return nil
	}
	now := s.cfg.Now()
	rt := refreshToken{
		Family: plan.family, Client: client.ID, Grant: g,
		AccessJTI: out.accessJTI, AccessExp: out.accessExp,
	}
	if offline {
		rt.Exp = now.Add(s.cfg.RefreshLifetime)
	} else {
		sess, _, err := s.sessions.Get(ctx, plan.session)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (sess.User != g.User || !now.Before(sess.Exp))) {
			return nil // the login ended: no refresh token
		}
		if err != nil {
			return err
		}
		rt.Online, rt.Session, rt.Exp = true, plan.session, sess.Exp
	}
	raw := secret()
	id := hashID(raw)
	if err := s.refresh.Create(ctx, id, rt, rt.Exp); err != nil {
		return err
	}
	out.resp.RefreshToken, out.refreshID = raw, id
	return nil
}

// revokeFamily revokes every refresh token of a grant and the access
// tokens they were issued with.
func (s *Server) revokeFamily(ctx context.Context, family string) error {
	if family == "" {
		return nil
	}
	rts, recs, err := s.refresh.Find(ctx, "family", family)
	if err != nil {
		return err
	}
	for i, rt := range rts {
		if err := s.revokeAccess(ctx, rt.AccessJTI, rt.AccessExp); err != nil {
			return err
		}
		if err := s.refresh.Delete(ctx, recs[i].ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// revokeAccess denies an access token by its jti until it expires.
func (s *Server) revokeAccess(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" || !s.cfg.Now().Before(exp.Add(time.Minute)) {
		return nil
	}
	return s.cfg.Tokens.Revoke(ctx, &token.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{ID: jti, ExpiresAt: jwt.NewNumericDate(exp)}})
}

// fhirUser is the user's FHIR resource, relative ("Practitioner/123");
// staff users have none.
func fhirUser(u registry.User) string {
	switch {
	case u.Kind == registry.UserPatient && u.Patient != "":
		return "Patient/" + u.Patient
	case u.Kind == registry.UserPractitioner && u.Practitioner != "":
		return "Practitioner/" + u.Practitioner
	}
	return ""
}

// absolute makes a relative FHIR reference absolute under the FHIR base,
// as the id_token's fhirUser must be.
func (s *Server) absolute(ref string) string {
	if ref == "" {
		return ""
	}
	return s.cfg.FHIRBase + "/" + ref
}

// intersect returns the members of a that are in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if contains(b, x) && !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

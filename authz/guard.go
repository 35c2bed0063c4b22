package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/authz/token"
)

// GuardConfig holds a Guard's dependencies.
type GuardConfig struct {
	// Authority verifies access tokens (signature, issuer, audience,
	// expiry, revocation). Required.
	Authority *token.Authority
	// Policy decides interactions. Required.
	Policy *policy.Policy
	// BaseURL is the FHIR base; granular scope queries naming absolute
	// references under it are compiled as relative ones.
	BaseURL string
	// Scopes parses each token's scope string once; nil means a cache of
	// the Guard's own.
	Scopes *scope.Cache
	// Clients, when set, is the registry: a token of a registered client
	// that is no longer active is refused, and its practices narrowed to
	// those the client still has (standing.go).
	Clients Clients
}

// Guard is what the FHIR API (and later GraphQL and $export) asks, once
// per request: who is calling (Authenticate) and what they may do, with
// which filters (Decide). It is safe for concurrent use.
type Guard struct {
	auth      *token.Authority
	policy    *policy.Policy
	baseURL   string
	scopes    *scope.Cache
	queries   queryCache
	standings *standings
}

// NewGuard returns a Guard; it fails when Authority or Policy is missing.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if cfg.Authority == nil || cfg.Policy == nil {
		return nil, errors.New("authz guard: Authority and Policy are required")
	}
	g := &Guard{auth: cfg.Authority, policy: cfg.Policy, baseURL: strings.TrimSuffix(cfg.BaseURL, "/"), scopes: cfg.Scopes}
	if cfg.Clients != nil {
		g.standings = &standings{clients: cfg.Clients}
	}
	if g.scopes == nil {
		g.scopes = new(scope.Cache)
	}
	return g, nil
}

// Principal is an authenticated caller: the verified token's claims and
// its parsed scopes. Read it; do not change it.
type Principal struct {
	Claims *token.AccessClaims
	Scopes scope.Set
	// input is the policy input without interaction and type.
	input policy.Input
}

// ErrNoToken is the Authenticate error of a request without a bearer
// token: RFC 6750 section 3.1 answers it with a bare
// `WWW-Authenticate: Bearer` challenge and no error code.
var ErrNoToken = errors.New("no access token: send Authorization: Bearer <token>")

// Authenticate verifies the request's bearer token (RFC 6750 section 2.1,
// the Authorization header only: tokens in query strings leak into logs).
// It returns ErrNoToken when there is none, a *token.Error with
// CodeInvalidToken for a malformed, expired, revoked or foreign token or
// one whose scope string or claims cannot be read; any other error is an
// internal failure (the store is unreachable).
func (g *Guard) Authenticate(r *http.Request) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, ErrNoToken
	}
	scheme, raw, _ := strings.Cut(h, " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return nil, &token.Error{Code: token.CodeInvalidToken, Description: "the Authorization header is not Bearer <token>"}
	}
	return g.Verify(r.Context(), raw)
}

// Verify is Authenticate for a token already taken from its request.
func (g *Guard) Verify(ctx context.Context, raw string) (*Principal, error) {
	c, err := g.auth.VerifyAccess(ctx, raw)
	if err != nil {
		return nil, err
	}
	if c, err = g.standings.narrow(ctx, c); err != nil {
		return nil, err
	}
	return g.Principal(c)
}

// Revoked reports whether the token with claims c has been revoked since
// it was verified (for work that outlives its request).
func (g *Guard) Revoked(ctx context.Context, c *token.AccessClaims) (bool, error) {
	return g.auth.Revoked(ctx, c)
}

// Principal is the principal of claims already verified: a job that
// outlives its request (a bulk export) keeps the claims of the token that
// started it and is authorized as that token was, scopes, patient and
// practices alike. Errors are *token.Error, as from Verify.
func (g *Guard) Principal(c *token.AccessClaims) (*Principal, error) {
	set, err := g.scopes.Parse(c.Scope)
	if err != nil {
		return nil, &token.Error{Code: token.CodeInvalidToken, Description: "the access token's scope cannot be read", Err: err}
	}
	kind := policy.UserKind(c.UserKind)
	switch kind {
	case policy.NoUser, policy.PatientUser, policy.Practitioner, policy.Staff:
	default:
		return nil, &token.Error{Code: token.CodeInvalidToken, Description: "the access token names an unknown kind of user"}
	}
	in := policy.Input{Scopes: set, LaunchPatient: c.Patient, User: policy.User{Kind: kind}, ClientPractices: c.Practices}
	switch kind {
	case policy.PatientUser:
		// A patient user's own record is their fhirUser.
		if id, ok := strings.CutPrefix(c.FHIRUser, "Patient/"); ok {
			in.User.Patient = id
		}
	case policy.Practitioner, policy.Staff:
		// The token's practices are already the user's practices that
		// consented to the client.
		in.User.Practices = c.Practices
	}
	return &Principal{Claims: c, Scopes: set, input: in}, nil
}

// Access is the answer to one Decide: the policy's decision and, when
// allowed, the filter to push into every store query the interaction makes
// on the type.
type Access struct {
	Allowed bool
	// Reason says why not, fit for a 403 OperationOutcome.
	Reason string
	Filter Filter
	// Decision is the policy's own answer, with its alternative grants.
	Decision policy.Decision
}

// Decide asks the policy whether p may do interaction on typ, and
// combines the decision's grants into one Filter (see Filter for which
// combinations are served). A denial, and a combination of grants no
// single store query expresses, come back as an Access with Allowed false
// and a Reason; an error is a defect of the caller (an unknown
// interaction) or an internal failure.
func (g *Guard) Decide(p *Principal, interaction policy.Interaction, typ string) (Access, error) {
	in := p.input
	in.Interaction, in.Type = interaction, typ
	d, err := g.policy.Decide(in)
	if err != nil {
		return Access{}, err
	}
	if !d.Allowed {
		return Access{Reason: d.Reason, Decision: d}, nil
	}
	f, reason, err := g.filter(typ, d.Grants, g.readOnly(interaction))
	if err != nil {
		return Access{}, err
	}
	if reason != "" {
		return Access{Reason: fmt.Sprintf("the granted scopes reach %s in ways no single query can serve (%s); ask for fewer or wider scopes", typ, reason), Decision: d}, nil
	}
	return Access{Allowed: true, Filter: f, Decision: d}, nil
}

// readOnly reports whether an interaction only reads: the policy maps it
// to the SMART letter r or s.
func (g *Guard) readOnly(in policy.Interaction) bool {
	l, ok := g.policy.Letter(in)
	return ok && l != 0 && l&^(scope.Read|scope.Search) == 0
}

package token

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types (the JWT "typ" header): access tokens are RFC 9068 "at+jwt",
// so that no other JWT the server signs (an id_token) passes for one.
const (
	typAccess = "at+jwt"
	typID     = "JWT"
)

// maxTokenBytes bounds the tokens VerifyAccess parses.
const maxTokenBytes = 16 << 10

// AccessClaims are the claims of an access token: the registered claims
// (iss, sub, aud = the FHIR base, exp, iat, jti) and the SMART ones.
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// Launch context: the patient and encounter in context, and the
	// user's FHIR resource ("Practitioner/123").
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
	FHIRUser  string `json:"fhirUser,omitempty"`
	// Practices are the PINs of the practices whose data the token may see:
	// the user's practices that the client was consented to (a backend
	// client's: its consented practices).
	Practices []string `json:"practices,omitempty"`
	// UserKind is the kind of the user the token acts for: "patient",
	// "practitioner" or "staff"; empty for a backend client acting for
	// itself (client_credentials).
	UserKind string `json:"user_kind,omitempty"`
}

// IDClaims are the claims of an OpenID Connect id_token.
type IDClaims struct {
	jwt.RegisteredClaims
	FHIRUser string `json:"fhirUser,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
}

// AccessGrant is what an access token grants.
type AccessGrant struct {
	// Subject is the user's id; for client_credentials, the client id.
	Subject   string
	ClientID  string
	Scope     string
	Patient   string
	Encounter string
	FHIRUser  string
	Practices []string
	UserKind  string // see AccessClaims.UserKind
	// Lifetime is the token's; 0 means the Authority's AccessLifetime. It
	// may not exceed the keyring's MaxTokenLifetime.
	Lifetime time.Duration
}

// IDGrant is what an id_token says.
type IDGrant struct {
	Subject  string // the user's id
	ClientID string // the audience
	FHIRUser string
	Nonce    string // from the authorization request, if it had one
}

// AuthorityOptions configure an Authority. Issuer and Audience are
// required; zero durations mean the defaults.
type AuthorityOptions struct {
	// Issuer is the iss of every token: the authorization server's URL.
	Issuer string
	// Audience is the aud of access tokens: the FHIR base URL.
	Audience string
	// AccessLifetime is an access token's lifetime; default one hour.
	AccessLifetime time.Duration
	// IDLifetime is an id_token's lifetime; default one hour.
	IDLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 s.
	Leeway time.Duration
	// VerifiedCacheSize bounds the verified access tokens remembered, so
	// that a token presented again skips the signature check; default
	// 10 000 (about 1 KB each).
	VerifiedCacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authority issues and verifies the server's access tokens and id_tokens,
// signed with the keyring's keys. It is safe for concurrent use.
type Authority struct {
	keys    *Keyring
	revoked *Denylist
	opts    AuthorityOptions
	parser  *jwt.Parser

	mu       sync.Mutex
	verified map[string]*AccessClaims // by the exact token text
}

// NewAuthority returns an Authority signing with keys and consulting
// revoked on every verification.
func NewAuthority(keys *Keyring, revoked *Denylist, opts AuthorityOptions) (*Authority, error) {
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("token authority: issuer and audience are required")
	}
	if opts.AccessLifetime == 0 {
		opts.AccessLifetime = time.Hour
	}
	if opts.IDLifetime == 0 {
		opts.IDLifetime = time.Hour
	}
	if opts.Leeway == 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.VerifiedCacheSize <= 0 {
		opts.VerifiedCacheSize = 10_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for _, d := range []time.Duration{opts.AccessLifetime, opts.IDLifetime} {
		if d < 0 || d > keys.MaxTokenLifetime() {
			return nil, fmt.Errorf("token authority: lifetime %v exceeds the keyring's MaxTokenLifetime %v", d, keys.MaxTokenLifetime())
		}
	}
	a := &Authority{keys: keys, revoked: revoked, opts: opts, verified: map[string]*AccessClaims{}}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{signingAlg}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(opts.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
	)
	return a, nil
}

// IssueAccess signs an access token for g and returns it with its claims.
func (a *Authority) IssueAccess(ctx context.Context, g AccessGrant) (string, *AccessClaims, error) {
	if g.Subject == "" || g.ClientID == "" {
		return "", nil, errors.New("token authority: an access token needs a subject and a client")
	}
	life := g.Lifetime
	if life == 0 {
		life = a.opts.AccessLifetime
	}
	if life < 0 || life > a.keys.MaxTokenLifetime() {
		return "", nil, fmt.Errorf("token authority: lifetime %v exceeds the keyring's MaxTokenLifetime", life)
	}
	now := a.opts.Now()
	c := &AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: a.opts.Issuer, Subject: g.Subject, Audience: jwt.ClaimStrings{a.opts.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(life)),
			ID: rand.Text(),
		},
		ClientID: g.ClientID, Scope: g.Scope,
		Patient: g.Patient, Encounter: g.Encounter, FHIRUser: g.FHIRUser, Practices: g.Practices, UserKind: g.UserKind,
	}
	raw, err := a.sign(ctx, c, typAccess)
	if err != nil {
		return "", nil, err
	}
	return raw, c, nil
}

// IssueID signs an OpenID Connect id_token for g: iss, sub, aud (the
// client), exp, iat, fhirUser and nonce.
func (a *Authority) IssueID(ctx context.Context, g IDGrant) (string, error) {
	if g.Subject == "" || g.ClientID == "" {
		return "", errors.New("token authority: an id_token needs a subject and a client")
	}
	now := a.opts.Now()
	c := &IDClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: a.opts.Issuer, Subject: g.Subject, Audience: jwt.ClaimStrings{g.ClientID},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.opts.IDLifetime)),
		},
		FHIRUser: g.FHIRUser, Nonce: g.Nonce,
	}
	return a.sign(ctx, c, typID)
}

func (a *Authority) sign(ctx context.Context, c jwt.Claims, typ string) (string, error) {
	key, err := a.keys.signer(ctx)
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = key.kid
	t.Header["typ"] = typ
	raw, err := t.SignedString(key.priv)
	if err != nil {
		return "", fmt.Errorf("token authority: signing with %s: %w", key, err)
	}
	return raw, nil
}

// VerifyAccess checks an access token: its signature with the key its kid
// names (RS256 only: never none, never HMAC), that it is an access token
// of this issuer for this audience, its exp, nbf and iat, and that it was
// not revoked. A token that fails is an *Error with CodeInvalidToken;
// other errors are internal failures. The claims are shared with other
// callers presenting the same token: read them, do not change them.
//
// A token that verified before is remembered by its exact text (any other
// text is a different token), so that the signature, the costliest check,
// is made once per token and replica; expiry and revocation are checked
// on every call.
func (a *Authority) VerifyAccess(ctx context.Context, raw string) (*AccessClaims, error) {
	if len(raw) > maxTokenBytes {
		return nil, invalidToken("the access token is too long", nil)
	}
	c := a.remembered(raw)
	if c == nil {
		c = new(AccessClaims)
		if t, err := a.parser.ParseWithClaims(raw, c, a.keyfunc(ctx, typAccess)); err != nil {
			return nil, tokenError("access token", t, err)
		}
		if c.ID == "" || c.ClientID == "" {
			return nil, invalidToken("the access token lacks jti or client_id", nil)
		}
		a.remember(raw, c)
	}
	revoked, err := a.revoked.Revoked(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, invalidToken("the access token was revoked", nil)
	}
	return c, nil
}

// remembered returns the claims of a token verified before that has not
// expired since (with the same leeway as the parser's).
func (a *Authority) remembered(raw string) *AccessClaims {
	a.mu.Lock()
	c := a.verified[raw]
	a.mu.Unlock()
	if c == nil || !a.opts.Now().Before(c.ExpiresAt.Add(a.opts.Leeway)) {
		return nil
	}
	return c
}

func (a *Authority) remember(raw string, c *AccessClaims) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verified) >= a.opts.VerifiedCacheSize {
		now := a.opts.Now()
		for k, old := range a.verified {
			if !now.Before(old.ExpiresAt.Add(a.opts.Leeway)) {
				delete(a.verified, k)
			}
		}
		if len(a.verified) >= a.opts.VerifiedCacheSize {
			clear(a.verified)
		}
	}
	a.verified[raw] = c
}

// VerifyID checks an id_token the server issued to clientID.
func (a *Authority) VerifyID(ctx context.Context, raw, clientID string) (*IDClaims, error) {
	if len(raw) > maxTokenBytes {
		return nil, invalidToken("the id_token is too long", nil)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{signingAlg}), jwt.WithIssuer(a.opts.Issuer), jwt.WithAudience(clientID),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(a.opts.Leeway), jwt.WithTimeFunc(a.opts.Now),
	)
	c := new(IDClaims)
	if t, err := p.ParseWithClaims(raw, c, a.keyfunc(ctx, typID)); err != nil {
		return nil, tokenError("id_token", t, err)
	}
	return c, nil
}

// Revoke denies the access token with claims c (as VerifyAccess returned
// them) on every replica until it expires.
func (a *Authority) Revoke(ctx context.Context, c *AccessClaims) error {
	if c == nil || c.ID == "" || c.ExpiresAt == nil {
		return errors.New("token authority: revoking needs the token's jti and exp")
	}
	return a.revoked.Revoke(ctx, c.ID, c.ExpiresAt.Time)
}

// Revoked reports whether the access token with claims c has been revoked
// since it was verified: work that outlives its request (a bulk export)
// stops with its token.
func (a *Authority) Revoked(ctx context.Context, c *AccessClaims) (bool, error) {
	if c == nil || c.ID == "" {
		return false, nil
	}
	return a.revoked.Revoked(ctx, c.ID)
}

// Failures of the key lookup, told apart in tokenError.
var (
	errWrongType = errors.New("wrong token type")
	errNoKID     = errors.New("no kid")
	errAlgKey    = errors.New("alg is not the key's")
)

// internalError marks a key lookup that failed for the server's reasons.
type internalError struct{ err error }

func (e internalError) Error() string { return e.err.Error() }
func (e internalError) Unwrap() error { return e.err }

func (a *Authority) keyfunc(ctx context.Context, typ string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if got, _ := t.Header["typ"].(string); !strings.EqualFold(got, typ) {
			return nil, errWrongType
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		key, err := a.keys.verifier(ctx, kid)
		if errors.Is(err, errUnknownKey) {
			return nil, err
		}
		if err != nil {
			return nil, internalError{err}
		}
		if t.Method.Alg() != key.alg {
			return nil, errAlgKey
		}
		return key.public(), nil
	}
}

// tokenError turns a parse failure into an invalid_token *Error, or
// returns the internal failure behind it.
func tokenError(what string, t *jwt.Token, err error) error {
	var ie internalError
	if errors.As(err, &ie) {
		return ie.err
	}
	desc := "the " + what + " is invalid"
	switch {
	case t != nil && t.Method != nil && t.Method.Alg() != signingAlg:
		desc = "the " + what + "'s alg " + t.Method.Alg() + " is not accepted (" + signingAlg + " only)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		desc = "the " + what + " is malformed"
	case errors.Is(err, errWrongType):
		desc = "the token is not an " + what
	case errors.Is(err, errNoKID):
		desc = "the " + what + " has no kid"
	case errors.Is(err, errUnknownKey):
		desc = "the " + what + " is signed by an unknown key"
	case errors.Is(err, errAlgKey), errors.Is(err, jwt.ErrTokenUnverifiable):
		desc = "the " + what + "'s alg is not " + signingAlg
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		desc = "the " + what + "'s signature is invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		desc = "the " + what + " has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		desc = "the " + what + " is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		desc = "the " + what + " is not for this audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		desc = "the " + what + " was not issued by this server"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		desc = "the " + what + " lacks exp"
	}
	return invalidToken(desc, err)
}

package token

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/golang-jwt/jwt/v5"
)

// AssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLifetime: SMART Backend Services' exp "SHALL be no more than
// five minutes in the future".
const maxAssertionLifetime = 5 * time.Minute

// maxJTI bounds the jti a client may send.
const maxJTI = 256

// jtisDef is the collection of the client assertion jtis seen: one record
// per (client, jti), id the hex SHA-256 of "client\x00jti", holding
// {"client": "…", "exp": "…"}, expiring with the assertion (plus the
// leeway), after which the assertion is refused as expired anyway. Create
// fails with ErrExists for a jti seen before, on any replica.
var jtisDef = store.CollectionDef{Name: "assertion_jtis"}

// ClientKeys are a registered client's verification keys: a JWKS URL, or
// an inline JWK Set (used when JWKSURL is empty).
type ClientKeys struct {
	ClientID string
	JWKSURL  string
	JWKS     json.RawMessage
}

// AssertionClaims are the claims of a verified client assertion.
type AssertionClaims struct {
	jwt.RegisteredClaims
}

// AssertionOptions configure an AssertionVerifier. TokenURL is required;
// zero values mean the defaults.
type AssertionOptions struct {
	// TokenURL is the token endpoint's URL, the aud assertions must name.
	TokenURL string
	// Dev (development mode) allows http JWKS URLs and any address;
	// otherwise only https URLs of public addresses are fetched.
	Dev bool
	// FetchTimeout bounds a JWKS fetch, redirects and body included;
	// default 5 s.
	FetchTimeout time.Duration
	// MaxJWKSBytes bounds a fetched JWKS document; default 64 KiB.
	MaxJWKSBytes int64
	// JWKSCacheSize is how many JWKS URLs (and inline documents) have a
	// cached key set; default 256.
	JWKSCacheSize int
	// JWKSMaxAge is how long a fetched key set is used, unless the
	// response's Cache-Control says less; default 5 minutes.
	JWKSMaxAge time.Duration
	// UnknownKIDGap is the least time between two fetches of a URL caused
	// by kids not in its cached set, timed by the wall clock (the rate
	// limiter jwkset takes does not read Now); default 10 s.
	UnknownKIDGap time.Duration
	// FailureTTL is how long a failed fetch is answered from memory;
	// default 5 s.
	FailureTTL time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 s.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Tests only.
	tlsConfig   *tls.Config
	addrAllowed func(netip.AddrPort) bool
}

// AssertionVerifier verifies client assertions (private_key_jwt) as SMART
// Backend Services and client-confidential-asymmetric define them. It is
// safe for concurrent use.
type AssertionVerifier struct {
	opts   AssertionOptions
	jtis   store.Collection
	keys   *clientKeySets
	parser *jwt.Parser
}

// NewAssertionVerifier returns a verifier recording the jtis it has seen
// in s.
func NewAssertionVerifier(s store.Store, opts AssertionOptions) (*AssertionVerifier, error) {
	if opts.TokenURL == "" {
		return nil, errors.New("client assertions: the token endpoint URL is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.FetchTimeout, 5*time.Second)
	def(&opts.JWKSMaxAge, 5*time.Minute)
	def(&opts.UnknownKIDGap, 10*time.Second)
	def(&opts.FailureTTL, 5*time.Second)
	def(&opts.Leeway, 30*time.Second)
	if opts.MaxJWKSBytes <= 0 {
		opts.MaxJWKSBytes = 64 << 10
	}
	if opts.JWKSCacheSize <= 0 {
		opts.JWKSCacheSize = 256
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &AssertionVerifier{opts: opts, jtis: s.Collection(jtisDef)}
	v.keys = newClientKeySets(fetchConfig{
		dev: opts.Dev, timeout: opts.FetchTimeout, maxBytes: opts.MaxJWKSBytes,
		maxAge: opts.JWKSMaxAge, failTTL: opts.FailureTTL, kidGap: opts.UnknownKIDGap,
		maxSets: opts.JWKSCacheSize, now: opts.Now,
		tlsConfig: opts.tlsConfig, addrAllowed: opts.addrAllowed,
	})
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(assertionAlgs),
		jwt.WithAudience(opts.TokenURL),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
	)
	return v, nil
}

// Close releases the idle connections of the JWKS fetches.
func (v *AssertionVerifier) Close() { v.keys.client.CloseIdleConnections() }

// AssertionClient returns the iss of a client assertion without verifying
// it: the client id to look the client's keys up by (client_id is
// optional in a client_credentials request). Verify checks everything.
func AssertionClient(assertion string) (string, error) {
	if len(assertion) > maxTokenBytes {
		return "", invalidClient("the client assertion is too long", nil)
	}
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &c); err != nil {
		return "", invalidClient("the client assertion is not a well-formed JWT", err)
	}
	if c.Issuer == "" {
		return "", invalidClient("the client assertion has no iss", nil)
	}
	return c.Issuer, nil
}

// Verify checks a client assertion of client: header alg RS384 or ES384
// fitting the key's type, a kid naming one of the client's keys (a jku,
// if present, must be the registered JWKS URL), the signature, iss = sub
// = the client id, aud = the token endpoint, exp present, not passed and
// at most five minutes ahead, and a jti not seen before from this client
// (on any replica). Every refusal is an invalid_client *Error; other
// errors are internal failures.
func (v *AssertionVerifier) Verify(ctx context.Context, client ClientKeys, assertion string) (*AssertionClaims, error) {
	if client.ClientID == "" {
		return nil, invalidClient("unknown client", nil)
	}
	if len(assertion) > maxTokenBytes {
		return nil, invalidClient("the client assertion is too long", nil)
	}
	c := new(AssertionClaims)
	t, err := v.parser.ParseWithClaims(assertion, c, v.keyfunc(ctx, client))
	if err != nil {
		return nil, assertionError(t, err, v.opts.TokenURL)
	}
	now := v.opts.Now()
	switch {
	case c.Issuer != client.ClientID:
		return nil, invalidClient("the client assertion's iss must be the client id", nil)
	case c.Subject != client.ClientID:
		return nil, invalidClient("the client assertion's sub must be the client id", nil)
	case c.ExpiresAt.After(now.Add(maxAssertionLifetime + v.opts.Leeway)):
		return nil, invalidClient("the client assertion's exp is more than 5 minutes in the future", nil)
	case c.ID == "":
		return nil, invalidClient("the client assertion has no jti", nil)
	case len(c.ID) > maxJTI:
		return nil, invalidClient(fmt.Sprintf("the client assertion's jti is longer than %d characters", maxJTI), nil)
	}
	if err := v.useJTI(ctx, client.ClientID, c); err != nil {
		return nil, err
	}
	return c, nil
}

// useJTI records the assertion's jti; a jti recorded before is a replay.
func (v *AssertionVerifier) useJTI(ctx context.Context, clientID string, c *AssertionClaims) error {
	sum := sha256.Sum256([]byte(clientID + "\x00" + c.ID))
	data, err := json.Marshal(map[string]any{"client": clientID, "exp": c.ExpiresAt.UTC()})
	if err != nil {
		return err
	}
	_, err = v.jtis.Create(ctx, store.Record{
		ID: hex.EncodeToString(sum[:]), Data: data, ExpiresAt: c.ExpiresAt.Add(v.opts.Leeway),
	})
	switch {
	case errors.Is(err, store.ErrExists):
		return invalidClient("the client assertion's jti was already used", nil)
	case err != nil:
		return fmt.Errorf("client assertions: recording the jti: %w", err)
	}
	return nil
}

// Failures of the key lookup, told apart in assertionError.
var errJKU = errors.New("jku not registered")

func (v *AssertionVerifier) keyfunc(ctx context.Context, client ClientKeys) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		if jku, ok := t.Header["jku"]; ok {
			if s, _ := jku.(string); client.JWKSURL == "" || s != client.JWKSURL {
				return nil, errJKU
			}
		}
		alg := t.Method.Alg()
		switch {
		case client.JWKSURL != "":
			return v.keys.key(ctx, client.JWKSURL, kid, alg)
		case len(client.JWKS) > 0:
			return v.keys.inlineKey(ctx, client.JWKS, kid, alg)
		}
		return nil, invalidClient("the client has no registered keys", nil)
	}
}

// assertionError turns a parse failure into an invalid_client *Error.
func assertionError(t *jwt.Token, err error, tokenURL string) error {
	if e := AsError(err); e != nil {
		return e
	}
	desc := "the client assertion is invalid"
	switch {
	case t != nil && t.Method != nil && t.Method.Alg() != algRS384 && t.Method.Alg() != algES384:
		desc = fmt.Sprintf("the client assertion's alg %s is not accepted: use RS384 or ES384", t.Method.Alg())
	case errors.Is(err, jwt.ErrTokenMalformed):
		desc = "the client assertion is not a well-formed JWT"
	case errors.Is(err, errNoKID):
		desc = "the client assertion's header has no kid"
	case errors.Is(err, errJKU):
		desc = "the client assertion's jku is not the client's registered JWKS URL"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		desc = "the client assertion's alg is not supported: use RS384 or ES384"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		desc = "the client assertion's signature does not verify with the client's key"
	case errors.Is(err, jwt.ErrTokenExpired):
		desc = "the client assertion has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		desc = "the client assertion is not valid yet (nbf or iat in the future)"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		desc = "the client assertion's aud must be the token endpoint URL " + tokenURL
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		desc = "the client assertion lacks a required claim (exp, aud)"
	}
	return invalidClient(desc, err)
}

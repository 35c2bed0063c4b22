package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ClientKind is what a client is for, as it is registered.
type ClientKind string

const (
	// KindPublic is an app that cannot keep a secret (browser, mobile):
	// authorization code with PKCE, no client authentication.
	KindPublic ClientKind = "public"
	// KindConfidential is an app with a back end: authorization code, and
	// a client secret or a key pair to authenticate.
	KindConfidential ClientKind = "confidential"
	// KindBackend is a SMART Backend Services client: client credentials
	// with a signed JWT assertion, or with a secret (client_secret_basic)
	// for internal system integrations.
	KindBackend ClientKind = "backend"
)

// ClientType is how a client authenticates, as SMART names it.
type ClientType string

const (
	TypePublic                 ClientType = "public"                  // none
	TypeConfidentialSymmetric  ClientType = "confidential-symmetric"  // client secret
	TypeConfidentialAsymmetric ClientType = "confidential-asymmetric" // private_key_jwt
)

// Grant types a client may be allowed.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// SMART versions: a client's scopes are in one of them, never both.
const (
	SMARTv1 = "v1"
	SMARTv2 = "v2"
)

// Client is a registered OAuth client.
type Client struct {
	ID   string     `json:"client_id"` // random, URL-safe; the record id
	Name string     `json:"client_name"`
	Kind ClientKind `json:"kind"`
	Type ClientType `json:"type"`
	// JWKSURL or JWKS (a JWK Set of public keys) verify the assertions of
	// confidential-asymmetric clients.
	JWKSURL      string          `json:"jwks_uri,omitempty"`
	JWKS         json.RawMessage `json:"jwks,omitempty"`
	RedirectURIs []string        `json:"redirect_uris,omitempty"`
	LaunchURL    string          `json:"launch_url,omitempty"`
	// Scope is the space-separated scopes the client may be granted.
	Scope         string   `json:"scope"`
	SMARTVersion  string   `json:"smart_version"` // SMARTv1 or SMARTv2
	GrantTypes    []string `json:"grant_types"`
	RefreshTokens bool     `json:"refresh_tokens"`
	// Practices are the PINs of the practices that consented to the app.
	Practices []string  `json:"practices,omitempty"`
	Status    Status    `json:"status"`
	Created   time.Time `json:"created"`
}

// AuthMethods are the token endpoint authentication methods the client may
// use (RFC 7591 names).
func (c Client) AuthMethods() []string {
	switch c.Type {
	case TypeConfidentialSymmetric:
		if c.Kind == KindBackend { // internal integrations: basic only, as registered
			return []string{"client_secret_basic"}
		}
		return []string{"client_secret_basic", "client_secret_post"}
	case TypeConfidentialAsymmetric:
		return []string{"private_key_jwt"}
	}
	return []string{"none"}
}

// clientDoc is a Client as stored.
type clientDoc struct {
	Record string `json:"record"` // "client"
	Client
	SecretHash string `json:"secret_hash,omitempty"`
	// OldSecretHash is the secret a rotation replaced, valid until
	// OldSecretExp (the grace period).
	OldSecretHash string    `json:"old_secret_hash,omitempty"`
	OldSecretExp  time.Time `json:"old_secret_exp,omitzero"`
}

// ClientSpec is what CreateClient needs.
type ClientSpec struct {
	Name  string
	Kind  ClientKind
	Scope string
	// SMARTVersion may be empty when Scope's resource scopes tell it.
	SMARTVersion string
	RedirectURIs []string
	LaunchURL    string
	// JWKSURL or JWKS (not both) give an asymmetric client its keys.
	JWKSURL string
	JWKS    []byte
	// Secret asks for a generated client secret (confidential-symmetric).
	Secret bool
	// Practices are PINs of existing practices that consent to the client.
	Practices []string
	// Dev accepts http and loopback or private hosts in URLs.
	Dev bool
	// Status is active when empty.
	Status Status
}

const (
	maxScopeLen     = 4096
	maxRedirectURIs = 20
	clientIDBytes   = 16 // 22 characters
	secretBytes     = 32 // 43 characters, 256 bits
)

// CreateClient registers a client and returns it with its secret, which
// is "" unless spec.Secret: the secret is shown to the caller once and
// only its hash is kept. Bad input is a *ValidationError on the fields
// client_name, kind, scope, smart_version, redirect_uris, launch_url,
// jwks_uri, jwks, secret, practices and status; nothing is written then.
func (r *Registry) CreateClient(ctx context.Context, spec ClientSpec) (Client, string, error) {
	c, err := r.checkClient(ctx, spec)
	if err != nil {
		return Client{}, "", err
	}
	doc := clientDoc{Record: "client", Client: c}
	var secret string
	if spec.Secret {
		secret = randomToken(secretBytes)
		if doc.SecretHash, err = r.hasher.hash(ctx, secret); err != nil {
			return Client{}, "", err
		}
	}
	for range 3 { // a taken id means a broken random source; retry a little
		doc.ID = newClientID()
		if err = create(ctx, r.clients, doc.ID, doc); !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		return Client{}, "", err
	}
	return doc.Client, secret, nil
}

// checkClient validates a spec and returns the client it describes,
// without id.
func (r *Registry) checkClient(ctx context.Context, spec ClientSpec) (Client, error) {
	p := problems{ValidationError{What: "client"}}
	c := Client{Kind: spec.Kind, Status: checkStatus(&p, spec.Status), Created: r.now()}
	c.Name = checkName(&p, "client_name", spec.Name)
	c.Scope, c.SMARTVersion = r.checkScope(&p, spec.Scope, spec.SMARTVersion)

	keys := spec.JWKSURL != "" || len(spec.JWKS) > 0
	if spec.JWKSURL != "" && len(spec.JWKS) > 0 {
		p.add("jwks", "give a JWKS URL or an inline JWKS, not both")
	}
	switch spec.Kind {
	case KindPublic:
		c.Type = TypePublic
		if spec.Secret {
			p.add("secret", "public clients cannot keep a secret")
		}
		if keys {
			p.add("jwks", "public clients have no keys")
		}
	case KindConfidential:
		c.Type = TypeConfidentialAsymmetric
		if spec.Secret {
			c.Type = TypeConfidentialSymmetric
		}
		if spec.Secret == keys {
			p.add("secret", "confidential clients authenticate with a secret or with keys (a JWKS URL or inline JWKS): give exactly one")
		}
	case KindBackend:
		c.Type = TypeConfidentialAsymmetric
		if spec.Secret {
			c.Type = TypeConfidentialSymmetric
		}
		if spec.Secret == keys {
			p.add("jwks", "backend clients need keys (a JWKS URL or inline JWKS), or a secret for internal integrations: give exactly one")
		}
	default:
		p.add("kind", "must be public, confidential or backend")
	}

	if spec.Kind == KindBackend {
		c.GrantTypes = []string{GrantClientCredentials}
		if len(spec.RedirectURIs) > 0 {
			p.add("redirect_uris", "backend clients use no redirect URI")
		}
		if spec.LaunchURL != "" {
			p.add("launch_url", "backend clients are not launched")
		}
	} else {
		c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		c.RefreshTokens = true
		switch n := len(spec.RedirectURIs); {
		case n == 0 && spec.Kind != "":
			p.add("redirect_uris", "at least one redirect URI is required")
		case n > maxRedirectURIs:
			p.add("redirect_uris", "at most %d redirect URIs", maxRedirectURIs)
		}
		for _, u := range spec.RedirectURIs {
			checkURL(&p, "redirect_uris", u, spec.Dev)
			if !slices.Contains(c.RedirectURIs, u) {
				c.RedirectURIs = append(c.RedirectURIs, u)
			}
		}
		if c.LaunchURL = spec.LaunchURL; c.LaunchURL != "" {
			checkURL(&p, "launch_url", c.LaunchURL, spec.Dev)
		}
	}
	if c.JWKSURL = spec.JWKSURL; c.JWKSURL != "" {
		checkURL(&p, "jwks_uri", c.JWKSURL, spec.Dev)
	}
	if len(spec.JWKS) > 0 {
		c.JWKS = checkJWKS(&p, spec.JWKS)
	}
	var err error
	if c.Practices, err = r.checkPractices(ctx, &p, "practices", spec.Practices); err != nil {
		return Client{}, err
	}
	return c, p.err()
}

// checkScope checks a scope string and settles the SMART version; it
// returns the scope with its tokens separated by single spaces.
func (r *Registry) checkScope(p *problems, scope, version string) (string, string) {
	toks := strings.Fields(scope)
	scope = strings.Join(toks, " ")
	switch {
	case len(toks) == 0:
		p.add("scope", "is required")
	case len(scope) > maxScopeLen:
		p.add("scope", "must be at most %d characters", maxScopeLen)
	case slices.ContainsFunc(toks, func(t string) bool { return !scopeTokenOK(t) }):
		p.add("scope", "scopes are printable ASCII without quotes or backslashes, separated by spaces")
	}
	if version != "" && version != SMARTv1 && version != SMARTv2 {
		p.add("smart_version", "must be v1 or v2")
		return scope, version
	}
	v1, v2 := smartVersions(scope)
	switch {
	case v1 && v2:
		p.add("scope", "mixes SMART v1 scopes (.read, .write, .*) and v2 scopes (.cruds): a client uses one version")
	case v1 && version == SMARTv2, v2 && version == SMARTv1:
		p.add("smart_version", "is %s but the scopes are not", version)
	case v1:
		version = SMARTv1
	case v2:
		version = SMARTv2
	case version == "" && len(toks) > 0:
		p.add("smart_version", "is required: no resource scope tells v1 from v2")
	}
	if r.validateScope != nil && !p.has("scope") && !p.has("smart_version") {
		if err := r.validateScope(scope, version); err != nil {
			p.add("scope", "%s", err.Error())
		}
	}
	return scope, version
}

const maxClientIDLen = 256

// Authenticate checks a client's id and secret and returns the client.
// Every refusal — unknown client, a client without a secret, the wrong
// secret — is ErrBadCredentials after one full hash evaluation, so neither
// the answer nor its timing tells whether the client exists. ErrNotActive
// (with the client) is returned only to a caller who gave the right
// secret.
func (r *Registry) Authenticate(ctx context.Context, clientID, secret string) (Client, error) {
	var d clientDoc
	var err error
	if len(clientID) <= maxClientIDLen {
		d, _, err = get[clientDoc](ctx, r.clients, clientID)
	} else {
		err = ErrNotFound
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Client{}, err
	}
	ok, verr := r.hasher.verify(ctx, secret, d.SecretHash) // "" when unknown or secretless: the dummy hash
	if verr == nil && err == nil && !ok && d.OldSecretHash != "" && r.now().Before(d.OldSecretExp) {
		ok, verr = r.hasher.verify(ctx, secret, d.OldSecretHash) // a rotated secret in its grace period
	}
	if verr != nil {
		return Client{}, verr
	}
	if err != nil || !ok {
		return Client{}, ErrBadCredentials
	}
	if d.Status != StatusActive {
		return d.Client, fmt.Errorf("client %s is %s: %w", d.ID, d.Status, ErrNotActive)
	}
	return d.Client, nil
}

// GetClient returns a client; ErrNotFound if there is none.
func (r *Registry) GetClient(ctx context.Context, id string) (Client, error) {
	d, _, err := get[clientDoc](ctx, r.clients, id)
	return d.Client, err
}

// ListClients returns every client, by id.
func (r *Registry) ListClients(ctx context.Context) ([]Client, error) {
	return r.findClients(ctx, "record", "client")
}

// ClientsByPractice returns the clients the practice with a PIN consented
// to.
func (r *Registry) ClientsByPractice(ctx context.Context, pin string) ([]Client, error) {
	return r.findClients(ctx, "practices", NormalizePIN(pin))
}

// ClientsByStatus returns the clients with a status (the pending ones
// await review).
func (r *Registry) ClientsByStatus(ctx context.Context, s Status) ([]Client, error) {
	return r.findClients(ctx, "status", string(s))
}

func (r *Registry) findClients(ctx context.Context, key, value string) ([]Client, error) {
	docs, err := find[clientDoc](ctx, r.clients, key, value)
	out := make([]Client, len(docs))
	for i, d := range docs {
		out[i] = d.Client
	}
	return out, err
}

// SetClientStatus changes a client's status (a no-op when it already has
// it) and returns the client; suspending one stops it authenticating.
func (r *Registry) SetClientStatus(ctx context.Context, id string, s Status) (Client, error) {
	d, err := update(ctx, r.clients, id, func(d *clientDoc) (bool, error) { return setStatus("client", s, &d.Status) })
	return d.Client, err
}

// newClientID is a random client id that starts with a letter or digit:
// commands take ids as arguments, where a leading "-" would read as a flag.
func newClientID() string {
	for {
		if id := randomToken(clientIDBytes); id[0] != '-' && id[0] != '_' {
			return id
		}
	}
}

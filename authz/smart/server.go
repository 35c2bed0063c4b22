// Package smart is the SMART App Launch 2.0 authorization server (and
// SMART 1.0 compatible): discovery, /oauth/authorize with its login,
// patient picker, encounter picker and approval pages, EHR launch, /oauth/token
// (authorization_code with PKCE, refresh_token with rotation,
// client_credentials for SMART Backend Services), introspection,
// revocation and the JWKS.
//
// Each grant is its own handler over shared pieces: client
// authentication (clientauth.go), the records kept in the store
// (records.go: sessions, requests, codes, refresh tokens, launch
// contexts), and the token response (issue.go). The cryptography lives in
// authz/token, clients and users in authz/registry, scope meaning in
// authz/scope.
//
// Scope policy: a request's scopes are intersected with the client's
// registered scopes. Every requested scope the registration covers
// (scope.Set.Contains: patient/Observation.rs is within
// patient/*.read) is granted as asked; the others are dropped, and the
// response's scope says what was granted (RFC 6749 §3.3). A request left
// with nothing is refused with invalid_scope; a malformed request, or one
// mixing SMART v1 and v2, is refused whole.
package smart

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// Lifetimes that are not configurable.
const (
	codeLifetime    = 60 * time.Second
	codeRetention   = 10 * time.Minute // reuse of a code is recognized this long
	requestLifetime = 30 * time.Minute
	launchLifetime  = 5 * time.Minute
	anonSession     = time.Hour
	maxFormBytes    = 64 << 10
)

// Config carries a Server's dependencies. Store, Registry, Keys, Tokens,
// Assertions, RootURL and FHIRBase are required.
type Config struct {
	Store      store.Store
	Registry   *registry.Registry
	Keys       *token.Keyring
	Tokens     *token.Authority
	Assertions *token.AssertionVerifier
	// RootURL is the server's public root ("https://ehr.example.org"):
	// the OAuth endpoints are RootURL + "/oauth/…".
	RootURL string
	// FHIRBase is the FHIR base URL: the issuer in discovery, the aud of
	// access tokens, and the value the aud parameter must have.
	FHIRBase string
	// Dev (development mode) drops the Secure flag of the session cookie.
	Dev bool
	// RefreshLifetime is the lifetime of offline_access refresh tokens;
	// default 90 days.
	RefreshLifetime time.Duration
	// SessionLifetime is how long a login lasts, and with it online_access
	// refresh tokens; default 8 hours.
	SessionLifetime time.Duration
	// AccessLifetime is the expires_in of access tokens; default one hour.
	// It must not exceed what the Authority allows.
	AccessLifetime time.Duration
	Logger         *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the authorization server. It keeps no state of its own
// beyond caches: every replica serving the same store answers alike.
type Server struct {
	cfg      Config
	sessions store.Records[session]
	requests store.Records[authRequest]
	codes    store.Records[authCode]
	refresh  store.Records[refreshToken]
	launches store.Records[launchContext]
	scopes   scope.Cache
	log      *slog.Logger
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Keys == nil || cfg.Tokens == nil || cfg.Assertions == nil {
		return nil, errors.New("smart: store, registry, keyring, authority and assertion verifier are required")
	}
	for _, u := range []string{cfg.RootURL, cfg.FHIRBase} {
		p, err := url.Parse(u)
		if err != nil || p.Scheme == "" || p.Host == "" {
			return nil, errors.New("smart: RootURL and FHIRBase must be absolute URLs")
		}
	}
	cfg.RootURL = strings.TrimRight(cfg.RootURL, "/")
	cfg.FHIRBase = strings.TrimRight(cfg.FHIRBase, "/")
	if cfg.RefreshLifetime <= 0 {
		cfg.RefreshLifetime = 90 * 24 * time.Hour
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.AccessLifetime <= 0 {
		cfg.AccessLifetime = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := cfg.Store
	return &Server{
		cfg:      cfg,
		sessions: store.Records[session]{C: s.Collection(sessionsDef)},
		requests: store.Records[authRequest]{C: s.Collection(requestsDef)},
		codes:    store.Records[authCode]{C: s.Collection(codesDef)},
		refresh:  store.Records[refreshToken]{C: s.Collection(refreshDef)},
		launches: store.Records[launchContext]{C: s.Collection(launchesDef)},
		log:      cfg.Logger,
	}, nil
}

// Endpoints are the server's OAuth URLs, for discovery and for the
// CapabilityStatement's oauth-uris extension.
type Endpoints struct {
	Authorize, Token, Introspect, Revoke, JWKS string
}

// Endpoints returns the absolute URLs of the OAuth endpoints.
func (s *Server) Endpoints() Endpoints {
	o := s.cfg.RootURL + "/oauth"
	return Endpoints{
		Authorize: o + "/authorize", Token: o + "/token", Introspect: o + "/introspect",
		Revoke: o + "/revoke", JWKS: o + "/jwks",
	}
}

// Handler serves everything under /oauth/: mount it at "/oauth/".
//
//	GET|POST /oauth/authorize      the authorization endpoint
//	GET      /oauth/flow           login, patient picker, encounter picker or approval, as the request needs
//	POST     /oauth/login          the login form
//	POST     /oauth/patient        the patient picker form
//	POST     /oauth/encounter      the encounter picker form
//	POST     /oauth/approve        the approval form (approve or deny)
//	POST     /oauth/logout         ends the browser session
//	GET      /oauth/ehr            the minimal EHR: patients and a launch button per app
//	POST     /oauth/launch         creates an EHR launch and redirects to the app
//	POST     /oauth/token          authorization_code, refresh_token, client_credentials
//	POST     /oauth/introspect     RFC 7662
//	POST     /oauth/revoke         RFC 7009
//	GET      /oauth/jwks           the server's public keys
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth/authorize", s.authorize)
	mux.HandleFunc("POST /oauth/authorize", s.authorize)
	mux.HandleFunc("GET /oauth/flow", s.flow)
	mux.HandleFunc("POST /oauth/login", s.login)
	mux.HandleFunc("POST /oauth/patient", s.pickPatient)
	mux.HandleFunc("POST /oauth/encounter", s.pickEncounter)
	mux.HandleFunc("POST /oauth/approve", s.approve)
	mux.HandleFunc("POST /oauth/logout", s.logout)
	mux.HandleFunc("GET /oauth/ehr", s.ehr)
	mux.HandleFunc("POST /oauth/launch", s.launch)
	mux.HandleFunc("GET /oauth/smart-style.json", s.style)
	mux.HandleFunc("POST /oauth/token", s.token)
	mux.HandleFunc("POST /oauth/introspect", s.introspect)
	mux.HandleFunc("POST /oauth/revoke", s.revoke)
	mux.Handle("GET /oauth/jwks", s.cfg.Keys.JWKSHandler())
	mux.HandleFunc("/oauth/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request", "no such OAuth endpoint or method")
	})
	return mux
}

// Discovery serves GET /fhir/.well-known/smart-configuration.
func (s *Server) Discovery() http.Handler {
	e := s.Endpoints()
	doc, _ := json.Marshal(map[string]any{
		"issuer":                                s.cfg.FHIRBase,
		"jwks_uri":                              e.JWKS,
		"authorization_endpoint":                e.Authorize,
		"token_endpoint":                        e.Token,
		"introspection_endpoint":                e.Introspect,
		"revocation_endpoint":                   e.Revoke,
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"response_types_supported":                         []string{"code"},
		"scopes_supported": []string{
			"openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
			"offline_access", "online_access",
			"patient/*.rs", "user/*.rs", "system/*.rs", "patient/*.read", "user/*.read", "system/*.read",
			"patient/*.cruds", "user/*.cruds", "system/*.cruds", "patient/*.*", "user/*.*", "system/*.*",
		},
		"capabilities": []string{
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
			"client-confidential-asymmetric", "context-ehr-patient", "context-ehr-encounter",
			"context-standalone-patient", "context-standalone-encounter", "context-passthrough-banner",
			"context-passthrough-style", "permission-offline", "permission-online", "permission-patient",
			"permission-user", "permission-v1", "permission-v2", "sso-openid-connect", "authorize-post",
		},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(doc)
	})
}

// OpenIDConfiguration serves the OpenID Connect discovery document of
// the issuer (the FHIR base): mount it at
// GET /fhir/.well-known/openid-configuration, so that clients verifying
// id_tokens (sso-openid-connect) find the keys.
func (s *Server) OpenIDConfiguration() http.Handler {
	e := s.Endpoints()
	doc, _ := json.Marshal(map[string]any{
		"issuer":                                s.cfg.FHIRBase,
		"authorization_endpoint":                e.Authorize,
		"token_endpoint":                        e.Token,
		"jwks_uri":                              e.JWKS,
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "fhirUser", "profile"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(doc)
	})
}

// oauthError is an RFC 6749 error a client caused.
type oauthError struct {
	status int
	code   string
	desc   string
	basic  bool // the client authenticated with HTTP Basic: add WWW-Authenticate
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func errf(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func invalidRequest(desc string) *oauthError { return errf(400, "invalid_request", desc) }
func invalidGrant(desc string) *oauthError   { return errf(400, "invalid_grant", desc) }
func invalidScope(desc string) *oauthError   { return errf(400, "invalid_scope", desc) }
func invalidClient(desc string) *oauthError  { return errf(401, "invalid_client", desc) }

// fail answers err: an *oauthError or a *token.Error as the client's
// mistake, anything else as a logged server_error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if errors.As(err, &oe) {
		if oe.basic && oe.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="fhirgraph", charset="UTF-8"`)
		}
		writeError(w, oe.status, oe.code, oe.desc)
		return
	}
	if te := token.AsError(err); te != nil {
		writeError(w, te.Status(), te.Code, te.Description)
		return
	}
	s.log.Error("smart: request failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "server_error", "the authorization server failed; try again")
}

// writeError writes an RFC 6749 JSON error.
func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// parseForm reads a POST form body (and the query), bounded, and refuses
// a parameter given twice (RFC 6749 §3.1, §3.2).
func parseForm(w http.ResponseWriter, r *http.Request, repeatable ...string) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("the request body is not a valid form (application/x-www-form-urlencoded, at most 64 KiB)")
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm // codes, secrets and tokens never travel in a URL
	}
	for k, v := range form {
		if len(v) > 1 && !contains(repeatable, k) {
			return nil, invalidRequest("parameter " + k + " is given more than once")
		}
	}
	return form, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

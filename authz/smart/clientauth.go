package smart

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// authenticateClient identifies the client of a token, introspection or
// revocation request by exactly one method:
//
//   - private_key_jwt: client_assertion_type and client_assertion, checked
//     by the AssertionVerifier against the client's JWKS URL or inline JWKS;
//   - client_secret_basic: HTTP Basic with the form-encoded id and secret;
//   - client_secret_post: client_id and client_secret in the body;
//   - none: client_id alone, for public clients only.
//
// Each method is accepted only for the clients registered for it
// (registry.Client.AuthMethods), and only active clients authenticate.
// Failures are invalid_client (401; with WWW-Authenticate when Basic was
// used), or invalid_request for a request using two methods.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (registry.Client, error) {
	basicID, basicSecret, basic := r.BasicAuth()
	assertion, assertionType := form.Get("client_assertion"), form.Get("client_assertion_type")
	postSecret := form.Get("client_secret")
	methods := 0
	for _, used := range []bool{basic, assertion != "" || assertionType != "", postSecret != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return registry.Client{}, invalidRequest("use one client authentication method, not several")
	}
	switch {
	case assertion != "" || assertionType != "":
		return s.assertionClient(ctx, form, assertion, assertionType)
	case basic:
		id, err1 := url.QueryUnescape(basicID)
		sec, err2 := url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return registry.Client{}, &oauthError{status: 401, code: "invalid_client", desc: "the Basic credentials are not form-encoded", basic: true}
		}
		if cid := form.Get("client_id"); cid != "" && cid != id {
			return registry.Client{}, invalidRequest("client_id differs from the authenticated client")
		}
		c, err := s.secretClient(ctx, id, sec, "client_secret_basic")
		var oe *oauthError
		if errors.As(err, &oe) {
			oe.basic = true
		}
		return c, err
	case postSecret != "":
		return s.secretClient(ctx, form.Get("client_id"), postSecret, "client_secret_post")
	}
	id := form.Get("client_id")
	if id == "" {
		return registry.Client{}, invalidClient("client authentication is required: client_id for public clients, a secret or a client assertion otherwise")
	}
	c, err := s.activeClient(ctx, id)
	if err != nil {
		return c, err
	}
	if c.Type != registry.TypePublic {
		return registry.Client{}, invalidClient("this client is confidential and must authenticate (" + joinMethods(c) + ")")
	}
	return c, nil
}

// assertionClient authenticates a private_key_jwt client.
func (s *Server) assertionClient(ctx context.Context, form url.Values, assertion, typ string) (registry.Client, error) {
	if typ != token.AssertionType {
		return registry.Client{}, invalidClient("client_assertion_type must be " + token.AssertionType)
	}
	if assertion == "" {
		return registry.Client{}, invalidClient("client_assertion is missing")
	}
	id, err := token.AssertionClient(assertion)
	if err != nil {
		return registry.Client{}, err
	}
	if cid := form.Get("client_id"); cid != "" && cid != id {
		return registry.Client{}, invalidClient("client_id differs from the client assertion's iss")
	}
	c, err := s.activeClient(ctx, id)
	if err != nil {
		return c, err
	}
	if !contains(c.AuthMethods(), "private_key_jwt") {
		return registry.Client{}, invalidClient("this client is not registered for private_key_jwt (" + joinMethods(c) + ")")
	}
	if _, err := s.cfg.Assertions.Verify(ctx, token.ClientKeys{ClientID: c.ID, JWKSURL: c.JWKSURL, JWKS: c.JWKS}, assertion); err != nil {
		return registry.Client{}, err
	}
	return c, nil
}

// secretClient authenticates a client with its secret by method.
func (s *Server) secretClient(ctx context.Context, id, sec, method string) (registry.Client, error) {
	if id == "" {
		return registry.Client{}, invalidClient("client_id is missing")
	}
	c, err := s.cfg.Registry.Authenticate(ctx, id, sec)
	switch {
	case errors.Is(err, registry.ErrBadCredentials):
		return registry.Client{}, invalidClient("unknown client or wrong secret")
	case errors.Is(err, registry.ErrNotActive):
		return registry.Client{}, invalidClient("the client is " + string(c.Status))
	case err != nil:
		return registry.Client{}, err
	}
	if !contains(c.AuthMethods(), method) {
		return registry.Client{}, invalidClient("this client is not registered for " + method + " (" + joinMethods(c) + ")")
	}
	return c, nil
}

// activeClient returns a registered, active client.
func (s *Server) activeClient(ctx context.Context, id string) (registry.Client, error) {
	if len(id) > 256 {
		return registry.Client{}, invalidClient("unknown client")
	}
	c, err := s.cfg.Registry.GetClient(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return registry.Client{}, invalidClient("unknown client")
	case err != nil:
		return registry.Client{}, err
	case c.Status != registry.StatusActive:
		return registry.Client{}, invalidClient("the client is " + string(c.Status))
	}
	return c, nil
}

func joinMethods(c registry.Client) string {
	out := ""
	for i, m := range c.AuthMethods() {
		if i > 0 {
			out += ", "
		}
		out += m
	}
	return out
}

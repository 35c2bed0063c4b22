package smart

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/store"
)

// challengeRE is an S256 code_challenge: base64url of a SHA-256 digest.
var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authorize serves /oauth/authorize (GET, and POST for authorize-post).
// Problems with the client or the redirect URI are shown on a page (the
// redirect URI cannot be trusted); every later problem is redirected to
// the app with error and state. A valid request is stored, bound to the
// browser session, and the browser continues at /oauth/flow.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, err := parseForm(w, r)
	if err != nil {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The authorization request is malformed: " + err.(*oauthError).desc})
		return
	}
	client, err := s.activeClient(ctx, form.Get("client_id"))
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			s.page(w, http.StatusBadRequest, "error", pageData{Message: "The app cannot be authorized: " + oe.desc + "."})
			return
		}
		s.serverErrorPage(w, r, err)
		return
	}
	redirect := form.Get("redirect_uri")
	if redirect == "" || !contains(client.RedirectURIs, redirect) {
		msg := "redirect_uri is missing."
		if redirect != "" {
			msg = "redirect_uri is not one registered for " + client.Name + "."
		}
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The app's request is not valid: " + msg})
		return
	}
	state := form.Get("state")
	req, err := s.checkAuthorize(ctx, client, form)
	if err != nil {
		var oe *oauthError
		if errors.As(err, &oe) {
			redirectError(w, r, redirect, state, oe.code, oe.desc)
			return
		}
		s.serverErrorPage(w, r, err)
		return
	}
	sess, err := s.ensureSession(ctx, w, r)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	req.Session, req.RedirectURI, req.State = sess.ID, redirect, state
	req.ID = secret()
	req.Exp = s.cfg.Now().Add(requestLifetime)
	if err := s.requests.Create(ctx, req.ID, req, req.Exp); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	toFlow(w, r, req.ID)
}

// checkAuthorize checks what follows the redirect URI: response_type,
// aud, PKCE S256, the scopes (intersected with the client's), and the EHR
// launch, which it uses up.
func (s *Server) checkAuthorize(ctx context.Context, client registry.Client, form url.Values) (authRequest, error) {
	switch rt := form.Get("response_type"); {
	case rt == "":
		return authRequest{}, invalidRequest("response_type is missing")
	case rt != "code":
		return authRequest{}, errf(400, "unsupported_response_type", "response_type must be code")
	case !contains(client.GrantTypes, registry.GrantAuthorizationCode):
		return authRequest{}, errf(400, "unauthorized_client", "this client may not use the authorization code grant")
	}
	switch aud := strings.TrimRight(form.Get("aud"), "/"); {
	case aud == "":
		return authRequest{}, invalidRequest("aud is missing: it must be the FHIR base URL " + s.cfg.FHIRBase)
	case aud != s.cfg.FHIRBase:
		return authRequest{}, invalidRequest("aud must be this server's FHIR base URL " + s.cfg.FHIRBase)
	}
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" || method == "":
		return authRequest{}, invalidRequest("PKCE is required: send code_challenge and code_challenge_method=S256")
	case method != "S256":
		return authRequest{}, invalidRequest("code_challenge_method must be S256 (plain is not accepted)")
	case !challengeRE.MatchString(challenge):
		return authRequest{}, invalidRequest("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
	}
	raw := form.Get("scope")
	if strings.TrimSpace(raw) == "" {
		return authRequest{}, invalidScope("scope is missing")
	}
	asked, err := s.parseScope(raw)
	if err != nil {
		return authRequest{}, err
	}
	var user []string
	for _, sc := range asked.Scopes {
		if sc.Kind != scope.Resource || sc.Context != scope.System {
			user = append(user, sc.String())
		}
	}
	asked, _ = scope.Parse(strings.Join(user, " "))
	allowed, err := scope.Parse(client.Scope)
	if err != nil {
		return authRequest{}, err
	}
	granted := within(allowed, asked)
	if len(granted.Scopes) == 0 {
		return authRequest{}, invalidScope("none of the requested scopes is registered for this app")
	}
	req := authRequest{Client: client.ID, Scope: granted.String(), Challenge: challenge, Nonce: form.Get("nonce")}
	if id := form.Get("launch"); id != "" {
		lc, rev, err := s.launches.Get(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return authRequest{}, invalidRequest("the launch is unknown, expired or already used")
		case err != nil:
			return authRequest{}, err
		case lc.Client != client.ID:
			return authRequest{}, invalidRequest("the launch was made for another app")
		case !s.cfg.Now().Before(lc.Exp):
			return authRequest{}, invalidRequest("the launch has expired")
		}
		if err := s.cfg.Store.Collection(launchesDef).Delete(ctx, id, rev); err != nil {
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				return authRequest{}, invalidRequest("the launch was already used")
			}
			return authRequest{}, err
		}
		req.Patient, req.Encounter, req.LaunchUser, req.Launched = lc.Patient, lc.Encounter, lc.User, true
	} else if granted.Has(scope.Launch) {
		return authRequest{}, invalidRequest("scope launch needs the launch parameter of an EHR launch")
	}
	return req, nil
}

// redirectError sends the browser back to the app with an RFC 6749
// §4.1.2.1 error.
func redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code, desc string) {
	q := url.Values{"error": {code}, "error_description": {desc}}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, withQuery(redirect, q), http.StatusFound)
}

// withQuery adds q to u's query.
func withQuery(u string, q url.Values) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	old := p.Query()
	for k, v := range q {
		old[k] = v
	}
	p.RawQuery = old.Encode()
	return p.String()
}

package token

import (
	"errors"
	"net/http"
)

// OAuth error codes the package reports (RFC 6749 section 5.2, RFC 6750
// section 3.1).
const (
	// CodeInvalidClient: client authentication failed (a bad client
	// assertion, an unusable JWKS).
	CodeInvalidClient = "invalid_client"
	// CodeInvalidToken: an access token is malformed, expired, revoked or
	// not ours.
	CodeInvalidToken = "invalid_token"
)

// Error is a failure the client caused. Code is the OAuth error code and
// Description a human-readable error_description that is safe to send to
// the client: it never holds key material or secrets. Err, when set, is
// the underlying cause for the server's log.
type Error struct {
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Description + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain, or nil when err is an
// internal failure (or nil).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

func invalidClient(desc string, cause error) *Error {
	return &Error{Code: CodeInvalidClient, Description: desc, Err: cause}
}

func invalidToken(desc string, cause error) *Error {
	return &Error{Code: CodeInvalidToken, Description: desc, Err: cause}
}

// Status is the HTTP status the error is answered with: 401 for both
// codes (RFC 6749 section 5.2 lets the token endpoint answer 400 for
// invalid_client when no Authorization header was used; 401 is always
// allowed).
func (e *Error) Status() int { return http.StatusUnauthorized }

// Write renders the error as an RFC 6749 JSON error response. A bearer
// check adds its own WWW-Authenticate header first.
func (e *Error) Write(w http.ResponseWriter) {
	writeOAuthError(w, e.Status(), e.Code, e.Description)
}

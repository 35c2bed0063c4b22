package token

import (
	"encoding/json"
	"net/http"
)

// JWKSHandler serves the keyring's public keys as a JWK Set (RFC 7517),
// `application/json`, for `GET /oauth/jwks`. The next key is published a
// full rotation before it signs, so a reader may cache the document for a
// while.
func (k *Keyring) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET")
			return
		}
		doc, err := k.JWKS(r.Context())
		if err != nil {
			k.opts.Logger.Error("token keyring: serving the JWKS", "err", err)
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "the signing keys are unavailable")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(doc)
	})
}

// writeOAuthError writes an RFC 6749 error body.
func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	w.Write(body)
}

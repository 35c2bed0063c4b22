// Package token holds the cryptography of the SMART authorization server:
// the server's signing keys (kept in the store, so every replica signs and
// verifies alike), the access tokens and id_tokens signed with them, the
// denylist of revoked tokens, the JWKS document that publishes the public
// keys, and the verification of client assertions (private_key_jwt, SMART
// Backend Services) against a client's inline JWKS or JWKS URL (parsed,
// fetched and cached with github.com/MicahParks/keyfunc/v3 and jwkset,
// through an HTTP client guarded against requests into the server's own
// network).
//
// Failures a client caused are *Error values carrying the RFC 6749 /
// RFC 6750 error code and a description safe to show (Error.Write renders
// one), which the token endpoint and the FHIR bearer check map once. Any
// other error is an internal failure (the store is unreachable, …).
//
// Wiring, once per process, all on the same store.Store:
//
//	keys, _ := token.NewKeyring(st, token.KeyringOptions{})
//	deny := token.NewDenylist(st, token.DenylistOptions{})
//	tokens, _ := token.NewAuthority(keys, deny, token.AuthorityOptions{Issuer: base + "/oauth", Audience: base + "/fhir"})
//	clients, _ := token.NewAssertionVerifier(st, token.AssertionOptions{TokenURL: base + "/oauth/token", Dev: dev})
//	mux.Handle("GET /oauth/jwks", keys.JWKSHandler())
//
// The bearer check calls tokens.VerifyAccess; the token endpoint calls
// AssertionClient to find the client, clients.Verify with its keys, then
// tokens.IssueAccess (and IssueID for openid fhirUser); revocation calls
// tokens.Revoke.
package token

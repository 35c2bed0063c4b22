package token

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/golang-jwt/jwt/v5"
)

func TestAccessTokenCarriesItsGrant(t *testing.T) {
	r := newRig(t, openSQLite(t), newClock())
	ctx := context.Background()
	g := AccessGrant{
		Subject: "user-7", ClientID: "growth-chart", Scope: "launch/patient patient/Observation.rs openid fhirUser",
		Patient: "123", Encounter: "enc-9", FHIRUser: "Practitioner/77", Practices: []string{"1111", "2222"},
	}
	raw, issued, err := r.auth.IssueAccess(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.auth.VerifyAccess(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != g.Subject || c.ClientID != g.ClientID || c.Scope != g.Scope || c.Patient != g.Patient ||
		c.Encounter != g.Encounter || c.FHIRUser != g.FHIRUser || strings.Join(c.Practices, ",") != "1111,2222" {
		t.Errorf("claims %+v do not carry the grant %+v", c, g)
	}
	if c.Issuer != testIssuer || len(c.Audience) != 1 || c.Audience[0] != testAudience || c.ID == "" || c.ID != issued.ID {
		t.Errorf("registered claims %+v", c.RegisteredClaims)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != 30*time.Minute {
		t.Errorf("lifetime %v, want the authority's 30m", got)
	}
	if _, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "c", Lifetime: 2 * time.Hour}); err == nil {
		t.Error("a token outliving the keyring's MaxTokenLifetime was issued")
	}
}

// forge signs claims as the server would, with changes.
func forge(t *testing.T, method jwt.SigningMethod, header map[string]any, claims jwt.Claims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestAccessTokenDenials(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := openSQLite(t)
	r := newRig(t, s, c)
	signer, err := r.keys.signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, claims, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app", Scope: "patient/*.rs", Patient: "123"})
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]any{"kid": signer.kid, "typ": typAccess}
	with := func(f func(c *AccessClaims)) *AccessClaims {
		cp := *claims
		f(&cp)
		return &cp
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(signer.public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	parts := strings.Split(good, ".")
	// The payload with patient 123 changed to 124, under the original
	// signature.
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(payload), `"patient":"123"`) {
		t.Fatalf("payload %s: %v", payload, err)
	}
	tampered := parts[0] + "." + b64(strings.Replace(string(payload), `"patient":"123"`, `"patient":"124"`, 1)) + "." + parts[2]
	idToken, err := r.auth.IssueID(ctx, IDGrant{Subject: "u", ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, raw, want string
	}{
		{"malformed", "not.a.jwt", "malformed"},
		{"empty", "", "malformed"},
		{"tampered payload", tampered, "signature is invalid"},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(idToken, ".")[2], "signature is invalid"},
		{"wrong aud", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.Audience = jwt.ClaimStrings{"https://other.example.org/fhir"} }), signer.priv), "not for this audience"},
		{"no aud", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.Audience = nil }), signer.priv), "lacks"},
		{"wrong iss", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.Issuer = "https://evil.example.org" }), signer.priv), "not issued by this server"},
		{"expired", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), signer.priv), "has expired"},
		{"no exp", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.ExpiresAt = nil }), signer.priv), "lacks exp"},
		{"not yet valid", forge(t, jwt.SigningMethodRS256, header, with(func(c *AccessClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), signer.priv), "not valid yet"},
		{"signed by an unknown key", forge(t, jwt.SigningMethodRS256, map[string]any{"kid": thumbprint(&stranger.PublicKey), "typ": typAccess}, claims, stranger), "unknown key"},
		{"stranger's key under the server's kid", forge(t, jwt.SigningMethodRS256, header, claims, stranger), "signature is invalid"},
		{"no kid", forge(t, jwt.SigningMethodRS256, map[string]any{"typ": typAccess}, claims, signer.priv), "no kid"},
		{"alg RS384 with the RS256 key", forge(t, jwt.SigningMethodRS384, header, claims, signer.priv), "alg RS384 is not accepted"},
		{"alg none", forge(t, jwt.SigningMethodNone, header, claims, jwt.UnsafeAllowNoneSignatureType), "alg none is not accepted"},
		{"HS256 keyed with the public key", forge(t, jwt.SigningMethodHS256, header, claims, pubPEM), "alg HS256 is not accepted"},
		{"id_token as access token", idToken, "not an access token"},
		{"too long", strings.Repeat("a", maxTokenBytes+1), "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.auth.VerifyAccess(ctx, tc.raw)
			e := AsError(err)
			if e == nil || e.Code != CodeInvalidToken {
				t.Fatalf("VerifyAccess: %v, want invalid_token", err)
			}
			if !strings.Contains(e.Description, tc.want) {
				t.Errorf("description %q, want it to say %q", e.Description, tc.want)
			}
		})
	}
	if _, err := r.auth.VerifyAccess(ctx, good); err != nil {
		t.Errorf("the untouched token: %v", err)
	}
	// Remembering the good token lets no variant of it through.
	if _, err := r.auth.VerifyAccess(ctx, tampered); AsError(err) == nil {
		t.Errorf("tampered token after the good one verified: %v", err)
	}
	// Past exp + leeway the good token is refused too.
	c.Add(31 * time.Minute)
	if _, err := r.auth.VerifyAccess(ctx, good); AsError(err) == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}

func TestMalformedTokensAreErrorsNotPanics(t *testing.T) {
	r := newRig(t, openSQLite(t), newClock())
	ctx := context.Background()
	good, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{".", "..", "...", "a.b.c", "eyJ.eyJ.x", "e30.e30.", "e30.e30.e30", "bnVsbA.bnVsbA.x"}
	for i := 1; i < len(good); i += 7 {
		inputs = append(inputs, good[:i], good[i:])
	}
	for _, in := range inputs {
		if _, err := r.auth.VerifyAccess(ctx, in); AsError(err) == nil {
			t.Errorf("VerifyAccess(%q): %v, want invalid_token", in, err)
		}
	}
}

func TestRevokedTokenIsRefusedOnEveryReplica(t *testing.T) {
	eachEngine(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		c := newClock()
		a, b := newRig(t, s, c), newRig(t, s, c)
		raw, _, err := a.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
		if err != nil {
			t.Fatal(err)
		}
		// b has seen the token, and remembers it was not revoked.
		if _, err := b.auth.VerifyAccess(ctx, raw); err != nil {
			t.Fatal(err)
		}
		claims, err := a.auth.VerifyAccess(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.auth.Revoke(ctx, claims); err != nil {
			t.Fatal(err)
		}
		if err := a.auth.Revoke(ctx, claims); err != nil {
			t.Fatalf("revoking twice: %v", err)
		}
		if _, err := a.auth.VerifyAccess(ctx, raw); AsError(err) == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("the revoking replica: %v, want revoked at once", err)
		}
		// b answers from its memory for up to CacheTTL, then asks the store.
		if _, err := b.auth.VerifyAccess(ctx, raw); err != nil {
			t.Errorf("within CacheTTL the other replica still answers from memory: %v", err)
		}
		c.Add(5 * time.Second)
		if _, err := b.auth.VerifyAccess(ctx, raw); AsError(err) == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("the other replica after CacheTTL: %v, want revoked", err)
		}
		// A new replica learns it from the store.
		if _, err := newRig(t, s, c).auth.VerifyAccess(ctx, raw); AsError(err) == nil {
			t.Errorf("a new replica accepts a revoked token")
		}
	})
}

func TestIDToken(t *testing.T) {
	r := newRig(t, openSQLite(t), newClock())
	ctx := context.Background()
	raw, err := r.auth.IssueID(ctx, IDGrant{Subject: "user-7", ClientID: "growth-chart", FHIRUser: "Patient/123", Nonce: "n-0S6"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.auth.VerifyID(ctx, raw, "growth-chart")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "user-7" || c.FHIRUser != "Patient/123" || c.Nonce != "n-0S6" || c.Issuer != testIssuer ||
		len(c.Audience) != 1 || c.Audience[0] != "growth-chart" || c.IssuedAt == nil || c.ExpiresAt == nil {
		t.Errorf("id_token claims %+v", c)
	}
	if _, err := r.auth.VerifyID(ctx, raw, "another-app"); AsError(err) == nil {
		t.Error("an id_token for one client verified for another")
	}
	access, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "growth-chart"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.auth.VerifyID(ctx, access, testAudience); AsError(err) == nil {
		t.Error("an access token passed for an id_token")
	}
	// The header names RS256, the algorithm SMART requires for id_tokens.
	tok, _, _ := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if tok.Method.Alg() != "RS256" {
		t.Errorf("id_token alg %s", tok.Method.Alg())
	}
}

func TestStoreFailureIsNotAnInvalidToken(t *testing.T) {
	s := openSQLite(t)
	c := newClock()
	r := newRig(t, s, c)
	ctx := context.Background()
	raw, _, err := r.auth.IssueAccess(ctx, AccessGrant{Subject: "u", ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A replica that has not read the keys yet cannot read them now.
	_, err = newRig(t, s, c).auth.VerifyAccess(ctx, raw)
	if err == nil || AsError(err) != nil {
		t.Errorf("VerifyAccess with the store down: %v, want an internal error, not invalid_token", err)
	}
}

func TestAbsurdExpiryIsRefusedNotPanicking(t *testing.T) {
	r := newRig(t, openSQLite(t), newClock())
	signer, err := r.keys.signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, exp := range []any{1e300, -1e300, "tomorrow", []int{1}} {
		raw := forge(t, jwt.SigningMethodRS256, map[string]any{"kid": signer.kid, "typ": typAccess}, jwt.MapClaims{
			"iss": testIssuer, "aud": testAudience, "sub": "u", "client_id": "app", "jti": "j", "iat": time.Now().Unix(), "exp": exp,
		}, signer.priv)
		if _, err := r.auth.VerifyAccess(context.Background(), raw); AsError(err) == nil {
			t.Errorf("exp %v: %v, want invalid_token", exp, err)
		}
	}
}

package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/golang-jwt/jwt/v5"
)

const (
	testClient   = "bulk-client"
	testTokenURL = "https://ehr.example.org/oauth/token"
)

// clientSigner is a client's private key with its kid and algorithm.
type clientSigner struct {
	kid    string
	method jwt.SigningMethod
	key    any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

var (
	keyOnce             sync.Once
	rsaClient, ecClient clientSigner
)

// clientSigners returns an RS384 and an ES384 client key, made once per
// test binary (RSA generation is slow).
func clientSigners(t testing.TB) (clientSigner, clientSigner) {
	keyOnce.Do(func() {
		r, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		e, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			panic(err)
		}
		rsaClient = clientSigner{kid: "rsa-1", method: jwt.SigningMethodRS384, key: r}
		ecClient = clientSigner{kid: "ec-1", method: jwt.SigningMethodES384, key: e}
	})
	return rsaClient, ecClient
}

// jwksOf is the public JWK Set of keys.
func jwksOf(keys ...clientSigner) []byte {
	var out []map[string]string
	for _, k := range keys {
		enc := base64.RawURLEncoding.EncodeToString
		switch priv := k.key.(type) {
		case *rsa.PrivateKey:
			n, e := rsaParams(&priv.PublicKey)
			out = append(out, map[string]string{"kty": "RSA", "kid": k.kid, "alg": "RS384", "use": "sig", "n": n, "e": e})
		case *ecdsa.PrivateKey:
			b, _ := priv.PublicKey.Bytes()
			out = append(out, map[string]string{"kty": "EC", "kid": k.kid, "alg": "ES384", "crv": "P-384", "x": enc(b[1:49]), "y": enc(b[49:])})
		}
	}
	doc, _ := json.Marshal(map[string]any{"keys": out})
	return doc
}

// sign makes a client assertion, good unless change alters it.
func (k clientSigner) sign(t testing.TB, now time.Time, change func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{
		"iss": testClient, "sub": testClient, "aud": testTokenURL,
		"exp": now.Add(4 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	}
	h := map[string]any{"kid": k.kid, "typ": "JWT"}
	if change != nil {
		change(h, c)
	}
	tok := jwt.NewWithClaims(k.method, c)
	for name, v := range h {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	raw, err := tok.SignedString(k.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// jwksServer serves a client's JWK Set and counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	doc          []byte
	cacheControl string
	redirect     string // when set, every request is redirected there
	hits         atomic.Int64
}

func newJWKSServer(t testing.TB, tls bool, doc []byte) *jwksServer {
	j := &jwksServer{doc: doc}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.redirect != "" {
			http.Redirect(w, r, j.redirect, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if j.cacheControl != "" {
			w.Header().Set("Cache-Control", j.cacheControl)
		}
		w.Write(j.doc)
	})
	if tls {
		j.Server = httptest.NewTLSServer(h)
	} else {
		j.Server = httptest.NewServer(h)
	}
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) set(doc []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.doc = doc
}

func (j *jwksServer) setCacheControl(cc string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cacheControl = cc
}

func (j *jwksServer) redirectTo(url string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.redirect = url
}

func newVerifier(t testing.TB, s store.Store, opts AssertionOptions) *AssertionVerifier {
	t.Helper()
	opts.TokenURL = testTokenURL
	v, err := NewAssertionVerifier(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// refused asserts err is an invalid_client *Error saying want.
func refused(t *testing.T, err error, want string) {
	t.Helper()
	e := AsError(err)
	if e == nil || e.Code != CodeInvalidClient {
		t.Fatalf("got %v, want invalid_client", err)
	}
	if !strings.Contains(e.Description, want) {
		t.Errorf("error_description %q, want it to say %q", e.Description, want)
	}
}

func TestAssertionDenials(t *testing.T) {
	rs, ec := clientSigners(t)
	c := newClock()
	srv := newJWKSServer(t, false, jwksOf(rs, ec))
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now})
	client := ClientKeys{ClientID: testClient, JWKSURL: srv.URL}
	now := c.Now()
	pubDER, _ := x509.MarshalPKIXPublicKey(&rs.key.(*rsa.PrivateKey).PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": testClient, "sub": testClient, "aud": testTokenURL, "exp": now.Add(time.Minute).Unix(), "jti": rand.Text(),
		})
		tok.Header["kid"] = rs.kid
		raw, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
			"iss": testClient, "sub": testClient, "aud": testTokenURL, "exp": now.Add(time.Minute).Unix(), "jti": rand.Text(),
		})
		tok.Header["kid"] = rs.kid
		raw, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return raw
	}
	rs256 := clientSigner{kid: rs.kid, method: jwt.SigningMethodRS256, key: rs.key}
	ecJKU := clientSigner{kid: ec.kid, method: jwt.SigningMethodES384, key: ec.key}

	cases := []struct {
		name, assertion, want string
	}{
		{"expired", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), "has expired"},
		{"exp too far ahead", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { c["exp"] = now.Add(10 * time.Minute).Unix() }), "more than 5 minutes in the future"},
		{"no exp", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { delete(c, "exp") }), "lacks a required claim"},
		{"alg none", none(), "alg none is not accepted"},
		{"HS256 keyed with the public key", hs256(pubPEM), "alg HS256 is not accepted"},
		{"HS256 keyed with the public key DER", hs256(pubDER), "alg HS256 is not accepted"},
		{"RS256", rs256.sign(t, now, nil), "alg RS256 is not accepted"},
		{"wrong aud", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { c["aud"] = "https://ehr.example.org/fhir" }), "aud must be the token endpoint URL"},
		{"no aud", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { delete(c, "aud") }), "lacks a required claim"},
		{"wrong iss", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { c["iss"] = "other-client" }), "iss must be the client id"},
		{"wrong sub", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { c["sub"] = "other-client" }), "sub must be the client id"},
		{"no jti", rs.sign(t, now, func(_ map[string]any, c jwt.MapClaims) { delete(c, "jti") }), "no jti"},
		{"no kid", rs.sign(t, now, func(h map[string]any, _ jwt.MapClaims) { h["kid"] = nil }), "no kid"},
		{"ES384 under the RSA key's kid", clientSigner{kid: rs.kid, method: jwt.SigningMethodES384, key: ec.key}.sign(t, now, nil), `no ES384 key with kid "rsa-1"`},
		{"signed by another key under a known kid", clientSigner{kid: ec.kid, method: jwt.SigningMethodES384, key: mustEC(t)}.sign(t, now, nil), "signature does not verify"},
		{"jku not registered", ecJKU.sign(t, now, func(h map[string]any, _ jwt.MapClaims) { h["jku"] = "https://evil.example.org/jwks" }), "jku is not the client's registered JWKS URL"},
		{"not a JWT", "abc", "not a well-formed JWT"},
		{"garbage segments", "e30.e30.e30", "alg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), client, tc.assertion)
			refused(t, err, tc.want)
		})
	}
	for _, k := range []clientSigner{rs, ec} {
		if _, err := v.Verify(context.Background(), client, k.sign(t, now, nil)); err != nil {
			t.Errorf("a good %s assertion: %v", k.method.Alg(), err)
		}
	}
	if _, err := v.Verify(context.Background(), client, ec.sign(t, now, func(h map[string]any, _ jwt.MapClaims) { h["jku"] = srv.URL })); err != nil {
		t.Errorf("an assertion whose jku is the registered URL: %v", err)
	}
}

func mustEC(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestReplayedJTIIsRefusedAcrossReplicas(t *testing.T) {
	eachEngine(t, func(t *testing.T, s store.Store) {
		_, ec := clientSigners(t)
		c := newClock()
		client := ClientKeys{ClientID: testClient, JWKS: jwksOf(ec)}
		a := newVerifier(t, s, AssertionOptions{Now: c.Now})
		b := newVerifier(t, s, AssertionOptions{Now: c.Now})
		ctx := context.Background()
		first := ec.sign(t, c.Now(), nil)
		if _, err := a.Verify(ctx, client, first); err != nil {
			t.Fatal(err)
		}
		_, err := a.Verify(ctx, client, first)
		refused(t, err, "jti was already used")
		_, err = b.Verify(ctx, client, first)
		refused(t, err, "jti was already used")
		// Another assertion with the same jti, freshly signed, is a replay too.
		jti := ""
		again := ec.sign(t, c.Now(), func(_ map[string]any, cl jwt.MapClaims) {
			var parsed jwt.RegisteredClaims
			jwt.NewParser().ParseUnverified(first, &parsed)
			jti = parsed.ID
			cl["jti"] = jti
		})
		_, err = b.Verify(ctx, client, again)
		refused(t, err, "jti was already used")
		// The same jti from another client is that client's own.
		other := ClientKeys{ClientID: "other-client", JWKS: jwksOf(ec)}
		theirs := ec.sign(t, c.Now(), func(_ map[string]any, cl jwt.MapClaims) {
			cl["iss"], cl["sub"], cl["jti"] = "other-client", "other-client", jti
		})
		if _, err := b.Verify(ctx, other, theirs); err != nil {
			t.Errorf("another client's assertion with the same jti: %v", err)
		}
	})
}

func TestUnknownKIDRefetchesOnce(t *testing.T) {
	rs, ec := clientSigners(t)
	c := newClock()
	srv := newJWKSServer(t, false, jwksOf(rs))
	// The gap is timed by the wall clock (jwkset's rate limiter), so the
	// test waits it out rather than moving c.
	const gap = 400 * time.Millisecond
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now, UnknownKIDGap: gap})
	client := ClientKeys{ClientID: testClient, JWKSURL: srv.URL}
	ctx := context.Background()
	if _, err := v.Verify(ctx, client, rs.sign(t, c.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for the first assertion, want 1", n)
	}
	if _, err := v.Verify(ctx, client, rs.sign(t, c.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches after a second assertion, want 1 (cached)", n)
	}
	// Within the gap after the first fetch an unknown kid is refused
	// without fetching.
	_, err := v.Verify(ctx, client, ec.sign(t, c.Now(), nil))
	refused(t, err, `no ES384 key with kid "ec-1"`)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches after an unknown kid right after the first fetch, want 1", n)
	}
	time.Sleep(gap + 50*time.Millisecond)
	_, err = v.Verify(ctx, client, ec.sign(t, c.Now(), nil))
	refused(t, err, `no ES384 key with kid "ec-1"`)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after an unknown kid, want 2 (one refetch)", n)
	}
	// Within the gap another unknown kid is refused at once, without
	// fetching.
	start := time.Now()
	_, err = v.Verify(ctx, client, ec.sign(t, c.Now(), nil))
	refused(t, err, `no ES384 key with kid "ec-1"`)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after a second unknown kid within the gap, want 2", n)
	}
	if d := time.Since(start); d >= gap/2 {
		t.Errorf("the refusal within the gap took %v: it waited for the rate limiter", d)
	}
	// The client publishes the key; after the gap the refetch finds it.
	srv.set(jwksOf(rs, ec))
	time.Sleep(gap + 50*time.Millisecond)
	if _, err := v.Verify(ctx, client, ec.sign(t, c.Now(), nil)); err != nil {
		t.Fatalf("a newly published key after refetch: %v", err)
	}
	if n := srv.hits.Load(); n != 3 {
		t.Errorf("%d fetches, want 3", n)
	}
	// A refetch that fails says so.
	srv.set([]byte(`{"keys":[]}`))
	time.Sleep(gap + 50*time.Millisecond)
	_, err = v.Verify(ctx, client, clientSigner{kid: "ec-2", method: jwt.SigningMethodES384, key: ec.key}.sign(t, c.Now(), nil))
	refused(t, err, "fetching it again failed: the client's JWKS is unusable")
	if _, err := v.Verify(ctx, client, ec.sign(t, c.Now(), nil)); err != nil {
		t.Errorf("a failed refetch dropped the keys fetched before: %v", err)
	}
}

func TestJWKSCacheFollowsCacheControl(t *testing.T) {
	rs, _ := clientSigners(t)
	c := newClock()
	srv := newJWKSServer(t, false, jwksOf(rs))
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now, JWKSMaxAge: time.Minute})
	client := ClientKeys{ClientID: testClient, JWKSURL: srv.URL}
	ctx := context.Background()
	verify := func() {
		t.Helper()
		if _, err := v.Verify(ctx, client, rs.sign(t, c.Now(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	verify()
	verify()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	c.Add(time.Minute)
	verify()
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after JWKSMaxAge, want 2", n)
	}
	srv.setCacheControl("no-store")
	c.Add(time.Minute)
	verify()
	verify()
	if n := srv.hits.Load(); n != 4 {
		t.Errorf("%d fetches with Cache-Control: no-store, want 4 (one per verification)", n)
	}
	srv.setCacheControl("public, max-age=10")
	verify()
	c.Add(5 * time.Second)
	verify()
	c.Add(6 * time.Second)
	verify()
	if n := srv.hits.Load(); n != 6 {
		t.Errorf("%d fetches with max-age=10, want 6", n)
	}
}

func TestInlineJWKS(t *testing.T) {
	rs, ec := clientSigners(t)
	c := newClock()
	v := newVerifier(t, openSQLite(t), AssertionOptions{Now: c.Now})
	ctx := context.Background()
	client := ClientKeys{ClientID: testClient, JWKS: jwksOf(rs)}
	if _, err := v.Verify(ctx, client, rs.sign(t, c.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, client, ec.sign(t, c.Now(), nil))
	refused(t, err, `no ES384 key with kid "ec-1" in the client's registered JWKS`)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, err = v.Verify(ctx, ClientKeys{ClientID: testClient, JWKS: jwksOf(clientSigner{kid: "weak", key: weak})},
		clientSigner{kid: "weak", method: jwt.SigningMethodRS384, key: weak}.sign(t, c.Now(), nil))
	refused(t, err, "registered JWKS is unusable")
	_, err = v.Verify(ctx, ClientKeys{ClientID: testClient, JWKS: []byte(`{"keys":`)}, rs.sign(t, c.Now(), nil))
	refused(t, err, "registered JWKS is unusable")
	_, err = v.Verify(ctx, ClientKeys{ClientID: testClient}, rs.sign(t, c.Now(), nil))
	refused(t, err, "no registered keys")
	_, err = v.Verify(ctx, client, rs.sign(t, c.Now(), func(h map[string]any, _ jwt.MapClaims) { h["jku"] = "https://a.example.org/jwks" }))
	refused(t, err, "jku")
}

func TestAssertionClient(t *testing.T) {
	rs, _ := clientSigners(t)
	id, err := AssertionClient(rs.sign(t, time.Now(), nil))
	if err != nil || id != testClient {
		t.Errorf("AssertionClient: %q, %v", id, err)
	}
	for _, bad := range []string{"", "x.y", rs.sign(t, time.Now(), func(_ map[string]any, c jwt.MapClaims) { delete(c, "iss") })} {
		if _, err := AssertionClient(bad); AsError(err) == nil {
			t.Errorf("AssertionClient(%q): %v, want invalid_client", bad, err)
		}
	}
}

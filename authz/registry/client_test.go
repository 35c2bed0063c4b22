package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return rsaKey, ecKey
}

var b64 = base64.RawURLEncoding

func rsaJWK(k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": "r1", "alg": "RS384", "use": "sig",
		"n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(t testing.TB, k *ecdsa.PublicKey) map[string]any {
	pt, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	n := (len(pt) - 1) / 2
	return map[string]any{"kty": "EC", "kid": "e1", "alg": "ES384", "crv": "P-384",
		"x": b64.EncodeToString(pt[1 : 1+n]), "y": b64.EncodeToString(pt[1+n:])}
}

func jwks(t testing.TB, keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// validJWKS is a set with one RSA and one EC public key.
func validJWKS(t testing.TB) []byte {
	r, e := testKeys(t)
	return jwks(t, rsaJWK(&r.PublicKey), ecJWK(t, &e.PublicKey))
}

func TestCreateClientOfEachKind(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		if _, err := r.CreatePractice(ctx, PracticeSpec{Name: "Oncology", PIN: "ONC01"}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name       string
			spec       ClientSpec
			typ        ClientType
			version    string
			grants     []string
			refresh    bool
			withSecret bool
			auth       string
		}{
			{"public", ClientSpec{Name: "Patient app", Kind: KindPublic, Scope: "launch/patient openid fhirUser patient/*.read",
				RedirectURIs: []string{"https://app.example.com/cb"}, LaunchURL: "https://app.example.com/launch", Practices: []string{"onc01"}},
				TypePublic, SMARTv1, []string{GrantAuthorizationCode, GrantRefreshToken}, true, false, "none"},
			{"confidential with a secret", ClientSpec{Name: "Clinic app", Kind: KindConfidential, Scope: "user/Observation.rs user/Patient.r offline_access",
				RedirectURIs: []string{"https://clinic.example.com/cb"}, Secret: true},
				TypeConfidentialSymmetric, SMARTv2, []string{GrantAuthorizationCode, GrantRefreshToken}, true, true, "client_secret_basic client_secret_post"},
			{"confidential with inline keys", ClientSpec{Name: "Keyed app", Kind: KindConfidential, Scope: "patient/Condition.rs?category=problem-list-item",
				RedirectURIs: []string{"https://keyed.example.com/cb"}, JWKS: validJWKS(t)},
				TypeConfidentialAsymmetric, SMARTv2, []string{GrantAuthorizationCode, GrantRefreshToken}, true, false, "private_key_jwt"},
			{"backend with a JWKS URL", ClientSpec{Name: "Registry", Kind: KindBackend, Scope: "system/*.read", JWKSURL: "https://registry.example.org/jwks.json"},
				TypeConfidentialAsymmetric, SMARTv1, []string{GrantClientCredentials}, false, false, "private_key_jwt"},
			{"backend with a secret", ClientSpec{Name: "Lab feed", Kind: KindBackend, Scope: "system/Observation.cud", Secret: true},
				TypeConfidentialSymmetric, SMARTv2, []string{GrantClientCredentials}, false, true, "client_secret_basic"},
			{"explicit version for scopes that do not tell", ClientSpec{Name: "Login only", Kind: KindPublic, Scope: "openid  fhirUser", SMARTVersion: SMARTv2,
				RedirectURIs: []string{"https://login.example.com/cb"}},
				TypePublic, SMARTv2, []string{GrantAuthorizationCode, GrantRefreshToken}, true, false, "none"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, secret, err := r.CreateClient(ctx, tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				if len(c.ID) != 22 || strings.Trim(c.ID, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
					t.Errorf("client id %q is not 22 URL-safe characters", c.ID)
				}
				if c.Type != tc.typ || c.SMARTVersion != tc.version || !slices.Equal(c.GrantTypes, tc.grants) || c.RefreshTokens != tc.refresh || c.Status != StatusActive {
					t.Errorf("created %+v", c)
				}
				if got := strings.Join(c.AuthMethods(), " "); got != tc.auth {
					t.Errorf("AuthMethods = %s, want %s", got, tc.auth)
				}
				if (secret != "") != tc.withSecret || (secret != "" && len(secret) != 43) {
					t.Errorf("secret %d characters, want a secret: %v", len(secret), tc.withSecret)
				}
				got, err := r.GetClient(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(c)
				if !bytes.Equal(gotJSON, wantJSON) {
					t.Errorf("GetClient = %s\nwant %s", gotJSON, wantJSON)
				}
				rec := rawRecord(t, st, clientsDef, c.ID)
				if secret != "" && bytes.Contains(rec.Data, []byte(secret)) {
					t.Errorf("the stored record holds the secret: %s", rec.Data)
				}
				if secret != "" && !bytes.Contains(rec.Data, []byte(`"secret_hash":"$argon2id$v=19$m=64,t=1,p=1$`)) {
					t.Errorf("the stored record has no argon2id hash: %s", rec.Data)
				}
				if bytes.Contains(gotJSON, []byte("argon2")) {
					t.Errorf("the Client API value shows the hash: %s", gotJSON)
				}
				if !tc.withSecret {
					return
				}
				if a, err := r.Authenticate(ctx, c.ID, secret); err != nil || a.ID != c.ID {
					t.Errorf("Authenticate with the secret = %v, %v", a.ID, err)
				}
				wrong := secret[:42] + string("AB"[(strings.IndexByte("AB", secret[42])+1)%2])
				if _, err := r.Authenticate(ctx, c.ID, wrong); !errors.Is(err, ErrBadCredentials) {
					t.Errorf("Authenticate with a wrong secret: %v", err)
				}
			})
		}
		all, err := r.ListClients(ctx)
		if err != nil || len(all) != 6 {
			t.Errorf("ListClients gave %d clients, %v", len(all), err)
		}
		consented, err := r.ClientsByPractice(ctx, "onc01")
		if err != nil || len(consented) != 1 || consented[0].Name != "Patient app" {
			t.Errorf("ClientsByPractice = %+v, %v", consented, err)
		}
	})
}

func TestAuthenticateRefusals(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		sym, secret, err := r.CreateClient(ctx, ClientSpec{Name: "S", Kind: KindBackend, Scope: "system/*.read", Secret: true})
		if err != nil {
			t.Fatal(err)
		}
		pub, _, err := r.CreateClient(ctx, ClientSpec{Name: "P", Kind: KindPublic, Scope: "patient/*.read", RedirectURIs: []string{"https://p.example.com/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		// Each refusal costs exactly one hash evaluation, like a success.
		for _, tc := range []struct{ name, id, secret string }{
			{"wrong secret", sym.ID, "not-the-secret"},
			{"empty secret", sym.ID, ""},
			{"unknown client", "no-such-client", secret},
			{"client without a secret", pub.ID, ""},
			{"client without a secret, given one", pub.ID, secret},
			{"overlong id", strings.Repeat("x", 1000), secret},
			{"overlong secret", sym.ID, strings.Repeat("x", 10000)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := r.hasher.calls.Load()
				_, err := r.Authenticate(ctx, tc.id, tc.secret)
				if !errors.Is(err, ErrBadCredentials) || err.Error() != ErrBadCredentials.Error() {
					t.Errorf("Authenticate: %v, want exactly ErrBadCredentials", err)
				}
				if n := r.hasher.calls.Load() - before; n != 1 {
					t.Errorf("%d hash evaluations, want 1", n)
				}
			})
		}
		if _, err := r.SetClientStatus(ctx, sym.ID, StatusSuspended); err != nil {
			t.Fatal(err)
		}
		if c, err := r.Authenticate(ctx, sym.ID, secret); !errors.Is(err, ErrNotActive) || c.ID != sym.ID {
			t.Errorf("Authenticate of a suspended client: %v", err)
		}
		if _, err := r.Authenticate(ctx, sym.ID, "wrong"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("a wrong secret of a suspended client: %v, want ErrBadCredentials", err)
		}
	})
}

func TestClientValidation(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		if _, err := r.CreatePractice(ctx, PracticeSpec{Name: "Closed", PIN: "SHUT1", Status: StatusSuspended}); err != nil {
			t.Fatal(err)
		}
		public := ClientSpec{Name: "App", Kind: KindPublic, Scope: "patient/*.read", RedirectURIs: []string{"https://app.example.com/cb"}}
		backend := ClientSpec{Name: "Svc", Kind: KindBackend, Scope: "system/*.rs", JWKSURL: "https://svc.example.com/jwks"}
		with := func(s ClientSpec, f func(*ClientSpec)) ClientSpec {
			s.RedirectURIs = slices.Clone(s.RedirectURIs)
			f(&s)
			return s
		}
		for _, tc := range []struct {
			name   string
			spec   ClientSpec
			fields []string
		}{
			{"no name", with(public, func(s *ClientSpec) { s.Name = "" }), []string{"client_name"}},
			{"unknown kind", with(public, func(s *ClientSpec) { s.Kind = "native" }), []string{"kind"}},
			{"no scope", with(public, func(s *ClientSpec) { s.Scope = " " }), []string{"scope"}},
			{"unprintable scope", with(public, func(s *ClientSpec) { s.Scope = "patient/*.read \"x\"" }), []string{"scope"}},
			{"non-ASCII scope", with(public, func(s *ClientSpec) { s.Scope = "patient/Obsérvation.read" }), []string{"scope"}},
			{"scope too long", with(public, func(s *ClientSpec) { s.Scope = strings.Repeat("patient/*.read ", 300) }), []string{"scope"}},
			{"v1 and v2 mixed", with(public, func(s *ClientSpec) { s.Scope = "patient/Observation.read patient/Patient.rs" }), []string{"scope"}},
			{"version the scopes contradict", with(public, func(s *ClientSpec) { s.SMARTVersion = SMARTv2 }), []string{"smart_version"}},
			{"unknown version", with(public, func(s *ClientSpec) { s.SMARTVersion = "v3" }), []string{"smart_version"}},
			{"version untold", with(public, func(s *ClientSpec) { s.Scope = "openid fhirUser launch" }), []string{"smart_version"}},
			{"public without redirect URI", with(public, func(s *ClientSpec) { s.RedirectURIs = nil }), []string{"redirect_uris"}},
			{"public with a secret", with(public, func(s *ClientSpec) { s.Secret = true }), []string{"secret"}},
			{"public with keys", with(public, func(s *ClientSpec) { s.JWKSURL = "https://app.example.com/jwks" }), []string{"jwks"}},
			{"http redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"http://app.example.com/cb"} }), []string{"redirect_uris"}},
			{"loopback redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"https://127.0.0.1/cb"} }), []string{"redirect_uris"}},
			{"localhost redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"https://localhost:8443/cb"} }), []string{"redirect_uris"}},
			{"private address redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"https://10.1.2.3/cb"} }), []string{"redirect_uris"}},
			{"redirect with a fragment", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"https://app.example.com/cb#x"} }), []string{"redirect_uris"}},
			{"redirect with credentials", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"https://u:p@app.example.com/cb"} }), []string{"redirect_uris"}},
			{"relative redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"/cb"} }), []string{"redirect_uris"}},
			{"custom scheme redirect", with(public, func(s *ClientSpec) { s.RedirectURIs = []string{"com.example.app:/cb"} }), []string{"redirect_uris"}},
			{"dev mode fragment", with(public, func(s *ClientSpec) { s.Dev = true; s.RedirectURIs = []string{"http://localhost/cb#f"} }), []string{"redirect_uris"}},
			{"too many redirects", with(public, func(s *ClientSpec) {
				for i := range 21 {
					s.RedirectURIs = append(s.RedirectURIs, "https://app.example.com/cb"+strings.Repeat("x", i))
				}
			}), []string{"redirect_uris"}},
			{"http launch URL", with(public, func(s *ClientSpec) { s.LaunchURL = "http://app.example.com/launch" }), []string{"launch_url"}},
			{"unknown practice", with(public, func(s *ClientSpec) { s.Practices = []string{"NOPE1"} }), []string{"practices"}},
			{"malformed practice", with(public, func(s *ClientSpec) { s.Practices = []string{"x"} }), []string{"practices"}},
			{"suspended practice", with(public, func(s *ClientSpec) { s.Practices = []string{"shut1"} }), []string{"practices"}},
			{"unknown status", with(public, func(s *ClientSpec) { s.Status = "dormant" }), []string{"status"}},
			{"confidential without credentials", ClientSpec{Name: "C", Kind: KindConfidential, Scope: "user/*.read", RedirectURIs: []string{"https://c.example.com/cb"}}, []string{"secret"}},
			{"confidential with secret and keys", ClientSpec{Name: "C", Kind: KindConfidential, Scope: "user/*.read", RedirectURIs: []string{"https://c.example.com/cb"}, Secret: true, JWKSURL: "https://c.example.com/jwks"}, []string{"secret"}},
			{"confidential without redirect URI", ClientSpec{Name: "C", Kind: KindConfidential, Scope: "user/*.read", Secret: true}, []string{"redirect_uris"}},
			{"backend without keys or secret", with(backend, func(s *ClientSpec) { s.JWKSURL = "" }), []string{"jwks"}},
			{"backend with keys and secret", with(backend, func(s *ClientSpec) { s.Secret = true }), []string{"jwks"}},
			{"backend with a redirect URI", with(backend, func(s *ClientSpec) { s.RedirectURIs = []string{"https://svc.example.com/cb"} }), []string{"redirect_uris"}},
			{"backend with a launch URL", with(backend, func(s *ClientSpec) { s.LaunchURL = "https://svc.example.com/launch" }), []string{"launch_url"}},
			{"JWKS URL and inline JWKS", with(backend, func(s *ClientSpec) { s.JWKS = validJWKS(t) }), []string{"jwks"}},
			{"http JWKS URL", with(backend, func(s *ClientSpec) { s.JWKSURL = "http://svc.example.com/jwks" }), []string{"jwks_uri"}},
			{"loopback JWKS URL", with(backend, func(s *ClientSpec) { s.JWKSURL = "https://[::1]/jwks" }), []string{"jwks_uri"}},
			{"bad inline JWKS", with(backend, func(s *ClientSpec) { s.JWKSURL = ""; s.JWKS = []byte(`{"keys":[]}`) }), []string{"jwks"}},
			{"every problem at once", ClientSpec{Kind: KindBackend, Scope: "system/*.read system/*.rs", RedirectURIs: []string{"ftp://x"}, Practices: []string{"ZZZZ9"}},
				[]string{"client_name", "scope", "jwks", "redirect_uris", "practices"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, secret, err := r.CreateClient(ctx, tc.spec)
				wantFields(t, err, tc.fields...)
				if secret != "" {
					t.Errorf("a refused client got a secret")
				}
			})
		}
		if all, err := r.ListClients(ctx); err != nil || len(all) != 0 {
			t.Errorf("refused creates wrote %d clients (%v)", len(all), err)
		}
		// Development mode accepts http and loopback hosts.
		dev := with(public, func(s *ClientSpec) {
			s.Dev = true
			s.RedirectURIs = []string{"http://localhost:3000/cb", "http://127.0.0.1/cb"}
			s.LaunchURL = "http://[::1]:3000/launch"
		})
		if _, _, err := r.CreateClient(ctx, dev); err != nil {
			t.Errorf("development-mode client: %v", err)
		}
	})
}

func TestScopeHook(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		var seen []string
		r := New(st, Options{KDF: testKDF, ValidateScope: func(scope, version string) error {
			seen = append(seen, scope+"|"+version)
			if strings.Contains(scope, "Bogus") {
				return errors.New("unknown resource type Bogus")
			}
			return nil
		}})
		spec := ClientSpec{Name: "App", Kind: KindPublic, Scope: "  patient/Bogus.rs ", RedirectURIs: []string{"https://app.example.com/cb"}}
		_, _, err := r.CreateClient(context.Background(), spec)
		wantFields(t, err, "scope")
		if !strings.Contains(err.Error(), "unknown resource type Bogus") {
			t.Errorf("the hook's message is not shown: %v", err)
		}
		spec.Scope = "patient/Patient.rs"
		if _, _, err := r.CreateClient(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		if want := []string{"patient/Bogus.rs|v2", "patient/Patient.rs|v2"}; !slices.Equal(seen, want) {
			t.Errorf("hook saw %q, want %q", seen, want)
		}
	})
}

func TestSMARTVersions(t *testing.T) {
	for _, tc := range []struct {
		scope  string
		v1, v2 bool
	}{
		{"patient/Observation.read", true, false},
		{"user/*.*", true, false},
		{"system/*.write", true, false},
		{"patient/Observation.rs", false, true},
		{"patient/Observation.cruds", false, true},
		{"user/Patient.r", false, true},
		{"patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item", false, true},
		{"patient/Observation.sr", false, false}, // out of order: neither (the scope parser refuses it)
		{"patient/Observation.rx", false, false},
		{"openid fhirUser launch launch/patient offline_access", false, false},
		{"patient/*.read user/*.cud", true, true},
	} {
		v1, v2 := smartVersions(tc.scope)
		if v1 != tc.v1 || v2 != tc.v2 {
			t.Errorf("smartVersions(%q) = %v, %v; want %v, %v", tc.scope, v1, v2, tc.v1, tc.v2)
		}
	}
}

// Client ids are arguments of commands (client suspend ID): none may start
// with "-", which reads as a flag, or "_"; one in 32 random ones would.
func TestClientIDsStartWithALetterOrDigit(t *testing.T) {
	for range 2000 {
		if id := newClientID(); id[0] == '-' || id[0] == '_' || len(id) != 22 {
			t.Fatalf("client id %q", id)
		}
	}
}

// Outside development mode a redirect URI must name a public host in
// every spelling a browser understands (authz/internal/addr).
func TestRedirectURIsInDisguiseAreRefused(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		r := newTestRegistry(st)
		for _, u := range []string{"https://127.1/cb", "https://0x7f.0.0.1/cb", "https://2130706433/cb", "https://[64:ff9b::7f00:1]/cb", "https://intranet/cb"} {
			_, _, err := r.CreateClient(context.Background(), ClientSpec{Name: "P", Kind: KindPublic, Scope: "patient/*.read", RedirectURIs: []string{u}})
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v", u, err)
			}
		}
	})
}

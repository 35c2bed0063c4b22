package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// createdClient is what `client create --json` prints.
type createdClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// TestRegistryCLI drives `fhirgraph practice|client|user` next to a running
// server on the same store: each client kind with --json, listing,
// suspension, and the refusals, which change nothing.
func TestRegistryCLI(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		tmp := t.TempDir()
		linked := filepath.Join(tmp, "people.ndjson")
		registryWriteFile(t, linked, `{"resourceType":"Patient","id":"p1","name":[{"family":"Lovelace"}]}`+"\n"+
			`{"resourceType":"Practitioner","id":"dr1","name":[{"family":"Smith"}]}`+"\n")
		if out, err := e.cli(t, dir, "import", "--log-level", "error", linked); err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		e.start(t, dir) // the commands below run while a server uses the store
		// Output is stdout and stderr together: quiet the store's log.
		run := func(args ...string) string {
			t.Helper()
			out, err := e.cli(t, dir, args[0], append([]string{"--log-level", "error"}, args[1:]...)...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return out
		}
		refuse := func(want string, args ...string) {
			t.Helper()
			out, err := e.cli(t, dir, args[0], append([]string{"--log-level", "error"}, args[1:]...)...)
			if err == nil {
				t.Errorf("%s accepted:\n%s", strings.Join(args, " "), out)
				return
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q, want one saying %q", strings.Join(args, " "), err, want)
			}
		}

		if out := run("practice", "create", "--name", "Lakeside Oncology", "--pin", "onc01"); !strings.Contains(out, "created practice ONC01") {
			t.Errorf("practice create printed %q", out)
		}
		run("practice", "create", "--name", "Children's", "--pin", "PEDS2", "--json")
		refuse("already exists", "practice", "create", "--name", "Again", "--pin", "ONC01")
		refuse("--pin: must be 4 to 12 letters and digits", "practice", "create", "--name", "Bad", "--pin", "x-1")
		refuse("--name: is required", "practice", "create", "--pin", "ABCD")
		if out := run("practice", "list"); !strings.Contains(out, "ONC01") || !strings.Contains(out, "PEDS2") || strings.Contains(out, "ABCD") {
			t.Errorf("practice list:\n%s", out)
		}

		keys := filepath.Join(tmp, "jwks.json")
		registryWriteFile(t, keys, registryJWKS(t))
		created := map[string]createdClient{}
		for _, tc := range []struct {
			name   string
			secret bool
			args   []string
		}{
			{"public", false, []string{"--kind", "public", "--scope", "launch/patient openid fhirUser patient/*.read", "--redirect-uri", "https://app.example.com/cb", "--launch-url", "https://app.example.com/launch", "--practice", "onc01"}},
			{"confidential-secret", true, []string{"--kind", "confidential", "--scope", "user/*.rs offline_access", "--redirect-uri", "https://clinic.example.com/cb", "--redirect-uri", "https://clinic.example.com/cb2", "--secret", "--practice", "ONC01", "--practice", "PEDS2"}},
			{"confidential-keys", false, []string{"--kind", "confidential", "--scope", "patient/Observation.rs", "--redirect-uri", "http://localhost:3000/cb", "--jwks", keys, "--dev"}},
			{"backend-keys", false, []string{"--kind", "backend", "--scope", "system/*.read", "--jwks-url", "https://registry.example.org/jwks.json"}},
			{"backend-secret", true, []string{"--kind", "backend", "--scope", "system/Observation.cud", "--secret"}},
		} {
			out := run(append([]string{"client", "create", "--name", tc.name, "--json"}, tc.args...)...)
			var c createdClient
			var fields map[string]any
			if err := json.Unmarshal([]byte(out), &c); err != nil || json.Unmarshal([]byte(out), &fields) != nil {
				t.Fatalf("client create --json printed %q: %v", out, err)
			}
			if c.ClientID == "" || (c.ClientSecret != "") != tc.secret || len(fields) != map[bool]int{false: 1, true: 2}[tc.secret] {
				t.Errorf("%s: client create --json printed %s", tc.name, out)
			}
			created[tc.name] = c
		}
		text := run("client", "create", "--name", "Texty", "--kind", "backend", "--scope", "system/*.rs", "--secret")
		if !strings.Contains(text, "client_id:") || !strings.Contains(text, "client_secret:") || !strings.Contains(text, "cannot be shown again") {
			t.Errorf("client create printed:\n%s", text)
		}

		listed := func() map[string]map[string]any {
			t.Helper()
			out := run("client", "list", "--json")
			for _, c := range created {
				if c.ClientSecret != "" && strings.Contains(out, c.ClientSecret) {
					t.Errorf("client list shows a secret")
				}
			}
			if strings.Contains(out, "argon2") || strings.Contains(out, "secret_hash") {
				t.Errorf("client list shows secret hashes:\n%s", out)
			}
			var list []map[string]any
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("client list --json: %v\n%s", err, out)
			}
			byID := map[string]map[string]any{}
			for _, c := range list {
				byID[str(c["client_id"])] = c
			}
			return byID
		}
		clients := listed()
		if len(clients) != 6 {
			t.Fatalf("client list has %d clients, want 6", len(clients))
		}
		for name, want := range map[string]struct{ typ, version, grants string }{
			"public":              {"public", "v1", "authorization_code refresh_token"},
			"confidential-secret": {"confidential-symmetric", "v2", "authorization_code refresh_token"},
			"confidential-keys":   {"confidential-asymmetric", "v2", "authorization_code refresh_token"},
			"backend-keys":        {"confidential-asymmetric", "v1", "client_credentials"},
			"backend-secret":      {"confidential-symmetric", "v2", "client_credentials"},
		} {
			c := clients[created[name].ClientID]
			var grants []string
			for _, g := range c["grant_types"].([]any) {
				grants = append(grants, str(g))
			}
			if c["client_name"] != name || c["type"] != want.typ || c["smart_version"] != want.version || strings.Join(grants, " ") != want.grants || c["status"] != "active" {
				t.Errorf("listed %s: %v", name, c)
			}
		}
		if got := clients[created["confidential-secret"].ClientID]["practices"]; len(got.([]any)) != 2 {
			t.Errorf("consented practices %v", got)
		}
		if _, ok := clients[created["confidential-keys"].ClientID]["jwks"].(map[string]any); !ok {
			t.Errorf("the inline JWKS is not kept")
		}
		if out := run("client", "list"); !strings.Contains(out, created["public"].ClientID) || !strings.Contains(out, "Texty") {
			t.Errorf("client list:\n%s", out)
		}

		suspended := created["backend-secret"].ClientID
		if out := run("client", "suspend", suspended); !strings.Contains(out, "suspended") {
			t.Errorf("client suspend printed %q", out)
		}
		run("client", "suspend", suspended) // again: no change, no error
		if got := listed()[suspended]["status"]; got != "suspended" {
			t.Errorf("suspended client has status %v", got)
		}
		refuse("no client has id", "client", "suspend", "no-such-client")
		refuse("takes 1 argument", "client", "suspend")

		before := len(listed())
		for _, tc := range []struct {
			want string
			args []string
		}{
			{"--name: is required", []string{"--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://a.example.com/cb"}},
			{"--kind: must be public, confidential or backend", []string{"--name", "X", "--kind", "native", "--scope", "patient/*.read"}},
			{"--scope: is required", []string{"--name", "X", "--kind", "public", "--redirect-uri", "https://a.example.com/cb"}},
			{"--scope: mixes SMART v1", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read patient/*.rs", "--redirect-uri", "https://a.example.com/cb"}},
			{"--smart-version: is required", []string{"--name", "X", "--kind", "public", "--scope", "openid", "--redirect-uri", "https://a.example.com/cb"}},
			{"--redirect-uri: at least one redirect URI", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read"}},
			{"must use https", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "http://a.example.com/cb"}},
			{"must name a public host", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://localhost/cb"}},
			{"must not have a fragment", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://a.example.com/cb#top", "--dev"}},
			{"--launch-url:", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://a.example.com/cb", "--launch-url", "http://127.0.0.1/launch"}},
			{"--jwks-url:", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read", "--jwks-url", "http://keys.example.com/jwks"}},
			{"backend clients use no redirect URI", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read", "--secret", "--redirect-uri", "https://a.example.com/cb"}},
			{"backend clients need keys", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read"}},
			{"--secret: confidential clients authenticate with a secret or with keys", []string{"--name", "X", "--kind", "confidential", "--scope", "user/*.read", "--redirect-uri", "https://a.example.com/cb"}},
			{"--secret: public clients cannot keep a secret", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://a.example.com/cb", "--secret"}},
			{"--jwks: give a JWKS URL or an inline JWKS, not both", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read", "--jwks", keys, "--jwks-url", "https://k.example.com/jwks"}},
			{"--practice: no practice has PIN NOPE1", []string{"--name", "X", "--kind", "public", "--scope", "patient/*.read", "--redirect-uri", "https://a.example.com/cb", "--practice", "NOPE1"}},
			{"--jwks: ", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read", "--jwks", filepath.Join(tmp, "missing.json")}},
			{"private key material", []string{"--name", "X", "--kind", "backend", "--scope", "system/*.read", "--jwks", registryTempFile(t, tmp, "private.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}},
			{"flag provided but not defined", []string{"--name", "X", "--bogus"}},
		} {
			refuse(tc.want, append([]string{"client", "create"}, tc.args...)...)
		}
		if after := len(listed()); after != before {
			t.Errorf("refused client creates changed the list from %d to %d clients", before, after)
		}

		if out := run("user", "create", "--kind", "patient", "--username", "Ada", "--password", "correct horse battery", "--patient", "p1"); !strings.Contains(out, "created patient user ada (Patient/p1)") {
			t.Errorf("user create printed %q", out)
		}
		out := run("user", "create", "--kind", "practitioner", "--username", "drsmith", "--password", "correct horse battery", "--practitioner", "dr1", "--practice", "onc01", "--practice", "PEDS2", "--json")
		var u map[string]any
		if err := json.Unmarshal([]byte(out), &u); err != nil || u["username"] != "drsmith" || u["practitioner"] != "dr1" || len(u["practices"].([]any)) != 2 || u["password_hash"] != nil {
			t.Errorf("user create --json printed %s (%v)", out, err)
		}
		if strings.Contains(out, "correct horse") {
			t.Errorf("user create printed the password")
		}
		run("user", "create", "--kind", "staff", "--username", "frontdesk", "--password", "another password", "--practice", "PEDS2")
		refuse("already exists", "user", "create", "--kind", "staff", "--username", "ADA", "--password", "another password", "--practice", "PEDS2")
		refuse("--patient: no Patient/p9 in the store", "user", "create", "--kind", "patient", "--username", "bob", "--password", "another password", "--patient", "p9")
		refuse("--practice: patient users belong to no practice", "user", "create", "--kind", "patient", "--username", "bob", "--password", "another password", "--patient", "p1", "--practice", "ONC01")
		refuse("--practice: practitioner users belong to at least one practice", "user", "create", "--kind", "practitioner", "--username", "bob", "--password", "another password", "--practitioner", "dr1")
		refuse("--password: must be 8 to 256 bytes long", "user", "create", "--kind", "staff", "--username", "bob", "--password", "short", "--practice", "ONC01")
		refuse("--kind: must be patient, practitioner or staff", "user", "create", "--kind", "admin", "--username", "bob", "--password", "another password")
		refuse("--username:", "user", "create", "--kind", "staff", "--username", "b", "--password", "another password", "--practice", "ONC01")
		run("user", "suspend", "FrontDesk")
		refuse("no user is named", "user", "suspend", "nobody")
		out = run("user", "list", "--json")
		var users []map[string]any
		if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 3 {
			t.Fatalf("user list --json: %v\n%s", err, out)
		}
		if users[1]["username"] != "drsmith" || users[2]["status"] != "suspended" || strings.Contains(out, "argon2") {
			t.Errorf("user list --json:\n%s", out)
		}
		if out := run("user", "list"); !strings.Contains(out, "Practitioner/dr1; practices ONC01, PEDS2") {
			t.Errorf("user list:\n%s", out)
		}
	})
}

// registryJWKS is a JWK Set holding a new EC P-384 public key.
func registryJWKS(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	set, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-384", "kid": "k1", "alg": "ES384", "use": "sig",
		"x": b64.EncodeToString(pt[1:49]), "y": b64.EncodeToString(pt[49:]),
	}}})
	return string(set)
}

func registryWriteFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func registryTempFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	registryWriteFile(t, p, content)
	return p
}

package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAuthorizationServerIsWired: the running server announces its SMART
// authorization server (discovery, CapabilityStatement rest.security), and
// a token it issues — here to a backend client over client_credentials —
// is one the FHIR API accepts, with the client's practice and scopes and
// nothing more.
func TestAuthorizationServerIsWired(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)

		conf := expect(t, s.as("").do("GET", ".well-known/smart-configuration", nil), http.StatusOK)
		if conf["issuer"] != s.base || conf["token_endpoint"] != s.root+"/oauth/token" || conf["authorization_endpoint"] != s.root+"/oauth/authorize" {
			t.Errorf("smart-configuration: %v", conf)
		}
		cs := expect(t, s.as("").do("GET", "metadata", nil), http.StatusOK)
		for _, r := range cs["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
			if r := r.(map[string]any); r["type"] == "AuditEvent" {
				if got, _ := json.Marshal(r["interaction"]); string(got) != `[{"code":"read"},{"code":"vread"},{"code":"search-type"}]` {
					t.Errorf("AuditEvent interactions %s: the server writes the trail, staff only read it", got)
				}
			}
		}
		sec, _ := json.Marshal(cs["rest"].([]any)[0].(map[string]any)["security"])
		for _, want := range []string{`"SMART-on-FHIR"`, `StructureDefinition/oauth-uris"`, `"valueUri":"` + s.root + `/oauth/token"`, `"valueUri":"` + s.root + `/oauth/authorize"`} {
			if !strings.Contains(string(sec), want) {
				t.Errorf("rest.security lacks %s: %s", want, sec)
			}
		}

		out, err := e.cli(t, dir, "client", "create", "--name", "Nightly sync", "--kind", "backend", "--scope", "system/Patient.rs system/Observation.rs",
			"--secret", "--practice", testPractice, "--json", "--log-level", "error")
		if err != nil {
			t.Fatalf("client create: %v\n%s", err, out)
		}
		var client createdClient
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &client); err != nil || client.ClientSecret == "" {
			t.Fatalf("client create printed %q: %v", out, err)
		}
		tokenRequest := func(secret, scope string) (int, map[string]any) {
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
			req, _ := http.NewRequest("POST", s.root+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(client.ClientID, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
			}
			return resp.StatusCode, m
		}
		status, tok := tokenRequest(client.ClientSecret, "system/Patient.rs")
		if status != http.StatusOK || tok["token_type"] != "Bearer" || tok["scope"] != "system/Patient.rs" {
			t.Fatalf("client_credentials: %d %v", status, tok)
		}
		api := s.as(tok["access_token"].(string))

		// Data of the client's practice (written with the harness's token)
		// is there; a scope it was not granted is refused.
		expect(t, s.do("PUT", "Patient/wired", patient("Wired", `,"id":"wired"`)), http.StatusCreated)
		if got := ids(t, api, "Patient?_id=wired"); len(got) != 1 {
			t.Errorf("the issued token finds %v", got)
		}
		expectOutcome(t, api.do("GET", "Observation?patient=wired", nil), http.StatusForbidden)

		// A wrong secret gets no token.
		if status, body := tokenRequest("not-the-secret", "system/Patient.rs"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("wrong secret: %d %v", status, body)
		}
		// A suspended client gets no new token.
		if out, err := e.cli(t, dir, "client", "suspend", client.ClientID, "--log-level", "error"); err != nil {
			t.Fatalf("client suspend: %v\n%s", err, out)
		}
		if status, body := tokenRequest(client.ClientSecret, "system/Patient.rs"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("suspended client: %d %v", status, body)
		}
		// Nor does the token it already has keep working: the server
		// re-reads a client's standing every few seconds.
		suspended := time.Now()
		for {
			r := api.do("GET", "Patient?_id=wired", nil)
			if r.status == http.StatusUnauthorized {
				break
			}
			if r.status != http.StatusOK || time.Since(suspended) > 15*time.Second {
				t.Fatalf("a suspended client's access token still answers %d after %s", r.status, time.Since(suspended))
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

package test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

var demoCurl = regexp.MustCompile(`curl -H 'Authorization: Bearer (\S+)' (\S+)`)

// TestDemoSeedsOnce: serve --demo loads the synthetic practice into an empty
// store, every resource carrying its US Core profile, and a restart with
// --demo does not load it again. Embedded engine only: 10k resources are
// too many for the test FerretDB, which scans.
func TestDemoSeedsOnce(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, "--demo")
	if !strings.Contains(s.out.String(), "demo data: 100 synthetic patients of practice LAKESHORE") {
		t.Errorf("banner does not explain the demo:\n%s", s.out.String())
	}
	// The demo data belongs to the demo practice: the harness's token (of
	// another practice) sees none of it, the banner's token all of it.
	expectOutcome(t, s.do("GET", "Patient/p0001", nil), http.StatusNotFound)
	m := demoCurl.FindStringSubmatch(s.out.String())
	if m == nil || m[2] != s.root+"/fhir/Patient/p0001" {
		t.Fatalf("banner has no curl line with a token for %s/fhir/Patient/p0001:\n%s", s.root, s.out.String())
	}
	demo := s.as(m[1])
	p := expect(t, demo.do("GET", "Patient/p0001", nil), http.StatusOK)
	profiles := p["meta"].(map[string]any)["profile"].([]any)
	if profiles[0] != "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient" {
		t.Errorf("Patient profile = %v", profiles)
	}
	expect(t, demo.do("GET", "Patient/p0100", nil), http.StatusOK)
	expectOutcome(t, demo.do("GET", "Patient/p0101", nil), http.StatusNotFound)
	g := expect(t, demo.do("GET", "Group/cohort-breast-cancer", nil), http.StatusOK)
	member := g["member"].([]any)[0].(map[string]any)["entity"].(map[string]any)["reference"].(string)
	expect(t, demo.do("GET", member, nil), http.StatusOK)
	versions := dataVersions(t, s)
	if versions < 8000 {
		t.Errorf("demo has %d resources, want about 100 per patient", versions)
	}
	// The demo backend service, with the credentials the banner shows, gets
	// a token from the authorization server that reads the demo data.
	b := demoBackend.FindStringSubmatch(s.out.String())
	if b == nil {
		t.Fatalf("banner shows no demo backend credentials:\n%s", s.out.String())
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}
	req, _ := http.NewRequest("POST", s.root+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(b[1], b[2])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("demo backend token: %d %v", resp.StatusCode, err)
	}
	expect(t, s.as(tok.AccessToken).do("GET", "Patient/p0042", nil), http.StatusOK)
	s.stop()

	s2 := start(t, dir, "--demo")
	if got := dataVersions(t, s2); got != versions {
		t.Errorf("second --demo start changed the store: %d versions, had %d", got, versions)
	}
	if !strings.Contains(s2.out.String(), "registered before") || demoBackend.MatchString(s2.out.String()) {
		t.Errorf("a second --demo start registers the demo apps again:\n%s", s2.out.String())
	}
}

var demoBackend = regexp.MustCompile(`Demo backend service: client_id (\S+), client_secret (\S+)`)

func TestSeedCommand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		out, err := e.cli(t, dir, "seed", "--patients", "3", "--seed", "7", "--log-level", "error")
		if err != nil || !strings.Contains(out, "0 rejected") {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		again, err := e.cli(t, dir, "seed", "--patients", "3", "--seed", "7", "--log-level", "error")
		if err != nil || !strings.Contains(again, "0 created, 0 updated") {
			t.Errorf("seeding the same data twice must change nothing: %v\n%s", err, again)
		}
		if _, err := e.cli(t, dir, "seed", "--patients", "0"); err == nil {
			t.Error("--patients 0 accepted")
		}
		if _, err := cli(t, "nonsense"); err == nil {
			t.Error("unknown subcommand accepted")
		}
		if _, err := cli(t, "serve", "--addr"); err == nil {
			t.Error("flag without value accepted")
		}
	})
}

// dataVersions counts the stored versions of every type but AuditEvent:
// the audit trail grows with every request.
func dataVersions(t *testing.T, s *server) int {
	t.Helper()
	st := s.openStore(t)
	defer st.Close()
	n := 0
	q := store.HistoryQuery{Count: store.MaxPageSize}
	for {
		page, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			if v.Type != "AuditEvent" {
				n++
			}
		}
		if page.Next == "" {
			return n
		}
		q.Cursor = page.Next
	}
}

package test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/token"
)

// The authorization tests share one world, written through tokens of two
// practices (PRAC1, PRAC2) and one import of unowned data:
//
//	PRAC1: Patient pa (A), Observations oa-lab (laboratory), oa-vital
//	       (vital-signs), Encounters ea, ea2 (part of B's eb), Condition
//	       ca, Provenance prov-a (targets oa-lab and A), prov-x (targets
//	       oa-lab only: in no patient's compartment), Practitioner dr-p1.
//	PRAC2: Patient pb (B), Observation ob-lab (laboratory), Encounter eb
//	       (finished), Observation ob-about-a (about A, code secret-code),
//	       Practitioner dr-p2.
//	none:  Practitioner dr-shared (imported without a practice).
const (
	labCategory = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
)

func aobs(id, patient, category, code string) string {
	cat := ""
	if category != "" {
		cat = `,"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"` + category + `"}]}]`
	}
	return `{"resourceType":"Observation","id":"` + id + `","status":"final"` + cat +
		`,"code":{"coding":[{"system":"http://example.org/codes","code":"` + code + `"}]},"subject":{"reference":"Patient/` + patient + `"}}`
}

func encounter(id, patient, status, partOf string) string {
	p := ""
	if partOf != "" {
		p = `,"partOf":{"reference":"Encounter/` + partOf + `"}`
	}
	return `{"resourceType":"Encounter","id":"` + id + `","status":"` + status + `","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/` + patient + `"}` + p + `}`
}

func provenance(id string, targets ...string) string {
	var refs []string
	for _, t := range targets {
		refs = append(refs, `{"reference":"`+t+`"}`)
	}
	return `{"resourceType":"Provenance","id":"` + id + `","target":[` + strings.Join(refs, ",") + `],"recorded":"2024-01-01T00:00:00Z","agent":[{"who":{"reference":"Practitioner/dr-p1"}}]}`
}

func practitioner(id string) string {
	return `{"resourceType":"Practitioner","id":"` + id + `","name":[{"family":"` + id + `"}]}`
}

// authzWorld is a started server holding the world above.
type authzWorld struct {
	*server
	e   engine
	dir string
}

func newAuthzWorld(t *testing.T, e engine) authzWorld {
	t.Helper()
	dir := t.TempDir()
	s := e.start(t, dir)
	for _, pin := range []string{"PRAC1", "PRAC2"} {
		if out, err := e.cli(t, dir, "practice", "create", "--name", pin, "--pin", pin, "--log-level", "error"); err != nil {
			t.Fatalf("practice create: %v\n%s", err, out)
		}
	}
	p1 := s.as(s.mint("--scope", "system/*.cruds", "--practice", "PRAC1"))
	p2 := s.as(s.mint("--scope", "system/*.cruds", "--practice", "PRAC2"))
	put := func(w *server, path, body string) {
		t.Helper()
		expect(t, w.do("PUT", path, body), http.StatusCreated)
	}
	put(p1, "Patient/pa", patient("Alpha", `,"id":"pa"`))
	put(p2, "Patient/pb", `{"resourceType":"Patient","id":"pb","name":[{"family":"Bravo"}],"gender":"male"}`)
	put(p1, "Observation/oa-lab", aobs("oa-lab", "pa", "laboratory", "718-7"))
	put(p1, "Observation/oa-vital", aobs("oa-vital", "pa", "vital-signs", "8867-4"))
	put(p2, "Observation/ob-lab", aobs("ob-lab", "pb", "laboratory", "718-7"))
	put(p2, "Observation/ob-about-a", aobs("ob-about-a", "pa", "", "secret-code"))
	put(p2, "Encounter/eb", encounter("eb", "pb", "finished", ""))
	put(p1, "Encounter/ea", encounter("ea", "pa", "in-progress", ""))
	put(p1, "Encounter/ea2", encounter("ea2", "pa", "in-progress", "eb"))
	put(p1, "Condition/ca", `{"resourceType":"Condition","id":"ca","subject":{"reference":"Patient/pa"},"code":{"text":"x"}}`)
	put(p1, "Provenance/prov-a", provenance("prov-a", "Observation/oa-lab", "Patient/pa"))
	put(p1, "Provenance/prov-x", provenance("prov-x", "Observation/oa-lab"))
	put(p1, "Practitioner/dr-p1", practitioner("dr-p1"))
	put(p2, "Practitioner/dr-p2", practitioner("dr-p2"))

	file := filepath.Join(t.TempDir(), "shared.ndjson")
	if err := os.WriteFile(file, []byte(practitioner("dr-shared")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := e.cli(t, dir, "import", "--log-level", "error", file); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	return authzWorld{server: s, e: e, dir: dir}
}

func (w authzWorld) patientToken(patientID, scopes string) *server {
	return w.as(w.mint("--user-kind", "patient", "--patient", patientID, "--scope", scopes))
}

func (w authzWorld) practitionerToken(scopes string, pins ...string) *server {
	args := []string{"--user-kind", "practitioner", "--fhir-user", "Practitioner/dr-p1", "--scope", scopes}
	for _, p := range pins {
		args = append(args, "--practice", p)
	}
	return w.as(w.mint(args...))
}

func (w authzWorld) systemToken(scopes string, pins ...string) *server {
	args := []string{"--scope", scopes}
	for _, p := range pins {
		args = append(args, "--practice", p)
	}
	return w.as(w.mint(args...))
}

// entryIDs returns "mode:Type/id" of every entry of a searchset, sorted.
func entryIDs(t *testing.T, b map[string]any) []string {
	t.Helper()
	var out []string
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		res := e["resource"].(map[string]any)
		if res["resourceType"] == "OperationOutcome" {
			continue
		}
		out = append(out, e["search"].(map[string]any)["mode"].(string)+":"+res["resourceType"].(string)+"/"+res["id"].(string))
	}
	slices.Sort(out)
	return out
}

func sameIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestBearerTokenIsRequired(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		anon := s.as("")
		expect(t, anon.do("GET", "metadata", nil), http.StatusOK)

		r := anon.do("GET", "Patient", nil)
		expectOutcome(t, r, http.StatusUnauthorized)
		if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
			t.Errorf("no token: WWW-Authenticate = %q, want Bearer (RFC 6750 3.1: no error code)", got)
		}
		for _, c := range []struct{ name, header, desc string }{
			{"garbage", "Bearer not-a-jwt", "malformed"},
			{"not bearer", "Basic dXNlcjpwYXNz", "Bearer"},
			{"expired", "Bearer " + expiredToken(t, s), "expired"},
			{"other audience", "Bearer " + s.mintFor(t, "http://elsewhere.example/fhir"), "audience"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := anon.do("GET", "Patient", nil, "Authorization: "+c.header)
				expectOutcome(t, r, http.StatusUnauthorized)
				got := r.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(got, `Bearer error="invalid_token", error_description="`) || !strings.Contains(got, c.desc) {
					t.Errorf("WWW-Authenticate = %q, want Bearer error=\"invalid_token\" with a description mentioning %q", got, c.desc)
				}
			})
		}
		// Every endpoint but metadata asks for the token.
		for _, path := range []string{"Patient/x", "Patient/x/_history", "Patient/x/_history/1", "Patient/_history", "_history", "Patient/x/Observation", "Patient/_search"} {
			method := "GET"
			if strings.HasSuffix(path, "_search") {
				method = "POST"
			}
			if r := anon.do(method, path, nil); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: %d", method, path, r.status)
			}
		}
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			path := "Patient/x"
			if m == "POST" {
				path = "Patient"
			}
			if r := anon.do(m, path, patient("X", `,"id":"x"`)); r.status != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: %d", m, path, r.status)
			}
		}
		if r := anon.do("POST", "", `{"resourceType":"Bundle","type":"batch"}`); r.status != http.StatusUnauthorized {
			t.Errorf("POST Bundle without a token: %d", r.status)
		}
		// The token that works, for contrast.
		expect(t, s.do("GET", "Patient", nil), http.StatusOK)
	})
}

// expiredToken signs, with the server's keys, a token for its FHIR base
// that expired an hour ago (well past the 30 s leeway).
func expiredToken(t *testing.T, s *server) string {
	t.Helper()
	return s.issue(t, s.base, time.Now().Add(-2*time.Hour))
}

// mintFor signs a valid token for another audience.
func (s *server) mintFor(t *testing.T, base string) string {
	t.Helper()
	return s.issue(t, base, time.Now())
}

func (s *server) issue(t *testing.T, base string, now time.Time) string {
	t.Helper()
	st := s.openStore(t)
	defer st.Close()
	keys, err := token.NewKeyring(st, token.KeyringOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := token.NewAuthority(keys, token.NewDenylist(st, token.DenylistOptions{}), token.AuthorityOptions{
		Issuer: base, Audience: base, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := auth.IssueAccess(context.Background(), token.AccessGrant{Subject: "t", ClientID: "t", Scope: "system/*.rs", Practices: []string{testPractice}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPatientTokenSeesOnlyItsPatient(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		a := w.patientToken("pa", "patient/*.rs")

		expect(t, a.do("GET", "Observation/oa-lab", nil), http.StatusOK)
		expect(t, a.do("GET", "Patient/pa", nil), http.StatusOK)
		hidden := a.do("GET", "Observation/ob-lab", nil)
		missing := a.do("GET", "Observation/no-such", nil)
		expectOutcome(t, hidden, http.StatusNotFound)
		if string(hidden.body) != string(missing.body) {
			t.Errorf("another patient's resource is answered unlike a missing one:\n%s\n%s", hidden.body, missing.body)
		}
		expectOutcome(t, a.do("GET", "Patient/pb", nil), http.StatusNotFound)
		expectOutcome(t, a.do("GET", "Observation/ob-lab/_history/1", nil), http.StatusNotFound)
		expectOutcome(t, a.do("GET", "Observation/ob-lab/_history", nil), http.StatusNotFound)

		// Search, counts and totals come from the filtered query.
		sameIDs(t, "Observation search", ids(t, a, "Observation"), "oa-lab", "oa-vital", "ob-about-a")
		sameIDs(t, "Observation search, two per page", ids(t, a, "Observation?_count=2"), "oa-lab", "oa-vital", "ob-about-a")
		sameIDs(t, "Observation?code=718-7", ids(t, a, "Observation?code=718-7"), "oa-lab")
		if b := expect(t, a.do("GET", "Observation?_total=accurate&_count=1", nil), http.StatusOK); b["total"] != float64(3) {
			t.Errorf("_total = %v, want 3", b["total"])
		}
		if b := expect(t, a.do("GET", "Observation?_summary=count", nil), http.StatusOK); b["total"] != float64(3) {
			t.Errorf("_summary=count total = %v, want 3", b["total"])
		}
		if b := expect(t, a.do("GET", "Observation?_summary=count&code=718-7", nil), http.StatusOK); b["total"] != float64(1) {
			t.Errorf("_summary=count&code=718-7 total = %v, want 1", b["total"])
		}
		sameIDs(t, "compartment search of B", ids(t, a, "Patient/pb/Observation"))
		sameIDs(t, "compartment search of A", ids(t, a, "Patient/pa/Observation"), "oa-lab", "oa-vital", "ob-about-a")

		// _revinclude: prov-x points at A's Observation but is in no
		// patient's compartment; prov-a names A.
		b := expect(t, a.do("GET", "Observation?_id=oa-lab&_revinclude=Provenance:target", nil), http.StatusOK)
		sameIDs(t, "_revinclude=Provenance:target", entryIDs(t, b), "match:Observation/oa-lab", "include:Provenance/prov-a")
		// _include: ea2 is part of B's eb.
		b = expect(t, a.do("GET", "Encounter?_include=Encounter:part-of&_include=Encounter:subject", nil), http.StatusOK)
		sameIDs(t, "_include part-of and subject", entryIDs(t, b), "match:Encounter/ea", "match:Encounter/ea2", "include:Patient/pa")
		b = expect(t, a.do("GET", "Encounter?_include=*", nil), http.StatusOK)
		sameIDs(t, "_include=*", entryIDs(t, b), "match:Encounter/ea", "match:Encounter/ea2", "include:Patient/pa")
		// Chains and reverse chains see only what the token may search.
		sameIDs(t, "chain to B's encounter", ids(t, a, "Encounter?part-of.status=finished"))
		sameIDs(t, "chain to B's name", ids(t, a, "Observation?subject:Patient.name=Bravo"))
		sameIDs(t, "chain to A's name", ids(t, a, "Observation?subject:Patient.name=Alpha&code=718-7"), "oa-lab")
		sameIDs(t, "_has through lab observations", ids(t, a, "Patient?_has:Observation:patient:code=718-7"), "pa")

		// Writes outside the compartment.
		aw := w.patientToken("pa", "patient/*.cruds")
		expectOutcome(t, aw.do("PUT", "Observation/new-b", aobs("new-b", "pb", "laboratory", "1")), http.StatusForbidden)
		expectOutcome(t, aw.do("POST", "Observation", aobs("x", "pb", "laboratory", "1")), http.StatusForbidden)
		expectOutcome(t, aw.do("PUT", "Observation/ob-lab", aobs("ob-lab", "pa", "laboratory", "1")), http.StatusForbidden)
		expectOutcome(t, aw.do("PUT", "Observation/oa-lab", aobs("oa-lab", "pb", "laboratory", "1")), http.StatusForbidden)
		expectOutcome(t, aw.do("DELETE", "Observation/ob-lab", nil), http.StatusNotFound)
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
			{"resource":` + aobs("bb1", "pb", "", "1") + `,"request":{"method":"PUT","url":"Observation/bb1"}},
			{"request":{"method":"GET","url":"Observation/ob-lab"}},
			{"request":{"method":"GET","url":"Observation/oa-lab"}},
			{"resource":` + aobs("bb2", "pa", "", "1") + `,"request":{"method":"PUT","url":"Observation/bb2"}}]}`
		var statuses []string
		for _, en := range expect(t, aw.do("POST", "", batch), http.StatusOK)["entry"].([]any) {
			statuses = append(statuses, en.(map[string]any)["response"].(map[string]any)["status"].(string))
		}
		if got := strings.Join(statuses, ","); got != "403 Forbidden,404 Not Found,200 OK,201 Created" {
			t.Errorf("batch statuses = %s", got)
		}
		// The read-only token may not write at all.
		expectOutcome(t, a.do("PUT", "Observation/oa-new", aobs("oa-new", "pa", "", "1")), http.StatusForbidden)
		// B's data is untouched; A's own write went in.
		expect(t, w.systemToken("system/*.rs", "PRAC2").do("GET", "Observation/ob-lab", nil), http.StatusOK)
		sameIDs(t, "B's observations, as PRAC2", ids(t, w.systemToken("system/*.rs", "PRAC2"), "Observation?subject=pb"), "ob-lab")
		expect(t, aw.do("GET", "Observation/bb2", nil), http.StatusOK)
		// Type history lists the versions in A's compartment only.
		sameIDs(t, "Observation/_history", historyIDs(t, expect(t, a.do("GET", "Observation/_history", nil), http.StatusOK)),
			"Observation/bb2/1", "Observation/ob-about-a/1", "Observation/oa-vital/1", "Observation/oa-lab/1")
	})
}

func TestGranularScopeNarrowsTheSearch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		lab := w.patientToken("pa", "patient/Observation.rs?category="+labCategory)
		sameIDs(t, "lab-only Observation search", ids(t, lab, "Observation"), "oa-lab")
		if b := expect(t, lab.do("GET", "Observation?_summary=count", nil), http.StatusOK); b["total"] != float64(1) {
			t.Errorf("lab-only count = %v, want 1", b["total"])
		}
		expect(t, lab.do("GET", "Observation/oa-lab", nil), http.StatusOK)
		expectOutcome(t, lab.do("GET", "Observation/oa-vital", nil), http.StatusNotFound)
		expectOutcome(t, lab.do("GET", "Patient/pa", nil), http.StatusForbidden)
		// Two granular scopes of the type OR.
		both := w.patientToken("pa", "patient/Observation.rs?category="+labCategory+
			" patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")
		sameIDs(t, "lab or vital-signs", ids(t, both, "Observation"), "oa-lab", "oa-vital")

		noCondition := w.patientToken("pa", "patient/Observation.rs patient/Patient.rs")
		oo := expectOutcome(t, noCondition.do("GET", "Condition?patient=pa", nil), http.StatusForbidden)
		if msg := string(mustJSON(t, oo["issue"])); !strings.Contains(msg, "Condition") {
			t.Errorf("403 does not say what is missing: %s", msg)
		}
		expectOutcome(t, noCondition.do("GET", "Condition/ca", nil), http.StatusForbidden)
		// A chain through a type the token may not search is refused as a whole.
		expectOutcome(t, noCondition.do("GET", "Patient?_has:Condition:patient:code=x", nil), http.StatusForbidden)
		sameIDs(t, "Observation search without Condition scope", ids(t, noCondition, "Observation"), "oa-lab", "oa-vital", "ob-about-a")
		// _include of a type the token may not read is left out.
		b := expect(t, noCondition.do("GET", "Observation?_id=oa-lab&_revinclude=Provenance:target", nil), http.StatusOK)
		sameIDs(t, "_revinclude of an unreadable type", entryIDs(t, b), "match:Observation/oa-lab")
	})
}

func TestPractitionerSeesOnlyItsPractice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		p1 := w.practitionerToken("user/*.rs", "PRAC1")
		p2 := w.practitionerToken("user/*.rs", "PRAC2")
		both := w.systemToken("system/*.rs", "PRAC1", "PRAC2")

		expect(t, p1.do("GET", "Observation/oa-lab", nil), http.StatusOK)
		expectOutcome(t, p1.do("GET", "Observation/ob-lab", nil), http.StatusNotFound)
		expectOutcome(t, p1.do("GET", "Patient/pb", nil), http.StatusNotFound)
		expectOutcome(t, p1.do("GET", "Observation/ob-about-a", nil), http.StatusNotFound)
		sameIDs(t, "PRAC1 Observation search", ids(t, p1, "Observation"), "oa-lab", "oa-vital")
		sameIDs(t, "PRAC1 Observations of A", ids(t, p1, "Patient/pa/Observation"), "oa-lab", "oa-vital")
		sameIDs(t, "PRAC2 Observation search", ids(t, p2, "Observation"), "ob-lab", "ob-about-a")
		if b := expect(t, p1.do("GET", "Observation?_summary=count", nil), http.StatusOK); b["total"] != float64(2) {
			t.Errorf("PRAC1 count = %v, want 2", b["total"])
		}

		// Shared, unowned data is visible to both practices; owned data to
		// its own.
		expect(t, p1.do("GET", "Practitioner/dr-shared", nil), http.StatusOK)
		expect(t, p2.do("GET", "Practitioner/dr-shared", nil), http.StatusOK)
		expectOutcome(t, p1.do("GET", "Practitioner/dr-p2", nil), http.StatusNotFound)
		expect(t, p2.do("GET", "Practitioner/dr-p2", nil), http.StatusOK)
		sameIDs(t, "PRAC1 Practitioners", ids(t, p1, "Practitioner"), "dr-p1", "dr-shared")
		sameIDs(t, "PRAC2 Practitioners", ids(t, p2, "Practitioner"), "dr-p2", "dr-shared")
		sameIDs(t, "harness practice's Practitioners", ids(t, w.server, "Practitioner"), "dr-shared")

		// Nested queries: what PRAC2 holds about A does not leak to PRAC1
		// through _has or chains; a token of both practices finds it.
		sameIDs(t, "PRAC1 _has secret", ids(t, p1, "Patient?_has:Observation:patient:code=secret-code"))
		sameIDs(t, "both _has secret", ids(t, both, "Patient?_has:Observation:patient:code=secret-code"), "pa")
		sameIDs(t, "PRAC1 chain to PRAC2's encounter", ids(t, p1, "Encounter?part-of.status=finished"))
		sameIDs(t, "both chain", ids(t, both, "Encounter?part-of.status=finished"), "ea2")
		b := expect(t, p1.do("GET", "Encounter?_id=ea2&_include=Encounter:part-of", nil), http.StatusOK)
		sameIDs(t, "PRAC1 _include of PRAC2's encounter", entryIDs(t, b), "match:Encounter/ea2")
		b = expect(t, both.do("GET", "Encounter?_id=ea2&_include=Encounter:part-of", nil), http.StatusOK)
		sameIDs(t, "both _include", entryIDs(t, b), "match:Encounter/ea2", "include:Encounter/eb")
		b = expect(t, p2.do("GET", "Patient?_id=pa&_revinclude=Observation:subject", nil), http.StatusOK)
		sameIDs(t, "PRAC2 cannot see A; nothing to revinclude from", entryIDs(t, b))

		// Writes keep practices: PRAC1's update of shared data keeps it
		// shared, its creates are PRAC1's.
		w1 := w.practitionerToken("user/*.cruds", "PRAC1")
		expect(t, w1.do("PUT", "Practitioner/dr-shared", `{"resourceType":"Practitioner","id":"dr-shared","name":[{"family":"Renamed"}]}`), http.StatusOK)
		expect(t, p2.do("GET", "Practitioner/dr-shared", nil), http.StatusOK)
		expect(t, w1.do("PUT", "Practitioner/dr-new", practitioner("dr-new")), http.StatusCreated)
		expectOutcome(t, p2.do("GET", "Practitioner/dr-new", nil), http.StatusNotFound)
		expect(t, p1.do("GET", "Practitioner/dr-new", nil), http.StatusOK)
		expectOutcome(t, w1.do("PUT", "Practitioner/dr-p2", practitioner("dr-p2")), http.StatusForbidden)
		expectOutcome(t, w1.do("DELETE", "Observation/ob-lab", nil), http.StatusNotFound)
		expect(t, p2.do("GET", "Observation/ob-lab", nil), http.StatusOK)
	})
}

// TestImportAndSeedOwnership: import and seed --practice write resources
// the practice owns; without it they are shared; an unknown practice is
// refused, as are tokens for unknown practices or with bad scopes.
func TestImportAndSeedOwnership(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		for _, pin := range []string{"PRAC1", "PRAC2"} {
			if out, err := e.cli(t, dir, "practice", "create", "--name", pin, "--pin", pin, "--log-level", "error"); err != nil {
				t.Fatalf("practice create: %v\n%s", err, out)
			}
		}
		file := filepath.Join(t.TempDir(), "owned.ndjson")
		if err := os.WriteFile(file, []byte(practitioner("dr-owned")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := e.cli(t, dir, "import", "--log-level", "error", "--practice", "nope1", file); err == nil || !strings.Contains(err.Error(), "no such practice") {
			t.Errorf("import --practice of an unknown practice: %v\n%s", err, out)
		}
		if out, err := e.cli(t, dir, "import", "--log-level", "error", "--practice", "prac1", file); err != nil {
			t.Fatalf("import --practice: %v\n%s", err, out)
		}
		if out, err := e.cli(t, dir, "seed", "--log-level", "error", "--patients", "1", "--practice", "PRAC2"); err != nil {
			t.Fatalf("seed --practice: %v\n%s", err, out)
		}
		p1 := s.as(s.mint("--scope", "system/*.rs", "--practice", "PRAC1"))
		p2 := s.as(s.mint("--scope", "system/*.rs", "--practice", "PRAC2"))
		expect(t, p1.do("GET", "Practitioner/dr-owned", nil), http.StatusOK)
		expectOutcome(t, p2.do("GET", "Practitioner/dr-owned", nil), http.StatusNotFound)
		seeded := ids(t, p2, "Patient")
		if len(seeded) != 1 {
			t.Fatalf("PRAC2 sees patients %v, want the one seeded", seeded)
		}
		sameIDs(t, "PRAC1 patients", ids(t, p1, "Patient"))

		for _, args := range [][]string{
			{"--scope", "system/*.rs", "--practice", "NOPE1"},
			{"--scope", "patient/Observation.rs patient/Observation.read"},
			{"--scope", ""},
			{"--scope", "patient/*.rs", "--user-kind", "patient"},
		} {
			full := append([]string{"token", "--data", dir, "--log-level", "error", "--base-url", s.root}, args...)
			if out, err := cliEnv(t, e.getenv(dir), full...); err == nil {
				t.Errorf("token %q: no error\n%s", args, out)
			}
		}
	})
}

// TestPatientTokenReadsWhatItsRecordRefersTo: a patient token reads the
// types no patient's compartment holds — the practitioners, organizations
// and medications its record refers to — but writes none of them, and a
// Device, which R4's compartment definition leaves out, is confined to the
// patient it belongs to like the rest of the record.
func TestPatientTokenReadsWhatItsRecordRefersTo(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		p1 := w.as(w.mint("--scope", "system/*.cruds", "--practice", "PRAC1"))
		device := func(id, patient string) string {
			return `{"resourceType":"Device","id":"` + id + `","patient":{"reference":"Patient/` + patient + `"}}`
		}
		expect(t, p1.do("PUT", "Device/da", device("da", "pa")), http.StatusCreated)
		expect(t, p1.do("PUT", "Device/db", device("db", "pb")), http.StatusCreated)
		pa := w.patientToken("pa", "patient/*.rs")

		expect(t, pa.do("GET", "Practitioner/dr-shared", nil), http.StatusOK)
		expect(t, pa.do("GET", "Practitioner/dr-p1", nil), http.StatusOK)
		sameIDs(t, "Practitioner?_id=dr-shared,dr-p1", ids(t, pa, "Practitioner?_id=dr-shared,dr-p1"), "dr-p1", "dr-shared")
		expectOutcome(t, pa.do("PUT", "Practitioner/dr-new", practitioner("dr-new")), http.StatusForbidden)

		sameIDs(t, "Device?patient=pa", ids(t, pa, "Device?patient=pa"), "da")
		sameIDs(t, "Device", ids(t, pa, "Device"), "da")
		expect(t, pa.do("GET", "Device/da", nil), http.StatusOK)
		expectOutcome(t, pa.do("GET", "Device/db", nil), http.StatusNotFound)
		sameIDs(t, "Patient/pa/Device", ids(t, pa, "Patient/pa/Device"), "da")
	})
}

// TestDeletedResourcesAnswerByWhatTheTokenCouldSee: a deleted resource is
// 410 Gone (with its history, a harmless second delete and a revive) to a
// token that could see it as it last was — its last live version's
// patient compartment and its practice — and 404, exactly as a missing
// one, to any other.
func TestDeletedResourcesAnswerByWhatTheTokenCouldSee(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		p1 := w.as(w.mint("--scope", "system/*.cruds", "--practice", "PRAC1"))
		p2 := w.as(w.mint("--scope", "system/*.cruds", "--practice", "PRAC2"))
		expectDeleted := func(s *server, path string) {
			t.Helper()
			if r := s.do("DELETE", path, nil); r.status != http.StatusNoContent {
				t.Fatalf("DELETE %s: %d %s", path, r.status, r.body)
			}
		}
		expectDeleted(p1, "Observation/oa-vital")
		expectDeleted(p2, "Observation/ob-lab")
		// ea moves to B before it is deleted: what counts is its last live
		// version.
		expect(t, p1.do("PUT", "Encounter/ea", encounter("ea", "pb", "finished", "")), http.StatusOK)
		expectDeleted(p1, "Encounter/ea")

		a := w.patientToken("pa", "patient/*.rs")
		b := w.patientToken("pb", "patient/*.rs")
		pr1 := w.practitionerToken("user/*.rs", "PRAC1")
		lab := w.patientToken("pa", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs")
		missing := a.do("GET", "Observation/no-such", nil)
		expectOutcome(t, missing, http.StatusNotFound)
		for _, c := range []struct {
			name string
			s    *server
			path string
			// history is the instance history's methods when the token
			// may learn of the deletion, "" when it is answered 404.
			history  string
			deletion int
		}{
			{"patient A, its own", a, "Observation/oa-vital", "DELETE,POST", 2},
			{"patient A, B's", a, "Observation/ob-lab", "", 0},
			{"patient A, moved to B before its deletion", a, "Encounter/ea", "", 0},
			// Its history leaves out version 1, which was in A's
			// compartment.
			{"patient B, moved to B before its deletion", b, "Encounter/ea", "DELETE,PUT", 3},
			{"PRAC1, its own", pr1, "Observation/oa-vital", "DELETE,POST", 2},
			{"PRAC1, PRAC2's", pr1, "Observation/ob-lab", "", 0},
			// A granular query is not evaluated on a deletion.
			{"granular scope", lab, "Observation/oa-vital", "", 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := c.s.do("GET", c.path, nil)
				if c.history != "" {
					expectOutcome(t, r, http.StatusGone)
					deletion := c.deletion
					if want := fmt.Sprintf(`W/"%d"`, deletion); r.header.Get("ETag") != want {
						t.Errorf("410 ETag = %q, want the deletion's %s", r.header.Get("ETag"), want)
					}
					expectOutcome(t, c.s.do("GET", fmt.Sprintf("%s/_history/%d", c.path, deletion), nil), http.StatusGone)
					expect(t, c.s.do("GET", fmt.Sprintf("%s/_history/%d", c.path, deletion-1), nil), http.StatusOK)
					hist := expect(t, c.s.do("GET", c.path+"/_history", nil), http.StatusOK)
					if got := historyMethods(hist); got != c.history {
						t.Errorf("instance history = %s, want %s", got, c.history)
					}
					return
				}
				expectOutcome(t, r, http.StatusNotFound)
				if string(r.body) != string(missing.body) {
					t.Errorf("answered unlike a missing resource:\n%s\n%s", r.body, missing.body)
				}
				for _, p := range []string{c.path + "/_history", c.path + "/_history/1", c.path + "/_history/2"} {
					if h := c.s.do("GET", p, nil); h.status != http.StatusNotFound || string(h.body) != string(missing.body) {
						t.Errorf("GET %s: %d %s, want 404 as for a missing resource", p, h.status, h.body)
					}
				}
			})
		}

		// A version from before the resource came within reach is as
		// missing, though the resource is in reach.
		if r := b.do("GET", "Encounter/ea/_history/1", nil); r.status != http.StatusNotFound || string(r.body) != string(missing.body) {
			t.Errorf("B's vread of ea's version 1, in A's compartment: %d %s", r.status, r.body)
		}
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"GET","url":"Encounter/ea/_history/1"}},
			{"request":{"method":"GET","url":"Encounter/ea/_history/2"}},
			{"request":{"method":"GET","url":"Encounter/ea"}}]}`
		var statuses []string
		for _, en := range expect(t, b.do("POST", "", batch), http.StatusOK)["entry"].([]any) {
			statuses = append(statuses, en.(map[string]any)["response"].(map[string]any)["status"].(string))
		}
		if got := strings.Join(statuses, ","); got != "404 Not Found,200 OK,410 Gone" {
			t.Errorf("B's batch reads of ea = %s, want 404, 200, 410", got)
		}

		// Writes: a second delete of one in reach changes nothing; one out
		// of reach is as missing; only one in reach may be revived, and
		// keeps its practice.
		aw := w.patientToken("pa", "patient/*.cruds")
		w1 := w.practitionerToken("user/*.cruds", "PRAC1")
		expectOutcome(t, aw.do("DELETE", "Observation/ob-lab", nil), http.StatusNotFound)
		expectOutcome(t, w1.do("DELETE", "Observation/ob-lab", nil), http.StatusNotFound)
		if r := w1.do("DELETE", "Observation/oa-vital", nil); r.status != http.StatusNoContent || r.header.Get("ETag") != `W/"2"` {
			t.Errorf("second delete: %d ETag %q, want 204 W/\"2\"", r.status, r.header.Get("ETag"))
		}
		expectOutcome(t, w1.do("PUT", "Observation/ob-lab", aobs("ob-lab", "pa", "laboratory", "1")), http.StatusForbidden)
		// A revive may not leave the token's reach.
		expectOutcome(t, w.practitionerToken("user/*.cruds", "PRAC1").do("PUT", "Observation/oa-vital", aobs("oa-vital", "pa", "vital-signs", "1"), `If-Match: W/"1"`), http.StatusPreconditionFailed)
		expect(t, w1.do("PUT", "Observation/oa-vital", aobs("oa-vital", "pa", "vital-signs", "1")), http.StatusCreated)
		expect(t, pr1.do("GET", "Observation/oa-vital", nil), http.StatusOK)
		expectOutcome(t, w.practitionerToken("user/*.rs", "PRAC2").do("GET", "Observation/oa-vital", nil), http.StatusNotFound)
		expect(t, p2.do("GET", "Observation/ob-about-a", nil), http.StatusOK)

		// The patient updates its own record; it stays PRAC1's.
		expect(t, aw.do("PUT", "Observation/oa-vital", aobs("oa-vital", "pa", "vital-signs", "2")), http.StatusOK)
		expect(t, pr1.do("GET", "Observation/oa-vital", nil), http.StatusOK)
		expectOutcome(t, w.practitionerToken("user/*.rs", "PRAC2").do("GET", "Observation/oa-vital", nil), http.StatusNotFound)
	})
}

// historyIDs returns "Type/id/version" of every entry of a history Bundle,
// deletions included, in order.
func historyIDs(t *testing.T, b map[string]any) []string {
	t.Helper()
	var out []string
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		parts := strings.Split(str(e["fullUrl"]), "/")
		if len(parts) < 2 {
			t.Fatalf("history entry without a fullUrl: %v", e)
		}
		version := strings.Trim(strings.TrimPrefix(str(e["response"].(map[string]any)["etag"]), "W/"), `"`)
		out = append(out, parts[len(parts)-2]+"/"+parts[len(parts)-1]+"/"+version)
	}
	return out
}

// allHistoryIDs follows a history listing's next links from path and
// returns historyIDs of every page, in order.
func allHistoryIDs(t *testing.T, s *server, path string) []string {
	t.Helper()
	var out []string
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			t.Fatalf("%s: history does not end", path)
		}
		b := expect(t, s.do("GET", path, nil), http.StatusOK)
		out = append(out, historyIDs(t, b)...)
		path = ""
		links, _ := b["link"].([]any)
		for _, l := range links {
			if l := l.(map[string]any); l["relation"] == "next" {
				path = str(l["url"])
			}
		}
	}
	return out
}

// TestFilteredHistoryListsOnlyWhatTheTokenMaySee: type and system history
// list, for a token confined to a patient compartment or practices, only
// the versions within it — each judged as it was written — across pages
// and with _since, and never a type the policy denies the token
// (AuditEvent to a practitioner).
func TestFilteredHistoryListsOnlyWhatTheTokenMaySee(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		p1 := w.as(w.mint("--scope", "system/*.cruds", "--practice", "PRAC1"))
		p2 := w.as(w.mint("--scope", "system/*.cruds", "--practice", "PRAC2"))
		// oa-lab moves to B and back; ob-lab is deleted.
		expect(t, p1.do("PUT", "Observation/oa-lab", aobs("oa-lab", "pb", "laboratory", "718-7")), http.StatusOK)
		expect(t, p1.do("PUT", "Observation/oa-lab", aobs("oa-lab", "pa", "laboratory", "718-7")), http.StatusOK)
		if r := p2.do("DELETE", "Observation/ob-lab", nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		// The audit trail of PRAC1 exists before system history is read.
		staff := w.as(w.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", "PRAC1"))
		for deadline := time.Now().Add(20 * time.Second); len(ids(t, staff, "AuditEvent?_count=1")) == 0; {
			if time.Now().After(deadline) {
				t.Fatal("no AuditEvent of PRAC1 was written")
			}
			time.Sleep(100 * time.Millisecond)
		}

		a := w.patientToken("pa", "patient/*.rs")
		b := w.patientToken("pb", "patient/*.rs")
		sameIDs(t, "A's Observation history", allHistoryIDs(t, a, "Observation/_history"),
			"Observation/oa-lab/3", "Observation/oa-lab/1", "Observation/oa-vital/1", "Observation/ob-about-a/1")
		sameIDs(t, "B's Observation history", allHistoryIDs(t, b, "Observation/_history"),
			"Observation/oa-lab/2", "Observation/ob-lab/2", "Observation/ob-lab/1")
		if all, paged := allHistoryIDs(t, a, "Observation/_history"), allHistoryIDs(t, a, "Observation/_history?_count=1"); !slices.Equal(all, paged) {
			t.Errorf("A's history one version a page = %v, want %v", paged, all)
		}
		// Instance history needs the resource in reach as it is now: oa-lab
		// is A's again. A's lists the versions A was in.
		expectOutcome(t, b.do("GET", "Observation/oa-lab/_history", nil), http.StatusNotFound)
		sameIDs(t, "A's oa-lab history", allHistoryIDs(t, a, "Observation/oa-lab/_history"), "Observation/oa-lab/3", "Observation/oa-lab/1")

		pr1 := w.practitionerToken("user/*.rs", "PRAC1")
		want := []string{"Patient/pa/1", "Observation/oa-lab/1", "Observation/oa-lab/2", "Observation/oa-lab/3", "Observation/oa-vital/1",
			"Encounter/ea/1", "Encounter/ea2/1", "Condition/ca/1", "Provenance/prov-a/1", "Provenance/prov-x/1",
			"Practitioner/dr-p1/1", "Practitioner/dr-shared/1"}
		all := allHistoryIDs(t, pr1, "_history")
		sameIDs(t, "PRAC1 system history", slices.Clone(all), want...)
		if paged := allHistoryIDs(t, pr1, "_history?_count=3"); !slices.Equal(all, paged) {
			t.Errorf("PRAC1 system history three a page = %v, want %v", paged, all)
		}
		sameIDs(t, "PRAC1 Practitioner history", allHistoryIDs(t, pr1, "Practitioner/_history"), "Practitioner/dr-p1/1", "Practitioner/dr-shared/1")

		// _since keeps the later versions, still within the practice.
		time.Sleep(5 * time.Millisecond)
		late := expect(t, p1.do("PUT", "Practitioner/dr-late", practitioner("dr-late")), http.StatusCreated)
		since := late["meta"].(map[string]any)["lastUpdated"].(string)
		expect(t, p2.do("PUT", "Practitioner/dr-late2", practitioner("dr-late2")), http.StatusCreated)
		sameIDs(t, "PRAC1 system history since dr-late", allHistoryIDs(t, pr1, "_history?_since="+url.QueryEscape(since)), "Practitioner/dr-late/1")

		// Granular scopes cannot be applied to history: refused.
		lab := w.patientToken("pa", "patient/Observation.rs?category="+labCategory)
		expectOutcome(t, lab.do("GET", "Observation/_history", nil), http.StatusForbidden)
	})
}

// TestWritesAboutAPatientStayWithItsPractice: what a patient app, or a
// token reaching several practices, creates about a patient belongs to
// that patient's practice — not to no one, which every practice would see.
func TestWritesAboutAPatientStayWithItsPractice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		pa := w.patientToken("pa", "patient/*.cruds")
		both := w.practitionerToken("user/*.cruds", "PRAC1", "PRAC2")
		expect(t, pa.do("PUT", "Observation/by-patient", aobs("by-patient", "pa", "survey", "72166-2")), http.StatusCreated)
		expect(t, both.do("PUT", "Observation/by-both", aobs("by-both", "pa", "laboratory", "718-7")), http.StatusCreated)
		prac1 := w.practitionerToken("user/*.rs", "PRAC1")
		prac2 := w.practitionerToken("user/*.rs", "PRAC2")
		for _, id := range []string{"by-patient", "by-both"} {
			expect(t, prac1.do("GET", "Observation/"+id, nil), http.StatusOK)
			expectOutcome(t, prac2.do("GET", "Observation/"+id, nil), http.StatusNotFound)
		}
		// The patient may keep updating what it wrote.
		expect(t, pa.do("PUT", "Observation/by-patient", aobs("by-patient", "pa", "survey", "72166-2")), http.StatusOK)
	})
}

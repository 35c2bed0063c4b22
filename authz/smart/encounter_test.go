package smart

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// putEncounters stores encounters of p1 (e1 older, e2 newer, in ALPHA;
// e3 in BETA) and of p2 (e4, BETA). e1 is stored first so that only the
// picker's sort can put e2 before it.
func (e *env) putEncounters() {
	enc := func(id, practice, patient, start, typ string) {
		e.putResource("Encounter", id, practice, `{"resourceType":"Encounter","status":"finished",`+
			`"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB","display":"ambulatory"},`+
			`"type":[{"text":"`+typ+`"}],"subject":{"reference":"Patient/`+patient+`"},`+
			`"period":{"start":"`+start+`T09:00:00Z","end":"`+start+`T09:30:00Z"}}`)
	}
	enc("e1", "ALPHA", "p1", "2023-01-10", "Check-up")
	enc("e2", "ALPHA", "p1", "2025-03-04", "Flu visit")
	enc("e3", "BETA", "p1", "2024-05-06", "Dental visit")
	enc("e4", "BETA", "p2", "2025-07-08", "Stone's visit")
}

// encounterRadios lists the encounter ids a page offers, in order.
func encounterRadios(p page) []string {
	var out []string
	for _, part := range strings.Split(p.body, `name="encounter" value="`)[1:] {
		id, _, _ := strings.Cut(part, `"`)
		out = append(out, id)
	}
	return out
}

// startTo authorizes client with scope, logs user in and returns the
// page shown next, with the PKCE verifier.
func (e *env) startTo(b *http.Client, user, scope string) (page, string) {
	e.t.Helper()
	verifier, challenge := pkce()
	r := e.do(b, "GET", "/oauth/authorize", e.authParams(e.public, scope, challenge))
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("authorize: %d %q %s", r.status, r.location, r.body)
	}
	return e.login(b, e.do(b, "GET", r.location, nil), user), verifier
}

func TestStandalonePractitionerLaunchPicksAnEncounterOfThePickedPatient(t *testing.T) {
	e := newEnv(t)
	e.putEncounters()
	b := e.browser()
	p, verifier := e.startTo(b, "doc", "launch/patient launch/encounter openid fhirUser patient/*.rs")
	f := p.hidden()
	f.Set("patient", "p1")
	r := e.do(b, "POST", "/oauth/patient", f)
	p = e.do(b, "GET", r.location, nil)
	// p1's visits in ALPHA, newest first; not p1's BETA visit, not p2's.
	if got := encounterRadios(p); !slices.Equal(got, []string{"e2", "e1"}) {
		t.Fatalf("encounter picker offers %v, want [e2 e1]: %s", got, p.body)
	}
	if !strings.Contains(p.body, "Flu visit, 2025-03-04T09:00:00Z to 2025-03-04T09:30:00Z, finished") {
		t.Errorf("the picker does not describe e2: %s", p.body)
	}
	// Approving before choosing goes back to the flow, not to the app.
	a := p.hidden()
	a.Set("approve", "1")
	a.Set("scope", "patient/*.rs")
	if x := e.do(b, "POST", "/oauth/approve", a); x.status != http.StatusSeeOther || !strings.HasPrefix(x.location, "/oauth/flow") {
		t.Errorf("approve before choosing a visit: %d %q", x.status, x.location)
	}
	// Another patient's visit, one of another practice, one that does not
	// exist, or none at all while there are visits: refused on a page.
	for _, forged := range []string{"e4", "e3", "nope", ""} {
		f := p.hidden()
		f.Set("encounter", forged)
		x := e.do(b, "POST", "/oauth/encounter", f)
		if x.status != http.StatusBadRequest || x.location != "" {
			t.Errorf("choosing %q: %d %q, want 400 and no redirect", forged, x.status, x.location)
		}
	}
	// Without the CSRF token the choice is refused.
	if x := e.do(b, "POST", "/oauth/encounter", url.Values{"req": {p.hidden().Get("req")}, "encounter": {"e2"}}); x.status != http.StatusForbidden {
		t.Errorf("choosing without csrf: %d", x.status)
	}
	f = p.hidden()
	f.Set("encounter", "e2")
	r = e.do(b, "POST", "/oauth/encounter", f)
	if r.status != http.StatusSeeOther {
		t.Fatalf("choosing e2: %d %s", r.status, r.body)
	}
	p = e.do(b, "GET", r.location, nil)
	if !strings.Contains(p.body, "visit e2") {
		t.Errorf("the approval page does not name the visit: %s", p.body)
	}
	q := e.approve(b, p, nil)
	st, tok := e.redeem(e.public, q.Get("code"), verifier)
	if st != 200 || tok["patient"] != "p1" || tok["encounter"] != "e2" {
		t.Fatalf("token: %d %v", st, tok)
	}
	fc, _ := tok["fhirContext"].([]any)
	if len(fc) != 1 || fc[0].(map[string]any)["reference"] != "Encounter/e2" {
		t.Errorf("fhirContext %v", tok["fhirContext"])
	}
	c, err := e.verify(tok["access_token"])
	must(t, err)
	if c.Encounter != "e2" {
		t.Errorf("access token encounter %q", c.Encounter)
	}
}

func TestStandalonePatientLaunchPicksOneOfTheirOwnEncounters(t *testing.T) {
	e := newEnv(t)
	e.putEncounters()
	b := e.browser()
	p, verifier := e.startTo(b, "patty", "launch/patient launch/encounter patient/*.rs")
	// All of p1's visits, whatever the practice; never p2's.
	if got := encounterRadios(p); !slices.Equal(got, []string{"e2", "e3", "e1"}) {
		t.Fatalf("encounter picker offers %v, want [e2 e3 e1]: %s", got, p.body)
	}
	f := p.hidden()
	f.Set("encounter", "e4")
	if x := e.do(b, "POST", "/oauth/encounter", f); x.status != http.StatusBadRequest || x.location != "" {
		t.Errorf("choosing another patient's visit: %d %q", x.status, x.location)
	}
	f.Set("encounter", "e3")
	r := e.do(b, "POST", "/oauth/encounter", f)
	q := e.approve(b, e.do(b, "GET", r.location, nil), nil)
	st, tok := e.redeem(e.public, q.Get("code"), verifier)
	if st != 200 || tok["patient"] != "p1" || tok["encounter"] != "e3" {
		t.Fatalf("token: %d %v", st, tok)
	}
}

func TestStandaloneLaunchWithoutEncountersContinuesWithoutOne(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p, verifier := e.startTo(b, "patty", "launch/patient launch/encounter patient/*.rs")
	if !strings.Contains(p.body, "has no visits") || len(encounterRadios(p)) != 0 {
		t.Fatalf("expected the no-visit page: %d %s", p.status, p.body)
	}
	f := p.hidden()
	f.Set("none", "1")
	r := e.do(b, "POST", "/oauth/encounter", f)
	if r.status != http.StatusSeeOther {
		t.Fatalf("continue without: %d %s", r.status, r.body)
	}
	q := e.approve(b, e.do(b, "GET", r.location, nil), nil)
	st, tok := e.redeem(e.public, q.Get("code"), verifier)
	if st != 200 || tok["patient"] != "p1" {
		t.Fatalf("token: %d %v", st, tok)
	}
	if _, ok := tok["encounter"]; ok {
		t.Errorf("no visit chosen, yet encounter: %v", tok)
	}
	if _, ok := tok["fhirContext"]; ok {
		t.Errorf("no visit chosen, yet fhirContext: %v", tok)
	}
}

func TestLaunchWithoutLaunchEncounterShowsNoEncounterPicker(t *testing.T) {
	e := newEnv(t)
	e.putEncounters()
	b := e.browser()
	p, _ := e.startTo(b, "patty", "launch/patient patient/*.rs")
	if !strings.Contains(p.body, `name="approve"`) || len(encounterRadios(p)) != 0 {
		t.Errorf("without launch/encounter the approval page follows the login: %s", p.body)
	}
}

package test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// auditTrail runs an AuditEvent search as s until it finds want matches
// (the trail is written a batch at a time, within a second or so), and
// returns them as "outcome subtype entity…" lines, sorted.
func auditTrail(t *testing.T, s *server, query string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b := expect(t, s.do("GET", "AuditEvent?_count=100&"+query, nil), http.StatusOK)
		entries, _ := b["entry"].([]any)
		if len(entries) == want || time.Now().After(deadline) {
			var out []string
			for _, e := range entries {
				out = append(out, describeAudit(e.(map[string]any)["resource"].(map[string]any)))
			}
			slices.Sort(out)
			if len(entries) != want {
				t.Fatalf("AuditEvent?%s: %d matches, want %d:\n%s", query, len(entries), want, strings.Join(out, "\n"))
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sameLines reports the lines of a trail that differ from want.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// describeAudit is an AuditEvent in one line: outcome, action, subtype,
// the requestor, then the entities (references, or decoded queries).
func describeAudit(ae map[string]any) string {
	sub := ae["subtype"].([]any)[0].(map[string]any)
	who := ae["agent"].([]any)[0].(map[string]any)["who"].(map[string]any)
	parts := []string{str(ae["outcome"]), str(ae["action"]), str(sub["code"])}
	switch {
	case who["reference"] != nil:
		parts = append(parts, str(who["reference"]))
	case who["identifier"] != nil:
		parts = append(parts, "client:"+str(who["identifier"].(map[string]any)["value"]))
	default:
		parts = append(parts, "user:"+str(who["display"]))
	}
	ents, _ := ae["entity"].([]any)
	for _, e := range ents {
		e := e.(map[string]any)
		if w, ok := e["what"].(map[string]any); ok {
			parts = append(parts, str(w["reference"]))
		}
		if q := str(e["query"]); q != "" {
			dec, _ := base64.StdEncoding.DecodeString(q)
			parts = append(parts, "query:"+string(dec))
		}
	}
	return strings.Join(parts, " ")
}

func TestAuditTrailRecordsAccessesForStaffOfThePractice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		for _, pin := range []string{"PRAC1", "PRAC2"} {
			if out, err := e.cli(t, dir, "practice", "create", "--name", pin, "--pin", pin, "--log-level", "error"); err != nil {
				t.Fatalf("practice create: %v\n%s", err, out)
			}
		}
		writer := s.as(s.mint("--scope", "system/*.cruds", "--practice", "PRAC1", "--client-id", "loader"))
		expect(t, writer.do("PUT", "Patient/pa", `{"resourceType":"Patient","id":"pa"}`), http.StatusCreated)
		expect(t, writer.do("PUT", "Patient/pb", `{"resourceType":"Patient","id":"pb"}`), http.StatusCreated)
		expect(t, writer.do("PUT", "Observation/oa", aobs("oa", "pa", "laboratory", "x")), http.StatusCreated)
		expect(t, writer.do("PUT", "Observation/ob", aobs("ob", "pb", "laboratory", "x")), http.StatusCreated)

		pa := s.as(s.mint("--scope", "patient/*.rs", "--patient", "pa", "--user-kind", "patient", "--client-id", "app"))
		expect(t, pa.do("GET", "Observation/oa", nil), http.StatusOK)
		expectOutcome(t, pa.do("GET", "Observation/ob", nil), http.StatusNotFound)
		expect(t, pa.do("GET", "Observation?code=x", nil), http.StatusOK)
		doc := s.as(s.mint("--scope", "user/*.rs", "--user-kind", "practitioner", "--fhir-user", "Practitioner/d1", "--practice", "PRAC1", "--client-id", "ehr"))
		expect(t, doc.do("GET", "Observation/ob", nil), http.StatusOK)
		expectOutcome(t, s.as("").do("GET", "Observation/oa", nil), http.StatusUnauthorized)

		staff := s.as(s.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", "PRAC1", "--client-id", "console"))
		got := auditTrail(t, staff, "patient=pa&subtype=read", 2)
		want := []string{
			"0 R read Patient/pa Observation/oa Patient/pa",
			"4 R read Patient/pa Observation/ob Patient/pa",
		}
		sameLines(t, "patient=pa reads", got, want)
		// The search names the patient in context; the practitioner's read
		// names the patient the Observation is about, as the loader's
		// writes do.
		got = auditTrail(t, staff, "agent=Patient/pa&subtype=search-type", 1)
		if want := "0 E search-type Patient/pa query:Observation?code=x Patient/pa"; got[0] != want {
			t.Errorf("patient search = %q, want %q", got[0], want)
		}
		got = auditTrail(t, staff, "patient=pb", 3)
		want = []string{
			"0 R read Practitioner/d1 Observation/ob Patient/pb",
			"0 U update client:loader Observation/ob Patient/pb",
			"0 U update client:loader Patient/pb",
		}
		sameLines(t, "patient=pb", got, want)
		auditTrail(t, staff, "subtype=http://hl7.org/fhir/restful-interaction|read&outcome=4", 1)
		auditTrail(t, staff, "agent=Practitioner/d1&action=R&entity=Observation/ob&type=rest&date=ge2020-01-01", 1)

		// Staff of another practice see no PRAC1 token's accesses; those
		// of a patient user, owned by no practice, they do.
		other := s.as(s.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", "PRAC2", "--client-id", "console"))
		auditTrail(t, other, "patient=pb", 0)
		auditTrail(t, other, "patient=pa&subtype=read", 2)

		// Only staff read the trail; the refusals are recorded too.
		expectOutcome(t, pa.do("GET", "AuditEvent?patient=pa", nil), http.StatusForbidden)
		expectOutcome(t, doc.do("GET", "AuditEvent", nil), http.StatusForbidden)
		expectOutcome(t, writer.do("GET", "AuditEvent", nil), http.StatusForbidden)
		expectOutcome(t, staff.do("POST", "AuditEvent", `{"resourceType":"AuditEvent"}`), http.StatusForbidden)
		expectOutcome(t, staff.do("GET", "Observation/oa", nil), http.StatusForbidden)
		auditTrail(t, staff, "subtype=search-type&outcome=4", 3)
		got = auditTrail(t, staff, "subtype=create", 1)
		if want := "4 C create user:console"; got[0] != want {
			t.Errorf("refused create = %q, want %q", got[0], want)
		}
		// 401s name no one and are not recorded (the unauthenticated read
		// would be Observation/oa's fourth); everything queued before the
		// refusals above is written by now.
		got = auditTrail(t, staff, "entity=Observation/oa", 3)
		want = []string{
			"0 R read Patient/pa Observation/oa Patient/pa",
			"0 U update client:loader Observation/oa Patient/pa",
			"4 R read user:console Observation/oa",
		}
		sameLines(t, "entity=Observation/oa", got, want)
	})
}

func TestAuditTrailIsWrittenOnShutdown(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	pa := s.as(s.mint("--scope", "patient/*.rs", "--patient", "pa", "--user-kind", "patient"))
	expectOutcome(t, pa.do("GET", "Observation/nope", nil), http.StatusNotFound)
	s.stop()
	s = start(t, dir)
	staff := s.as(s.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", testPractice))
	got := auditTrail(t, staff, "patient=pa", 1)
	if want := "4 R read Patient/pa Observation/nope Patient/pa"; got[0] != want {
		t.Errorf("after a restart = %q, want %q", got[0], want)
	}
}

func TestAuditTrailRecordsGraphQLRequests(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	if out, err := cli(t, "practice", "create", "--data", dir, "--name", "PRAC1", "--pin", "PRAC1", "--log-level", "error"); err != nil {
		t.Fatalf("practice create: %v\n%s", err, out)
	}
	writer := s.as(s.mint("--scope", "system/*.cruds", "--practice", "PRAC1"))
	expect(t, writer.do("PUT", "Patient/pa", `{"resourceType":"Patient","id":"pa"}`), http.StatusCreated)
	doc := s.as(s.mint("--scope", "user/Patient.rs", "--user-kind", "practitioner", "--fhir-user", "Practitioner/d1", "--practice", "PRAC1", "--client-id", "ehr"))
	if g := gql(t, doc, `{ PatientList { id } }`); len(g.Errors) > 0 {
		t.Fatalf("%s", g.raw)
	}
	if g := gql(t, doc, `{ ObservationList { id } }`); len(g.Errors) == 0 {
		t.Fatalf("want a refusal: %s", g.raw)
	}
	gqlDecode(t, doc.do("GET", doc.base+"/Patient/pa/$graphql?query="+url.QueryEscape(`{ id }`), nil))
	if r := doc.as("").do("POST", doc.root+"/graphql", `{"query":"{ PatientList { id } }"}`, "Content-Type: application/json"); r.status != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.status)
	}

	staff := s.as(s.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", "PRAC1", "--client-id", "console"))
	got := auditTrail(t, staff, "subtype=operation", 3)
	want := []string{
		"0 E operation Practitioner/d1 Patient/pa query:Patient?query=%7B+id+%7D",
		"0 E operation Practitioner/d1 query:query=%7B+PatientList+%7B+id+%7D+%7D",
		"4 E operation Practitioner/d1 query:query=%7B+ObservationList+%7B+id+%7D+%7D",
	}
	sameLines(t, "GraphQL requests", got, want)
}

func TestAuditTrailRecordsBulkExports(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir)
	bulk := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", backendClient(t, embedded, dir, "exporter")))
	status := bulk.kickoff(t, "GET", "$export?_type=Patient", nil)
	if r := bulk.do("DELETE", status, nil); r.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	staff := s.as(s.mint("--scope", "user/AuditEvent.rs", "--user-kind", "staff", "--practice", testPractice, "--client-id", "console"))
	got := auditTrail(t, staff, "subtype=operation", 2)
	for _, line := range got {
		if !strings.HasPrefix(line, "0 E operation client:") || !strings.Contains(line, "query:") {
			t.Errorf("export audited as %q", line)
		}
	}
	if !strings.Contains(strings.Join(got, "\n"), "query:_type=Patient") {
		t.Errorf("kick-off not recorded with its parameters:\n%s", strings.Join(got, "\n"))
	}
}

package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bulk Data $export end to end, on both engines: one server per engine
// with small output parts (7 resources), a short lease, a short expiry,
// and the test hook that stops the first worker to reach its second page
// as if its process died (so the first export is finished by a worker
// that takes it over).

// bulkKickoff are the headers every kick-off sends.
var bulkKickoff = []string{"Accept: application/fhir+json", "Prefer: respond-async"}

// manifest is a completed export's manifest.
type manifest struct {
	TransactionTime     string      `json:"transactionTime"`
	Request             string      `json:"request"`
	RequiresAccessToken bool        `json:"requiresAccessToken"`
	Output              []bulkEntry `json:"output"`
	Error               []bulkEntry `json:"error"`
	raw                 map[string]any
}

type bulkEntry struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int    `json:"count"`
}

// kickoff starts an export and returns its status URL.
func (s *server) kickoff(t *testing.T, method, path string, body any, headers ...string) string {
	t.Helper()
	r := s.do(method, path, body, append(slices.Clone(bulkKickoff), headers...)...)
	expect(t, r, http.StatusAccepted)
	loc := r.header.Get("Content-Location")
	if !strings.HasPrefix(loc, s.base+"/") {
		t.Fatalf("kick-off Content-Location %q is not an absolute URL under %s", loc, s.base)
	}
	return loc
}

// await polls a status URL as told by Retry-After until the export
// completes, and returns the manifest; it fails on any other answer.
func (s *server) await(t *testing.T, status string) manifest {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := s.do("GET", status, nil)
		switch r.status {
		case http.StatusOK:
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("manifest Content-Type %q", ct)
			}
			var m manifest
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatalf("manifest: %v\n%s", err, r.body)
			}
			json.Unmarshal(r.body, &m.raw)
			for _, k := range []string{"transactionTime", "request", "requiresAccessToken", "output", "error"} {
				if _, ok := m.raw[k]; !ok {
					t.Errorf("manifest lacks %q: %s", k, r.body)
				}
			}
			if !m.RequiresAccessToken {
				t.Errorf("requiresAccessToken is not true")
			}
			return m
		case http.StatusAccepted:
			if r.header.Get("X-Progress") == "" {
				t.Errorf("202 status without X-Progress")
			}
			wait, err := time.ParseDuration(r.header.Get("Retry-After") + "s")
			if err != nil || wait <= 0 {
				t.Fatalf("202 status with Retry-After %q", r.header.Get("Retry-After"))
			}
			if time.Now().After(deadline) {
				t.Fatalf("export did not complete")
			}
			time.Sleep(wait)
		default:
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
}

// download fetches every output file and returns the resources by type,
// checking that each line is a resource of its entry's type, that counts
// match, and that no resource repeats.
func (s *server) download(t *testing.T, m manifest) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	seen := map[string]bool{}
	for _, e := range m.Output {
		r := s.do("GET", e.URL, nil, "Accept: application/fhir+ndjson")
		if r.status != http.StatusOK {
			t.Fatalf("download %s: %d %s", e.URL, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/fhir+ndjson" {
			t.Errorf("file Content-Type %q", ct)
		}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		sc.Buffer(nil, 16<<20)
		n := 0
		for sc.Scan() {
			var res map[string]any
			if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
				t.Fatalf("%s line %d is not JSON: %v", e.URL, n+1, err)
			}
			if res["resourceType"] != e.Type {
				t.Errorf("%s holds a %v", e.Type, res["resourceType"])
			}
			key := e.Type + "/" + str(res["id"])
			if seen[key] {
				t.Errorf("%s exported twice", key)
			}
			seen[key] = true
			out[e.Type] = append(out[e.Type], res)
			n++
		}
		if n != e.Count || n == 0 {
			t.Errorf("%s: %d lines, manifest count %d", e.URL, n, e.Count)
		}
	}
	return out
}

// restCount is what REST search counts with the server's token.
func (s *server) restCount(t *testing.T, query string) int {
	t.Helper()
	sep := "?"
	if strings.Contains(query, "?") {
		sep = "&"
	}
	m := expect(t, s.do("GET", query+sep+"_summary=count", nil), http.StatusOK)
	return int(m["total"].(float64))
}

// backendClient registers a backend client and returns its id.
func backendClient(t *testing.T, e engine, dir, name string) string {
	t.Helper()
	out, err := e.cli(t, dir, "client", "create", "--name", name, "--kind", "backend", "--scope", "system/*.rs",
		"--secret", "--practice", testPractice, "--json", "--log-level", "error")
	if err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	var c createdClient
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &c); err != nil {
		t.Fatal(err)
	}
	return c.ClientID
}

func exportedIDs(rs []map[string]any) []string {
	var out []string
	for _, r := range rs {
		out = append(out, str(r["id"]))
	}
	slices.Sort(out)
	return out
}

func TestBulkExport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir, "--export-part-size", "7", "--export-lease", "2s", "--export-retry-after", "1s",
			"--export-expiry", "8s", "--export-test-kill-after-pages", "2")
		if out, err := e.cli(t, dir, "seed", "--patients", "3", "--practice", testPractice, "--log-level", "error"); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		clientID := backendClient(t, e, dir, "Registry sync")
		bs := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", clientID))
		other := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", backendClient(t, e, dir, "Other app")))

		t.Run("the CapabilityStatement lists $export", func(t *testing.T) {
			cs := string(s.do("GET", "metadata", nil).body)
			for _, want := range []string{"bulkdata/CapabilityStatement/bulk-data", "OperationDefinition/export", "OperationDefinition/patient-export", "OperationDefinition/group-export"} {
				if !strings.Contains(cs, want) {
					t.Errorf("CapabilityStatement lacks %s", want)
				}
			}
		})

		var first manifest
		t.Run("system export after a worker dies mid-job", func(t *testing.T) {
			status := bs.kickoff(t, "GET", "$export", nil)
			first = bs.await(t, status)
			if first.Request != bs.base+"/$export" {
				t.Errorf("request %q", first.Request)
			}
			if _, err := time.Parse(time.RFC3339, first.TransactionTime); err != nil {
				t.Errorf("transactionTime %q: %v", first.TransactionTime, err)
			}
			if len(first.Error) != 0 {
				t.Errorf("errors: %+v", first.Error)
			}
			got := bs.download(t, first)
			if len(got) < 3 {
				t.Fatalf("only %d types exported", len(got))
			}
			for typ, rs := range got {
				if n := bs.restCount(t, typ); n != len(rs) {
					t.Errorf("%s: %d exported, REST counts %d", typ, len(rs), n)
				}
			}
			// The hook stopped the first worker at its second page: the
			// output is a taker-over's (its part files carry epoch 2).
			takenOver := slices.ContainsFunc(first.Output, func(e bulkEntry) bool { return strings.Contains(e.URL, "-2.ndjson") })
			if !takenOver {
				t.Errorf("no part was written after a takeover: %+v", first.Output)
			}
			parts := 0
			for _, o := range first.Output {
				if o.Type == "Observation" {
					parts++
				}
			}
			if parts < 2 {
				t.Errorf("Observation in %d parts, want several of at most 7", parts)
			}
		})

		t.Run("only the client that started an export sees it", func(t *testing.T) {
			if len(first.Output) == 0 {
				t.Skip("no export")
			}
			status := statusOf(first.Output[0].URL)
			expectOutcome(t, other.do("GET", status, nil), http.StatusNotFound)
			expectOutcome(t, other.do("GET", first.Output[0].URL, nil), http.StatusNotFound)
			expectOutcome(t, other.do("DELETE", status, nil), http.StatusNotFound)
			expectOutcome(t, bs.as("").do("GET", first.Output[0].URL, nil), http.StatusUnauthorized)
			expectOutcome(t, bs.do("GET", first.Output[0].URL+"x", nil), http.StatusNotFound)
		})

		t.Run("a token of the same client that reaches less does not see its export", func(t *testing.T) {
			if len(first.Output) == 0 {
				t.Skip("no export")
			}
			status := statusOf(first.Output[0].URL)
			pats := expect(t, bs.do("GET", "Patient?_count=1", nil), http.StatusOK)
			if out, err := e.cli(t, dir, "practice", "create", "--name", "Another practice", "--pin", "E2EOTHER"); err != nil {
				t.Fatalf("practice create: %v\n%s", err, out)
			}
			pid := str(pats["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)["id"])
			for name, tok := range map[string]string{
				"fewer types":      s.mint("--scope", "system/Observation.rs", "--practice", testPractice, "--client-id", clientID),
				"one patient":      s.mint("--scope", "patient/*.rs", "--user-kind", "patient", "--patient", pid, "--practice", testPractice, "--client-id", clientID),
				"another practice": s.mint("--scope", "system/*.rs", "--practice", "E2EOTHER", "--client-id", clientID),
			} {
				narrow := s.as(tok)
				for _, u := range []string{status, first.Output[0].URL} {
					if r := narrow.do("GET", u, nil); r.status != http.StatusNotFound {
						t.Errorf("%s: GET %s: %d %.200s", name, u, r.status, r.body)
					}
				}
			}
			// A fresh token with the same reach polls and downloads it.
			again := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", clientID))
			expect(t, again.do("GET", status, nil), http.StatusOK)
			if r := again.do("GET", first.Output[0].URL, nil); r.status != http.StatusOK {
				t.Errorf("same reach: %d %.200s", r.status, r.body)
			}
		})

		t.Run("types, _typeFilter and _elements", func(t *testing.T) {
			q := url.Values{"_type": {"Patient,Observation"}, "_typeFilter": {"Observation?category=vital-signs,Observation?category=laboratory&status=final"},
				"_elements": {"Patient.gender,code,status"}, "_outputFormat": {"application/ndjson"}}
			m := bs.await(t, bs.kickoff(t, "GET", "$export?"+q.Encode(), nil))
			got := bs.download(t, m)
			if len(got) != 2 || len(got["Patient"]) == 0 {
				t.Fatalf("types exported: %v", slices.Collect(maps.Keys(got)))
			}
			vital := bs.restCount(t, "Observation?category=vital-signs")
			lab := bs.restCount(t, "Observation?category=laboratory&status=final")
			if n := len(got["Observation"]); n != vital+lab || n == 0 {
				t.Errorf("Observation: %d exported, REST counts %d vital signs and %d final labs", n, vital, lab)
			}
			for _, p := range got["Patient"] {
				if p["name"] != nil || p["gender"] == nil || !strings.Contains(fmt.Sprint(p["meta"]), "SUBSETTED") {
					t.Fatalf("Patient not subsetted to gender: %v", p)
				}
			}
			for _, o := range got["Observation"] {
				if o["subject"] != nil || o["code"] == nil || o["status"] == nil {
					t.Fatalf("Observation not subsetted to code and status: %v", o)
				}
			}
		})

		t.Run("_since", func(t *testing.T) {
			pats := expect(t, bs.do("GET", "Patient?_count=1", nil), http.StatusOK)
			p := pats["entry"].([]any)[0].(map[string]any)["resource"].(map[string]any)
			time.Sleep(20 * time.Millisecond)
			since := time.Now().UTC().Format(time.RFC3339Nano)
			time.Sleep(20 * time.Millisecond)
			p["gender"] = "other"
			expect(t, s.do("PUT", "Patient/"+str(p["id"]), p), http.StatusOK)
			m := bs.await(t, bs.kickoff(t, "GET", "$export?_type=Patient,Observation&_since="+url.QueryEscape(since), nil))
			got := bs.download(t, m)
			if len(got) != 1 || len(got["Patient"]) != 1 || str(got["Patient"][0]["id"]) != str(p["id"]) {
				t.Errorf("_since export: %v", got)
			}
		})

		t.Run("snapshot at the transaction time", func(t *testing.T) {
			updated := expect(t, s.do("POST", "Patient", patient("Before")), http.StatusCreated)
			deleted := expect(t, s.do("POST", "Patient", patient("Deleted")), http.StatusCreated)
			status := bs.kickoff(t, "GET", "$export?_type=Patient", nil)
			updated["name"] = []any{map[string]any{"family": "After"}}
			expect(t, s.do("PUT", "Patient/"+str(updated["id"]), updated), http.StatusOK)
			expect(t, s.do("DELETE", "Patient/"+str(deleted["id"]), nil), http.StatusNoContent)
			created := expect(t, s.do("POST", "Patient", patient("Later")), http.StatusCreated)
			got := bs.download(t, bs.await(t, status))
			byID := map[string]map[string]any{}
			for _, p := range got["Patient"] {
				byID[str(p["id"])] = p
			}
			if p := byID[str(updated["id"])]; p == nil || !strings.Contains(fmt.Sprint(p["name"]), "Before") {
				t.Errorf("updated patient exported as %v, want its version at kick-off", p)
			}
			if byID[str(deleted["id"])] == nil {
				t.Errorf("patient deleted after kick-off not exported")
			}
			if byID[str(created["id"])] != nil {
				t.Errorf("patient created after kick-off exported")
			}
		})

		t.Run("Group and Patient level", func(t *testing.T) {
			// Two patients with Observations.
			obsPage := expect(t, bs.do("GET", "Observation?_count=200", nil), http.StatusOK)
			var members []string
			for _, en := range obsPage["entry"].([]any) {
				ref := str(en.(map[string]any)["resource"].(map[string]any)["subject"].(map[string]any)["reference"])
				if id, ok := strings.CutPrefix(ref, "Patient/"); ok && !slices.Contains(members, id) && len(members) < 2 {
					members = append(members, id)
				}
			}
			if len(members) < 2 {
				t.Fatalf("seeded Observations are about %v", members)
			}
			slices.Sort(members)
			g := map[string]any{"resourceType": "Group", "type": "person", "actual": true, "member": []any{
				map[string]any{"entity": map[string]any{"reference": "Patient/" + members[0]}},
				map[string]any{"entity": map[string]any{"reference": "Patient/" + members[1]}},
			}}
			group := expect(t, s.do("POST", "Group", g), http.StatusCreated)
			got := bs.download(t, bs.await(t, bs.kickoff(t, "GET", "Group/"+str(group["id"])+"/$export", nil)))
			if !slices.Equal(exportedIDs(got["Patient"]), members) {
				t.Errorf("Group export patients %v, want %v", exportedIDs(got["Patient"]), members)
			}
			want := 0
			for _, id := range members {
				want += bs.restCount(t, "Observation?subject=Patient/"+id)
			}
			if n := len(got["Observation"]); n != want || n == 0 {
				t.Errorf("Group export: %d Observations, members have %d", n, want)
			}
			// Groups are in their members' compartments (Group.member); a
			// Practitioner is in none.
			if got["Practitioner"] != nil || got["Group"] == nil {
				t.Errorf("Group export holds resources outside the patients' compartments")
			}

			params := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "patient", "valueReference": map[string]any{"reference": "Patient/" + members[1]}},
				map[string]any{"name": "_type", "valueString": "Patient,Observation"},
			}}
			got = bs.download(t, bs.await(t, bs.kickoff(t, "POST", "Patient/$export", params)))
			if !slices.Equal(exportedIDs(got["Patient"]), members[1:]) {
				t.Errorf("Patient export with patient=%s: %v", members[1], exportedIDs(got["Patient"]))
			}
			for _, o := range got["Observation"] {
				if ref := fmt.Sprint(o["subject"]); !strings.Contains(ref, "Patient/"+members[1]) {
					t.Errorf("Observation of another patient exported: %s", ref)
				}
			}

			pt := s.as(s.mint("--scope", "patient/*.rs", "--user-kind", "patient", "--patient", members[0], "--practice", testPractice, "--client-id", clientID))
			expectOutcome(t, pt.do("GET", "$export", nil, bulkKickoff...), http.StatusForbidden)
			got = pt.download(t, pt.await(t, pt.kickoff(t, "GET", "Patient/$export?_type=Patient,Observation", nil)))
			if !slices.Equal(exportedIDs(got["Patient"]), members[:1]) {
				t.Errorf("patient token's Patient export: %v", exportedIDs(got["Patient"]))
			}
			if n := bs.restCount(t, "Observation?subject=Patient/"+members[0]); len(got["Observation"]) != n {
				t.Errorf("patient token's export: %d Observations, the patient has %d", len(got["Observation"]), n)
			}
			obs := s.as(s.mint("--scope", "system/Observation.rs", "--practice", testPractice, "--client-id", clientID))
			expectOutcome(t, obs.do("GET", "$export?_type=Patient", nil, bulkKickoff...), http.StatusForbidden)
			got = obs.download(t, obs.await(t, obs.kickoff(t, "GET", "$export", nil)))
			if len(got) != 1 || got["Observation"] == nil {
				t.Errorf("an Observation-only token exported %v", slices.Collect(maps.Keys(got)))
			}
		})

		t.Run("bad requests are 400", func(t *testing.T) {
			for _, tc := range []struct {
				path    string
				headers []string
			}{
				{"$export", []string{"Accept: application/fhir+json"}},
				{"$export", []string{"Accept: application/fhir+xml", "Prefer: respond-async"}},
				{"$export?_outputFormat=application/fhir%2Bxml", bulkKickoff},
				{"$export?_since=yesterday", bulkKickoff},
				{"$export?_type=Nonsense", bulkKickoff},
				{"$export?_typeFilter=Observation%3Fnonsense%3D1", bulkKickoff},
				{"$export?_typeFilter=nonsense", bulkKickoff},
				{"$export?_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal", bulkKickoff},
				{"$export?_elements=nonsense", bulkKickoff},
				{"$export?_count=3", bulkKickoff},
				{"$export?includeAssociatedData=LatestProvenanceResources", bulkKickoff},
				{"Patient/$export?patient=Patient/1", bulkKickoff},
			} {
				expectOutcome(t, bs.do("GET", tc.path, nil, tc.headers...), http.StatusBadRequest)
			}
			expectOutcome(t, bs.as("").do("GET", "$export", nil, bulkKickoff...), http.StatusUnauthorized)
			expectOutcome(t, bs.do("POST", "$export", map[string]any{"resourceType": "Patient"}, bulkKickoff...), http.StatusBadRequest)
			expectOutcome(t, bs.do("GET", "Group/nope/$export", nil, bulkKickoff...), http.StatusNotFound)

			// Leniently, an unknown parameter is ignored and reported.
			r := bs.do("GET", "$export?_type=Patient&_count=3&_typeFilter=Patient%3Fnonsense%3D1", nil, "Accept: application/fhir+json", "Prefer: respond-async, handling=lenient")
			expect(t, r, http.StatusAccepted)
			m := bs.await(t, r.header.Get("Content-Location"))
			if len(m.Error) != 1 || m.Error[0].Type != "OperationOutcome" {
				t.Fatalf("lenient manifest error: %+v", m.Error)
			}
			oo := bs.do("GET", m.Error[0].URL, nil)
			if oo.status != http.StatusOK || !strings.Contains(string(oo.body), "_count") || !strings.Contains(string(oo.body), "nonsense") {
				t.Errorf("error file: %d %s", oo.status, oo.body)
			}
			if n := len(bs.download(t, m)["Patient"]); n != bs.restCount(t, "Patient") {
				t.Errorf("lenient export of Patient without its bad _typeFilter: %d, REST counts %d", n, bs.restCount(t, "Patient"))
			}
		})

		t.Run("polling too fast is 429", func(t *testing.T) {
			status := bs.kickoff(t, "GET", "$export", nil)
			a, b := bs.do("GET", status, nil), bs.do("GET", status, nil)
			if a.status == http.StatusAccepted && b.status != http.StatusTooManyRequests {
				t.Errorf("second immediate poll: %d", b.status)
			}
			if b.status == http.StatusTooManyRequests && b.header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			time.Sleep(time.Second)
			bs.await(t, status)
		})

		t.Run("cancel", func(t *testing.T) {
			status := bs.kickoff(t, "GET", "$export", nil)
			expect(t, bs.do("DELETE", status, nil), http.StatusAccepted)
			expectOutcome(t, bs.do("GET", status, nil), http.StatusNotFound)
			expectOutcome(t, bs.do("DELETE", status, nil), http.StatusNotFound)

			done := bs.await(t, bs.kickoff(t, "GET", "$export?_type=Patient", nil))
			expect(t, bs.do("DELETE", statusOf(done.Output[0].URL), nil), http.StatusAccepted)
			expectOutcome(t, bs.do("GET", done.Output[0].URL, nil), http.StatusNotFound)
		})

		// The worker's side (a job whose client is suspended, or loses a
		// practice's consent, while it runs fails) is bulk's
		// TestAnExportFailsWhenItsClientLosesItsStanding.
		t.Run("a suspended client's tokens neither poll nor start an export", func(t *testing.T) {
			id := backendClient(t, e, dir, "Soon suspended")
			c := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", id))
			status := c.kickoff(t, "GET", "$export?_type=Patient", nil)
			if out, err := e.cli(t, dir, "client", "suspend", id, "--log-level", "error"); err != nil {
				t.Fatalf("client suspend: %v\n%s", err, out)
			}
			// The guard re-reads a client's standing every few seconds; the
			// job may be done, or failed by its worker, until then.
			deadline := time.Now().Add(30 * time.Second)
			for {
				r := c.do("GET", status, nil)
				if r.status == http.StatusUnauthorized {
					expectOutcome(t, r, http.StatusUnauthorized)
					break
				}
				if !slices.Contains([]int{http.StatusOK, http.StatusAccepted, http.StatusTooManyRequests, http.StatusInternalServerError}, r.status) || time.Now().After(deadline) {
					t.Fatalf("suspended client's status request: %d %s", r.status, r.body)
				}
				time.Sleep(time.Second)
			}
			expectOutcome(t, c.do("GET", "$export?_type=Patient", nil, bulkKickoff...), http.StatusUnauthorized)
		})

		t.Run("expired exports are removed", func(t *testing.T) {
			if len(first.Output) == 0 {
				t.Skip("no export")
			}
			u, _ := url.Parse(first.Output[0].URL)
			job := u.Query().Get("_jobId")
			st := s.openStore(t)
			defer st.Close()
			deadline := time.Now().Add(60 * time.Second)
			for {
				files, err := st.Files().ListFiles(context.Background(), "export/"+job+"/")
				if err != nil {
					t.Fatal(err)
				}
				if len(files) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("expired export's files still there: %v", files)
				}
				time.Sleep(500 * time.Millisecond)
			}
			expectOutcome(t, bs.do("GET", first.Output[0].URL, nil), http.StatusNotFound)
			expectOutcome(t, bs.do("GET", statusOf(first.Output[0].URL), nil), http.StatusNotFound)
		})
	})
}

// statusOf is the status URL of the job an output file belongs to.
func statusOf(fileURL string) string {
	u, _ := url.Parse(fileURL)
	u.Path = strings.Replace(u.Path, "$export-file", "$export-poll-status", 1)
	u.RawQuery = url.Values{"_jobId": {u.Query().Get("_jobId")}}.Encode()
	return u.String()
}

// TestBulkExportLimitsJobsPerClient runs a server without export workers,
// so that jobs stay queued.
func TestBulkExportLimitsJobsPerClient(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir, "--export-workers", "0", "--export-max-jobs", "1")
		bs := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", backendClient(t, e, dir, "Limited")))
		status := bs.kickoff(t, "GET", "$export", nil)
		r := bs.do("GET", "$export", nil, bulkKickoff...)
		expectOutcome(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
		r = bs.do("GET", status, nil)
		if r.status != http.StatusAccepted || r.header.Get("X-Progress") != "queued" || r.header.Get("Retry-After") == "" {
			t.Errorf("queued job's status: %d X-Progress %q Retry-After %q", r.status, r.header.Get("X-Progress"), r.header.Get("Retry-After"))
		}
		expect(t, bs.do("DELETE", status, nil), http.StatusAccepted)
		expectOutcome(t, bs.do("GET", status, nil), http.StatusNotFound)
		bs.kickoff(t, "GET", "$export", nil)
	})
}

// TestBulkKickoffAnswersMalformedAndOversizedRequestsWith4xx runs a server
// without export workers: only the kick-off's answers matter.
func TestBulkKickoffAnswersMalformedAndOversizedRequestsWith4xx(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, "--export-workers", "0", "--export-max-jobs", "100")
	bs := s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", backendClient(t, embedded, dir, "Malformed")))
	lenient := []string{"Accept: application/fhir+json", "Prefer: respond-async, handling=lenient"}
	params := func(ps ...string) string {
		return `{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`
	}
	many := func(n int, format string) string {
		var vs []string
		for i := range n {
			vs = append(vs, fmt.Sprintf(format, i))
		}
		return strings.Join(vs, ",")
	}
	for _, tc := range []struct {
		name, method, path string
		body               string
		headers            []string
		want               int
	}{
		{"a parameter of a type the operation does not read", "POST", "$export", params(`{"name":"_since","valueInteger":3}`), bulkKickoff, 400},
		{"parameter not a list", "POST", "$export", `{"resourceType":"Parameters","parameter":{"name":"_type"}}`, bulkKickoff, 400},
		{"a body that is not JSON", "POST", "$export", `{"resourceType":`, bulkKickoff, 400},
		{"a reference that is not a string", "POST", "Patient/$export", params(`{"name":"patient","valueReference":{"reference":7}}`), bulkKickoff, 400},
		{"a patient that is not a Patient", "POST", "Patient/$export", params(`{"name":"patient","valueReference":{"reference":"Observation/1"}}`), bulkKickoff, 400},
		{"a patient without a reference", "POST", "Patient/$export", params(`{"name":"patient","valueReference":{}}`), bulkKickoff, 400},
		{"_since twice", "GET", "$export?_since=2024-01-02T00:00:00Z&_since=2024-01-03T00:00:00Z", "", bulkKickoff, 400},
		{"_since a date", "GET", "$export?_since=2024-01-02", "", bulkKickoff, 400},
		{"_elements of no element", "GET", "$export?_elements=Patient.", "", bulkKickoff, 400},
		{"_elements of no type", "GET", "$export?_elements=.gender", "", bulkKickoff, 400},
		{"_typeFilter without a query", "GET", "$export?_typeFilter=Observation%3F", "", bulkKickoff, 400},
		{"_typeFilter badly escaped", "GET", "$export?_typeFilter=Observation%3Fcode%3D%25zz", "", bulkKickoff, 400},
		{"_typeFilter with _include", "GET", "$export?_typeFilter=Observation%3F_include%3DObservation:subject", "", bulkKickoff, 400},
		{"a Group id that is no id", "GET", "Group/a$b/$export", "", bulkKickoff, 400},
		{"more _typeFilter alternatives than a query ORs", "GET", "$export?_typeFilter=" + url.QueryEscape(many(501, "Observation?code=c%d")), "", bulkKickoff, 400},
		{"more _type values than there are types, leniently", "GET", "$export?_type=" + many(1001, "Nonsense%d"), "", lenient, 400},
		{"more _elements than there are elements", "GET", "$export?_elements=" + many(1001, "e%d"), "", lenient, 400},
		{"more _outputFormat values than formats, leniently", "GET", "$export?_outputFormat=" + many(1001, "f%d"), "", lenient, 400},
		{"a status URL without a job", "GET", "$export-poll-status", "", nil, 404},
		{"a status URL of a job id no job has", "GET", "$export-poll-status?_jobId=%ff%00", "", nil, 404},
		{"a file outside the job", "GET", "$export-file?_jobId=00000000000000000000000000000000&file=..%2F..%2Fsecret", "", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := bs.do(tc.method, tc.path, body, tc.headers...)
			expectOutcome(t, r, tc.want)
		})
	}
}

package test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// count is how many resources a search matches (its _summary=count total).
func count(t *testing.T, s *server, query string) int {
	t.Helper()
	sep := "?"
	if strings.Contains(query, "?") {
		sep = "&"
	}
	b := expect(t, s.do("GET", query+sep+"_summary=count", nil), http.StatusOK)
	n, ok := b["total"].(float64)
	if !ok {
		t.Fatalf("%s: no total in %v", query, b)
	}
	return int(n)
}

// versionOf is the current meta.versionId of a resource.
func versionOf(t *testing.T, s *server, path string) string {
	t.Helper()
	b := expect(t, s.do("GET", path, nil), http.StatusOK)
	return str(b["meta"].(map[string]any)["versionId"])
}

// outcomeNames fails unless the reply is a 4xx OperationOutcome with the
// status whose issue names want (in expression or diagnostics).
func outcomeNames(t *testing.T, r reply, status int, want string) {
	t.Helper()
	oo := expectOutcome(t, r, status)
	if !strings.Contains(string(mustJSON(t, oo)), want) {
		t.Errorf("the OperationOutcome does not name %q: %s", want, r.body)
	}
}

func mrnPatient(family, mrn string, extra ...string) string {
	return patient(family, append([]string{`,"identifier":[{"system":"urn:mrn","value":"` + mrn + `"}]`}, extra...)...)
}

func TestConditionalUpdate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		// No match and no id in the body: a create with a server id.
		r := s.do("PUT", "Patient?identifier=urn:mrn|u1", mrnPatient("One", "u1"))
		created := expect(t, r, http.StatusCreated)
		id := str(created["id"])
		if id == "" || !strings.Contains(r.header.Get("Location"), "/Patient/"+id+"/_history/1") {
			t.Fatalf("create: id %q, Location %q", id, r.header.Get("Location"))
		}
		// One match: that resource is updated, with or without its id.
		updated := expect(t, s.do("PUT", "Patient?identifier=urn:mrn|u1", mrnPatient("Uno", "u1")), http.StatusOK)
		if updated["id"] != id || versionOf(t, s, "Patient/"+id) != "2" {
			t.Errorf("update: id %v, want %s at version 2", updated["id"], id)
		}
		expect(t, s.do("PUT", "Patient?identifier=urn:mrn|u1", mrnPatient("Uno", "u1", `,"id":"`+id+`"`)), http.StatusOK)
		// No match with an unused id in the body: created under that id.
		expect(t, s.do("PUT", "Patient?identifier=urn:mrn|u2", mrnPatient("Two", "u2", `,"id":"cu-given"`)), http.StatusCreated)
		if got := ids(t, s, "Patient?identifier=urn:mrn|u2"); !slices.Equal(got, []string{"cu-given"}) {
			t.Errorf("create with the body's id: found %v", got)
		}
		// The condition runs through the search engine: chains work too.
		expect(t, s.do("PUT", "Observation/cu-o1", obs("cu-o1", id, "laboratory", "2339-0", "2024-03-01T10:00:00Z", "final")), http.StatusCreated)
		expect(t, s.do("PUT", "Observation?subject:Patient.identifier=urn:mrn|u1&code=2339-0",
			obs("cu-o1", id, "laboratory", "2339-0", "2024-03-01T10:00:00Z", "amended")), http.StatusOK)
		if got := ids(t, s, "Observation?status=amended"); !slices.Equal(got, []string{"cu-o1"}) {
			t.Errorf("conditional update through a chain: amended %v", got)
		}
		// If-Match holds the matched resource to a version.
		expectOutcome(t, s.do("PUT", "Patient?identifier=urn:mrn|u1", mrnPatient("Stale", "u1"), `If-Match: W/"1"`), http.StatusPreconditionFailed)
		expect(t, s.do("PUT", "Patient?identifier=urn:mrn|u1", mrnPatient("Fresh", "u1"), `If-Match: W/"3"`), http.StatusOK)

		// Refusals write nothing.
		expect(t, s.do("PUT", "Patient/cu-other", mrnPatient("Other", "u3", `,"id":"cu-other"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Patient/cu-twin", mrnPatient("Twin", "dup", `,"id":"cu-twin"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Patient/cu-twin2", mrnPatient("Twin", "dup", `,"id":"cu-twin2"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Patient/cu-dead", mrnPatient("Dead", "dead", `,"id":"cu-dead"`)), http.StatusCreated)
		expect(t, s.do("DELETE", "Patient/cu-dead", nil), http.StatusNoContent)
		before := count(t, s, "Patient")
		versions := map[string]string{}
		for _, p := range []string{id, "cu-given", "cu-other", "cu-twin", "cu-twin2"} {
			versions[p] = versionOf(t, s, "Patient/"+p)
		}
		cases := []struct {
			name, path, body string
			status           int
			names            string
		}{
			{"several matches", "Patient?identifier=urn:mrn|dup", mrnPatient("X", "dup"), 412, "more than one"},
			{"body id differs from the match", "Patient?identifier=urn:mrn|u1", mrnPatient("X", "u1", `,"id":"cu-other"`), 400, "cu-other"},
			{"body id taken by a resource the condition does not match", "Patient?identifier=urn:mrn|none", mrnPatient("X", "none", `,"id":"cu-other"`), 409, "already exists"},
			{"body id of a deleted resource", "Patient?identifier=urn:mrn|none", mrnPatient("X", "none", `,"id":"cu-dead"`), 409, "already exists"},
			{"If-Match without a match", "Patient?identifier=urn:mrn|none", mrnPatient("X", "none"), 412, "If-Match"},
			{"no condition", "Patient", mrnPatient("X", "n1"), 400, "search parameters"},
			{"only response parameters", "Patient?_format=json&_pretty=true", mrnPatient("X", "n1"), 400, "search parameters"},
			{"unknown parameter", "Patient?nonsense=1", mrnPatient("X", "n1"), 400, "nonsense"},
			{"unknown parameter beside a known one", "Patient?identifier=urn:mrn|u1&nonsense=1", mrnPatient("X", "u1"), 400, "nonsense"},
			{"result parameter", "Patient?identifier=urn:mrn|u1&_count=1", mrnPatient("X", "u1"), 400, "_count"},
			{"include", "Patient?identifier=urn:mrn|u1&_include=Patient:organization", mrnPatient("X", "u1"), 400, "_include"},
			{"malformed value", "Patient?birthdate=yesterday", mrnPatient("X", "n1"), 400, "birthdate"},
			{"empty value", "Patient?identifier=", mrnPatient("X", "n1"), 400, "identifier"},
			{"empty id", "Patient?_id=", mrnPatient("X", "n1"), 400, "_id"},
			{"malformed query", "Patient?identifier=%zz", mrnPatient("X", "n1"), 400, "query"},
			{"malformed body", "Patient?identifier=urn:mrn|u1", `{"resourceType":"Patient",`, 400, "structure"},
			{"wrong resourceType", "Patient?identifier=urn:mrn|u1", `{"resourceType":"Observation"}`, 400, "resourceType"},
			{"invalid body id", "Patient?identifier=urn:mrn|n1", mrnPatient("X", "n1", `,"id":"no spaces"`), 400, "id"},
			{"non-string body id", "Patient?identifier=urn:mrn|n1", mrnPatient("X", "n1", `,"id":7`), 400, "id"},
			{"invalid resource", "Patient?identifier=urn:mrn|u1", mrnPatient("X", "u1", `,"maritalStatus":"single"`), 422, "maritalStatus"},
			{"malformed If-Match", "Patient?identifier=urn:mrn|u1", mrnPatient("X", "u1"), 400, "If-Match"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var headers []string
				if strings.HasPrefix(c.name, "If-Match") {
					headers = append(headers, `If-Match: W/"1"`)
				}
				if c.name == "malformed If-Match" {
					headers = []string{"If-Match: soon"}
				}
				outcomeNames(t, s.do("PUT", c.path, c.body, headers...), c.status, c.names)
			})
		}
		if got := count(t, s, "Patient"); got != before {
			t.Errorf("refused updates changed the number of patients: %d, was %d", got, before)
		}
		for p, v := range versions {
			if got := versionOf(t, s, "Patient/"+p); got != v {
				t.Errorf("a refused update changed Patient/%s: version %s, was %s", p, got, v)
			}
		}
	})
}

func TestConditionalDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		for _, p := range []string{"cd1", "cd2", "cd3", "cd4"} {
			mrn := p
			if p == "cd3" || p == "cd4" {
				mrn = "shared"
			}
			expect(t, s.do("PUT", "Patient/"+p, mrnPatient("Del", mrn, `,"id":"`+p+`"`)), http.StatusCreated)
		}
		// No match: nothing deleted, and the answer says so.
		oo := expectOutcome(t, s.do("DELETE", "Patient?identifier=urn:mrn|none", nil), http.StatusOK)
		if !strings.Contains(string(mustJSON(t, oo)), "not-found") {
			t.Errorf("no match: %v", oo)
		}
		// One match: an ordinary delete of it.
		r := s.do("DELETE", "Patient?identifier=urn:mrn|cd1", nil)
		expect(t, r, http.StatusNoContent)
		if r.header.Get("ETag") != `W/"2"` {
			t.Errorf("conditional delete ETag %q", r.header.Get("ETag"))
		}
		expectOutcome(t, s.do("GET", "Patient/cd1", nil), http.StatusGone)
		expectOutcome(t, s.do("DELETE", "Patient?identifier=urn:mrn|cd2", nil, "Prefer: return=OperationOutcome"), http.StatusOK)
		expectOutcome(t, s.do("GET", "Patient/cd2", nil), http.StatusGone)
		// Deleted resources match no more.
		expectOutcome(t, s.do("DELETE", "Patient?identifier=urn:mrn|cd1", nil), http.StatusOK)

		// Refusals delete nothing.
		for _, c := range []struct {
			name, path string
			headers    []string
			status     int
			names      string
		}{
			{"several matches", "Patient?identifier=urn:mrn|shared", nil, 412, "more than one"},
			{"every patient", "Patient?gender=female", nil, 412, "more than one"},
			{"no condition", "Patient", nil, 400, "search parameters"},
			{"only response parameters", "Patient?_format=json", nil, 400, "search parameters"},
			{"unknown parameter", "Patient?identifier=urn:mrn|shared&nonsense=x", nil, 400, "nonsense"},
			{"result parameter", "Patient?identifier=urn:mrn|cd3&_sort=_id", nil, 400, "_sort"},
			{"summary", "Patient?identifier=urn:mrn|cd3&_summary=count", nil, 400, "_summary"},
			{"malformed value", "Patient?birthdate=le-yesterday", nil, 400, "birthdate"},
			{"empty id", "Patient?_id=cd3,", nil, 400, "_id"},
			{"malformed query", "Patient?identifier=%", nil, 400, "query"},
			{"stale If-Match", "Patient?_id=cd3", []string{`If-Match: W/"7"`}, 412, "conflict"},
			{"malformed If-Match", "Patient?_id=cd3", []string{"If-Match: x"}, 400, "If-Match"},
			{"unknown type", "Nonsense?_id=cd3", nil, 404, "Nonsense"},
		} {
			t.Run(c.name, func(t *testing.T) {
				outcomeNames(t, s.do("DELETE", c.path, nil, c.headers...), c.status, c.names)
			})
		}
		if got := ids(t, s, "Patient?_sort=_id"); !slices.Equal(got, []string{"cd3", "cd4"}) {
			t.Errorf("after refused deletes, patients %v, want [cd3 cd4]", got)
		}
	})
}

// bundleStatuses posts a Bundle and returns each entry's response status.
func bundleStatuses(t *testing.T, s *server, bundle string, status int) []string {
	t.Helper()
	b := expect(t, s.do("POST", "", bundle), status)
	if status != http.StatusOK {
		return nil
	}
	var out []string
	for _, e := range b["entry"].([]any) {
		out = append(out, str(e.(map[string]any)["response"].(map[string]any)["status"]))
	}
	return out
}

func TestConditionalWritesInBundles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		for _, p := range []string{"cb1", "cb2", "cb3"} {
			mrn := p
			if p == "cb3" {
				mrn = "cb2"
			}
			expect(t, s.do("PUT", "Patient/"+p, mrnPatient("Bundle", mrn, `,"id":"`+p+`"`)), http.StatusCreated)
		}
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|cb1"},"resource":` + mrnPatient("Updated", "cb1") + `},
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|new1"},"resource":` + mrnPatient("New", "new1") + `},
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|cb2"},"resource":` + mrnPatient("Twin", "cb2") + `},
			{"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|none"}},
			{"request":{"method":"DELETE","url":"Patient?nonsense=1"}},
			{"request":{"method":"DELETE","url":"Patient"}},
			{"request":{"method":"GET","url":"Patient?name=x"}},
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|cb1&_count=2"},"resource":` + mrnPatient("X", "cb1") + `},
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|cb1"},"resource":` + mrnPatient("X", "cb1", `,"id":"cb2"`) + `}
		]}`
		got := bundleStatuses(t, s, batch, http.StatusOK)
		want := []string{"200 OK", "201 Created", "412 Precondition Failed", "200 OK", "400 Bad Request", "400 Bad Request", "400 Bad Request", "400 Bad Request", "400 Bad Request"}
		if !slices.Equal(got, want) {
			t.Errorf("batch statuses\n got %v\nwant %v", got, want)
		}
		if b := expect(t, s.do("GET", "Patient/cb1", nil), http.StatusOK); !strings.Contains(string(mustJSON(t, b)), "Updated") {
			t.Errorf("batch conditional update did not update cb1: %v", b)
		}
		if got := ids(t, s, "Patient?identifier=urn:mrn|new1"); len(got) != 1 {
			t.Errorf("batch conditional create: %v", got)
		}

		// A transaction with a conditional entry that matches several
		// resources fails as a whole.
		failing := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|cb1"}},
			{"request":{"method":"PUT","url":"Patient?identifier=urn:mrn|cb2"},"resource":` + mrnPatient("Twin", "cb2") + `}
		]}`
		outcomeNames(t, s.do("POST", "", failing), http.StatusPreconditionFailed, "Bundle.entry[1]")
		for _, c := range []string{
			`{"request":{"method":"DELETE","url":"Patient?nonsense=1"}}`,
			`{"request":{"method":"DELETE","url":"Patient?"}}`,
			`{"request":{"method":"POST","url":"Patient?identifier=urn:mrn|cb1"},"resource":` + mrnPatient("X", "cb1") + `}`,
			`{"request":{"method":"PUT","url":"Patient/cb1?identifier=urn:mrn|cb1"},"resource":` + mrnPatient("X", "cb1", `,"id":"cb1"`) + `}`,
		} {
			outcomeNames(t, s.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+c+`]}`), http.StatusBadRequest, "Bundle.entry[0]")
		}
		if got := ids(t, s, "Patient?_sort=_id&identifier=urn:mrn|cb1,urn:mrn|cb2"); !slices.Equal(got, []string{"cb1", "cb2", "cb3"}) {
			t.Errorf("failed transactions changed patients: %v", got)
		}
		if !e.transactions {
			return
		}
		ok := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|cb1"}},
			{"request":{"method":"DELETE","url":"Patient?identifier=urn:mrn|gone"}},
			{"fullUrl":"urn:uuid:7c0c6a3e-1f0a-4d3c-9d59-3f1f1f1f1f1f","request":{"method":"PUT","url":"Patient?identifier=urn:mrn|tx1"},"resource":` + mrnPatient("Tx", "tx1") + `},
			{"request":{"method":"PUT","url":"Observation?identifier=urn:obs|tx1"},"resource":{"resourceType":"Observation","identifier":[{"system":"urn:obs","value":"tx1"}],
				"status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:7c0c6a3e-1f0a-4d3c-9d59-3f1f1f1f1f1f"}}}
		]}`
		got = bundleStatuses(t, s, ok, http.StatusOK)
		if want := []string{"204 No Content", "200 OK", "201 Created", "201 Created"}; !slices.Equal(got, want) {
			t.Errorf("transaction statuses %v, want %v", got, want)
		}
		expectOutcome(t, s.do("GET", "Patient/cb1", nil), http.StatusGone)
		pid := ids(t, s, "Patient?identifier=urn:mrn|tx1")
		oid := ids(t, s, "Observation?identifier=urn:obs|tx1")
		if len(pid) != 1 || len(oid) != 1 || !slices.Equal(ids(t, s, "Observation?patient="+pid[0]), oid) {
			t.Errorf("transaction conditional create did not rewrite the reference: patient %v", pid)
		}
	})
}

func TestConditionalCreateInBundles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		expect(t, s.do("PUT", "Patient/ccb1", mrnPatient("Exists", "ccb1", `,"id":"ccb1"`)), http.StatusCreated)
		batch := `{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|ccb1"},"resource":` + mrnPatient("Again", "ccb1") + `},
			{"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|ccb2"},"resource":` + mrnPatient("New", "ccb2") + `},
			{"request":{"method":"POST","url":"Patient","ifNoneExist":"nonsense=1"},"resource":` + mrnPatient("X", "x") + `},
			{"request":{"method":"POST","url":"Patient","ifNoneExist":"_count=1"},"resource":` + mrnPatient("X", "x") + `},
			{"request":{"method":"PUT","url":"Patient/ccb1","ifNoneExist":"identifier=urn:mrn|ccb1"},"resource":` + mrnPatient("X", "ccb1", `,"id":"ccb1"`) + `}
		]}`
		b := expect(t, s.do("POST", "", batch), http.StatusOK)
		var got []string
		for _, en := range b["entry"].([]any) {
			got = append(got, str(en.(map[string]any)["response"].(map[string]any)["status"]))
		}
		if want := []string{"200 OK", "201 Created", "400 Bad Request", "400 Bad Request", "400 Bad Request"}; !slices.Equal(got, want) {
			t.Errorf("batch statuses %v, want %v", got, want)
		}
		if loc := str(b["entry"].([]any)[0].(map[string]any)["response"].(map[string]any)["location"]); loc != "Patient/ccb1/_history/1" {
			t.Errorf("a conditional create that matched answers with location %q", loc)
		}
		if n := count(t, s, "Patient?identifier=urn:mrn|ccb1"); n != 1 {
			t.Errorf("a conditional create in a batch duplicated the patient: %d", n)
		}
		if n := count(t, s, "Patient?identifier=urn:mrn|ccb2"); n != 1 {
			t.Errorf("a conditional create in a batch that matched nothing made %d", n)
		}
		if !e.transactions {
			return
		}
		// References to a conditional create's fullUrl go to the resource it
		// found.
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:0c6a1e2f-7b1d-4f55-9a64-1d2b3c4d5e6f","request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|ccb1"},"resource":` + mrnPatient("Again", "ccb1") + `},
			{"request":{"method":"POST","url":"Observation"},"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
				"subject":{"reference":"urn:uuid:0c6a1e2f-7b1d-4f55-9a64-1d2b3c4d5e6f"}}}
		]}`
		expect(t, s.do("POST", "", tx), http.StatusOK)
		if got := count(t, s, "Observation?subject=Patient/ccb1"); got != 1 {
			t.Errorf("the observation does not point at the patient the conditional create found: %d", got)
		}
		if n := count(t, s, "Patient?identifier=urn:mrn|ccb1"); n != 1 {
			t.Errorf("a conditional create in a transaction duplicated the patient: %d", n)
		}
	})
}

func TestConditionalCreateRefusesBroadConditions(t *testing.T) {
	s := start(t, "")
	for _, c := range []struct{ header, names string }{
		{"If-None-Exist: _format=json", "search parameters"},
		{"If-None-Exist: identifier=urn:mrn|1&_sort=_id", "_sort"},
		{"If-None-Exist: identifier=%zz", "query"},
	} {
		outcomeNames(t, s.do("POST", "Patient", mrnPatient("X", "1"), c.header), http.StatusBadRequest, c.names)
	}
	if n := count(t, s, "Patient"); n != 0 {
		t.Errorf("refused conditional creates made %d patients", n)
	}
}

func TestCapabilityStatementListsConditionalInteractions(t *testing.T) {
	s := start(t, "")
	cs := expect(t, s.do("GET", "metadata", nil), http.StatusOK)
	for _, r := range cs["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
		r := r.(map[string]any)
		if r["conditionalCreate"] != true || r["conditionalUpdate"] != true || r["conditionalDelete"] != "single" {
			t.Fatalf("%s: conditionalCreate %v, conditionalUpdate %v, conditionalDelete %v", r["type"], r["conditionalCreate"], r["conditionalUpdate"], r["conditionalDelete"])
		}
	}
}

package test

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// searchFixtures are small resources whose search results are known by
// construction.
var searchFixtures = []string{
	`{"resourceType":"Patient","id":"sp1","identifier":[{"system":"urn:mrn","value":"m1"}],"name":[{"family":"Renée","given":["Ada"]}],"gender":"female","birthDate":"1970-03-04"}`,
	`{"resourceType":"Patient","id":"sp2","identifier":[{"system":"urn:mrn","value":"m2"}],"name":[{"family":"Rennet","given":["Bob"]}],"gender":"male","birthDate":"1980"}`,
	`{"resourceType":"Patient","id":"sp3","name":[{"family":"Smith"}],"gender":"female"}`,
	obs("so1", "sp1", "laboratory", "2339-0", "2024-03-01T10:00:00Z", "final"),
	obs("so2", "sp1", "vital-signs", "8867-4", "2024-03-05T10:00:00Z", "final"),
	obs("so3", "sp1", "laboratory", "718-7", "2023-12-31T23:00:00Z", "amended"),
	obs("so4", "sp2", "laboratory", "2339-0", "2024-03-01T12:00:00Z", "final"),
	`{"resourceType":"MedicationRequest","id":"smr1","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/sp1"}}`,
	`{"resourceType":"MedicationRequest","id":"smr2","status":"active","intent":"plan","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/sp1"}}`,
	`{"resourceType":"MedicationRequest","id":"smr3","status":"active","intent":"proposal","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/sp1"}}`,
	`{"resourceType":"Medication","id":"sm1","code":{"text":"oxaliplatin"}}`,
	`{"resourceType":"MedicationRequest","id":"smr4","status":"active","intent":"order","medicationReference":{"reference":"Medication/sm1"},"subject":{"reference":"Patient/sp2"}}`,
	`{"resourceType":"Provenance","id":"sprov1","target":[{"reference":"Observation/so1"}],"recorded":"2024-03-01T10:00:00Z","agent":[{"who":{"display":"Dr A"}}]}`,
	`{"resourceType":"Condition","id":"sc1","subject":{"reference":"Patient/sp2"},"code":{"text":"x"},"onsetDateTime":"2020-05"}`,
}

func obs(id, patient, category, code, when, status string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":%q,
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":%q}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q}`,
		id, status, category, code, patient, when)
}

func loadFixtures(t *testing.T, s *server) {
	t.Helper()
	for _, f := range searchFixtures {
		typ := strings.Split(strings.Split(f, `"resourceType":"`)[1], `"`)[0]
		id := strings.Split(strings.Split(f, `"id":"`)[1], `"`)[0]
		expect(t, s.do("PUT", typ+"/"+id, f), http.StatusCreated)
	}
}

// ids runs a search and returns the ids of its match entries, following
// next links, in order.
func ids(t *testing.T, s *server, query string) []string {
	t.Helper()
	var out []string
	next := query
	for pages := 0; next != "" && pages < 50; pages++ {
		b := expect(t, s.do("GET", next, nil), http.StatusOK)
		if b["type"] != "searchset" {
			t.Fatalf("bundle type %v", b["type"])
		}
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			e := e.(map[string]any)
			if e["search"].(map[string]any)["mode"] == "match" {
				out = append(out, e["resource"].(map[string]any)["id"].(string))
			}
		}
		next = ""
		for _, l := range b["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = str(l.(map[string]any)["url"])
			}
		}
	}
	return out
}

func TestSearchFindsExactlyTheMatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		cases := []struct {
			query string
			want  []string
		}{
			{"Observation?patient=sp1", []string{"so1", "so2", "so3"}},
			{"Observation?patient=Patient/sp1", []string{"so1", "so2", "so3"}},
			{"Observation?patient=sp1&category=laboratory", []string{"so1", "so3"}},
			{"Observation?patient=sp1&category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", []string{"so1", "so3"}},
			{"Observation?patient=sp1&code=http://loinc.org|2339-0", []string{"so1"}},
			{"Observation?code=2339-0", []string{"so1", "so4"}},
			{"Observation?patient=sp1&category=laboratory&date=ge2024-01-01", []string{"so1"}},
			{"Observation?patient=sp1&date=2024-03", []string{"so1", "so2"}},
			{"Observation?patient=sp1&date=lt2024", []string{"so3"}},
			{"Observation?patient=sp1&status=final,amended", []string{"so1", "so2", "so3"}},
			{"Observation?patient=sp1&status:not=final", []string{"so3"}},
			{"Observation?subject:Patient.name=rennet", []string{"so4"}},
			{"MedicationRequest?patient=sp1&intent=order,plan", []string{"smr1", "smr2"}},
			{"Condition?patient=sp2", []string{"sc1"}},
			{"Patient?name=ren", []string{"sp1", "sp2"}},
			{"Patient?family=renee", []string{"sp1"}},
			{"Patient?family:exact=Renée", []string{"sp1"}},
			{"Patient?family:exact=renee", nil},
			{"Patient?identifier=urn:mrn|m2", []string{"sp2"}},
			{"Patient?gender=female&name=smi", []string{"sp3"}},
			{"Patient?birthdate=1980-06-01", nil},
			{"Patient?birthdate=1980", []string{"sp2"}},
			{"Patient?birthdate=ge1975", []string{"sp2"}},
			{"Patient?birthdate:missing=true", []string{"sp3"}},
			{"Patient?_id=sp1,sp3", []string{"sp1", "sp3"}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				got := ids(t, s, c.query)
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Errorf("got %v, want %v", got, c.want)
				}
			})
		}
	})
}

func TestSearchPagingAndCounts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		all := ids(t, s, "Observation?_count=1")
		slices.Sort(all)
		if !slices.Equal(all, []string{"so1", "so2", "so3", "so4"}) {
			t.Errorf("paging with _count=1 gave %v", all)
		}
		b := expect(t, s.do("GET", "Observation?patient=sp1&_summary=count", nil), http.StatusOK)
		if b["total"] != 3.0 || b["entry"] != nil {
			t.Errorf("_summary=count: total %v entries %v", b["total"], b["entry"])
		}
		b = expect(t, s.do("GET", "Observation?patient=sp1&_total=accurate", nil), http.StatusOK)
		if b["total"] != 3.0 {
			t.Errorf("_total=accurate: %v", b["total"])
		}
		form := url.Values{"patient": {"sp1"}, "category": {"laboratory"}}
		r := s.do("POST", "Observation/_search", form.Encode(), "Content-Type: application/x-www-form-urlencoded")
		post := expect(t, r, http.StatusOK)
		if n := len(post["entry"].([]any)); n != 2 {
			t.Errorf("POST _search found %d, want 2", n)
		}
	})
}

func TestSearchErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		for _, q := range []string{"Observation?date=yesterday", "Observation?code:nonsense=1", "Observation?_count=5001",
			"Observation?_sort=nope", "Observation?patient=Practitioner/1", "Observation?_cursor=garbage"} {
			oo := expectOutcome(t, s.do("GET", q, nil), http.StatusBadRequest)
			if q != "Observation?_cursor=garbage" && !strings.Contains(string(mustJSON(t, oo)), "expression") {
				t.Errorf("%s: the OperationOutcome does not name the parameter: %v", q, oo)
			}
		}
		b := expect(t, s.do("GET", "Patient?foo=bar&gender=male", nil), http.StatusOK)
		var modes []string
		for _, e := range b["entry"].([]any) {
			modes = append(modes, e.(map[string]any)["search"].(map[string]any)["mode"].(string))
		}
		if !slices.Equal(modes, []string{"match", "outcome"}) {
			t.Errorf("unknown parameter: entry modes %v", modes)
		}
		if self := str(b["link"].([]any)[0].(map[string]any)["url"]); strings.Contains(self, "foo") {
			t.Errorf("self link shows an ignored parameter: %s", self)
		}
		expectOutcome(t, s.do("GET", "Patient?foo=bar", nil, "Prefer: handling=strict"), http.StatusBadRequest)
	})
}

func TestSearchSort(t *testing.T) {
	s := start(t, "")
	loadFixtures(t, s)
	cases := map[string][]string{
		"Observation?patient=sp1&_sort=-date":         {"so2", "so1", "so3"},
		"Observation?patient=sp1&_sort=date":          {"so3", "so1", "so2"},
		"Patient?_sort=family,_id":                    {"sp1", "sp2", "sp3"},
		"Observation?patient=sp1&_sort=date&_count=1": {"so3", "so1", "so2"},
	}
	for q, want := range cases {
		if got := ids(t, s, q); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
	// Versions written within one millisecond tie on _lastUpdated; a later
	// update is newest.
	time.Sleep(2 * time.Millisecond)
	expect(t, s.do("PUT", "Observation/so2", obs("so2", "sp1", "vital-signs", "8867-4", "2024-03-05T10:00:00Z", "final")), http.StatusOK)
	if got := ids(t, s, "Observation?patient=sp1&_sort=-_lastUpdated"); len(got) != 3 || got[0] != "so2" {
		t.Errorf("_sort=-_lastUpdated: got %v, want so2 first", got)
	}
}

func TestSearchIncludes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		modes := func(query string) map[string]string {
			b := expect(t, s.do("GET", query, nil), http.StatusOK)
			out := map[string]string{}
			for _, e := range b["entry"].([]any) {
				e := e.(map[string]any)
				out[e["resource"].(map[string]any)["id"].(string)] = e["search"].(map[string]any)["mode"].(string)
			}
			return out
		}
		got := modes("MedicationRequest?patient=sp2&_include=MedicationRequest:medication")
		if want := map[string]string{"smr4": "match", "sm1": "include"}; !maps.Equal(got, want) {
			t.Errorf("_include: %v, want %v", got, want)
		}
		got = modes("Observation?patient=sp1&_revinclude=Provenance:target")
		if want := map[string]string{"so1": "match", "so2": "match", "so3": "match", "sprov1": "include"}; !maps.Equal(got, want) {
			t.Errorf("_revinclude: %v, want %v", got, want)
		}
		got = modes("Observation?patient=sp2&_revinclude=Provenance:target")
		if want := map[string]string{"so4": "match"}; !maps.Equal(got, want) {
			t.Errorf("_revinclude of unrelated matches: %v, want %v", got, want)
		}
		for _, q := range []string{"Observation?_include=Observation:nonsense", "Observation?_include=Patient:organization",
			"Observation?_revinclude=Provenance", "Observation?_include=Observation:subject:Organization"} {
			expectOutcome(t, s.do("GET", q, nil), http.StatusBadRequest)
		}
	})
}

func TestConditionalCreate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		body := patient("Cond", `,"identifier":[{"system":"urn:mrn","value":"c1"}]`)
		first := s.do("POST", "Patient", body, "If-None-Exist: identifier=urn:mrn|c1")
		created := expect(t, first, http.StatusCreated)
		again := expect(t, s.do("POST", "Patient", body, "If-None-Exist: identifier=urn:mrn|c1"), http.StatusOK)
		if again["id"] != created["id"] {
			t.Errorf("second conditional create made %v, want the existing %v", again["id"], created["id"])
		}
		expect(t, s.do("POST", "Patient", patient("Cond2", `,"identifier":[{"system":"urn:mrn","value":"c1"}]`)), http.StatusCreated)
		expectOutcome(t, s.do("POST", "Patient", body, "If-None-Exist: identifier=urn:mrn|c1"), http.StatusPreconditionFailed)
	})
}

func TestSearchTimeLimit(t *testing.T) {
	s := start(t, "", "--search-timeout", "1ns")
	loadFixtures(t, s)
	oo := expectOutcome(t, s.do("GET", "Patient?name=ren", nil), http.StatusServiceUnavailable)
	if !strings.Contains(string(mustJSON(t, oo)), "too-costly") {
		t.Errorf("timeout outcome: %v", oo)
	}
	expect(t, s.do("GET", "Patient/sp1", nil), http.StatusOK)
}

func TestSearchReverseChain(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		cases := map[string][]string{
			"Patient?_has:Observation:patient:code=2339-0":             {"sp1", "sp2"},
			"Patient?_has:Observation:patient:code=718-7":              {"sp1"},
			"Patient?_has:Observation:patient:category=vital-signs":    {"sp1"},
			"Patient?_has:Condition:patient:onset-date=2020":           {"sp2"},
			"Patient?_has:Observation:patient:code=nothing":            nil,
			"Patient?gender=male&_has:Observation:patient:code=2339-0": {"sp2"},
		}
		for q, want := range cases {
			got := ids(t, s, q)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", q, got, want)
			}
		}
		for _, q := range []string{"Patient?_has:Observation:code:status=final", "Patient?_has:Observation=x", "Patient?_has:Observation:patient:nonsense=1"} {
			expectOutcome(t, s.do("GET", q, nil), http.StatusBadRequest)
		}
	})
}

func TestCompartmentSearch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		cases := map[string][]string{
			"Patient/sp1/Observation":                     {"so1", "so2", "so3"},
			"Patient/sp1/Observation?category=laboratory": {"so1", "so3"},
			"Patient/sp2/Observation":                     {"so4"},
			"Patient/sp2/MedicationRequest":               {"smr4"},
			"Patient/sp3/Observation":                     nil,
			"Patient/sp1/Practitioner":                    nil,
		}
		for q, want := range cases {
			got := ids(t, s, q)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", q, got, want)
			}
		}
		expectOutcome(t, s.do("GET", "Observation/so1/Patient", nil), http.StatusNotFound)
		expectOutcome(t, s.do("GET", "Patient/sp1/Nonsense", nil), http.StatusNotFound)
		expectOutcome(t, s.do("GET", "Patient/sp1/Observation?date=bad", nil), http.StatusBadRequest)
	})
}

func TestSearchLinksAreReadable(t *testing.T) {
	s := start(t, "")
	loadFixtures(t, s)
	r := s.do("GET", "Observation?patient=sp1&_count=1", nil)
	if strings.Contains(string(r.body), `\u0026`) || !strings.Contains(string(r.body), "&") {
		t.Errorf("links should carry a plain &: %s", r.body)
	}
}

// TestSearchLinksAreTamperEvident: a next link works as given, also after a
// restart, and is refused once edited.
func TestSearchLinksAreTamperEvident(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		loadFixtures(t, s)
		b := expect(t, s.do("GET", "Observation?patient=sp1&_count=1", nil), http.StatusOK)
		var next string
		for _, l := range b["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = str(l.(map[string]any)["url"])
			}
		}
		u, err := url.Parse(next)
		if err != nil || u.Query().Get("_cursor") == "" {
			t.Fatalf("next link %q", next)
		}
		path := "Observation?" + u.RawQuery
		expect(t, s.do("GET", path, nil), http.StatusOK)

		q := u.Query()
		c := q.Get("_cursor")
		tampered := []string{c[:len(c)-1] + string(rune('A'+(c[len(c)-1]+1)%26)), "x" + c, c[:strings.LastIndexByte(c, '.')]}
		for _, bad := range tampered {
			q.Set("_cursor", bad)
			expectOutcome(t, s.do("GET", "Observation?"+q.Encode(), nil), http.StatusBadRequest)
		}
		if e.name == "sqlite" {
			s.stop()
			s2 := e.start(t, dir)
			expect(t, s2.do("GET", path, nil), http.StatusOK)
		}
	})
}

// includeModes runs a search and returns each entry's id (or "outcome")
// with its search mode.
func includeModes(t *testing.T, s *server, query string) map[string]string {
	t.Helper()
	_, modes := entryResources(t, expect(t, s.do("GET", query, nil), http.StatusOK))
	return modes
}

func TestSearchIncludeIterateAndWildcards(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		// A chain of patients, each linked to the next: pl0 → pl1 → … → pl5.
		for i := range 6 {
			link := ""
			if i < 5 {
				link = fmt.Sprintf(`,"link":[{"other":{"reference":"Patient/pl%d"},"type":"seealso"}]`, i+1)
			}
			expect(t, s.do("PUT", fmt.Sprintf("Patient/pl%d", i), patient("Link", fmt.Sprintf(`,"id":"pl%d"`, i), link)), http.StatusCreated)
		}
		// A reference to no resource type includes nothing (and fails nothing).
		expect(t, s.do("PUT", "Observation/sbad", `{"resourceType":"Observation","id":"sbad","status":"final","code":{"text":"x"},"subject":{"reference":"Foo/1"},"focus":[{"reference":"Patient/nobody"}]}`), http.StatusCreated)
		m, inc := "match", "include"
		cases := []struct {
			query string
			want  map[string]string
		}{
			{"MedicationRequest?_id=smr4&_include=*", map[string]string{"smr4": m, "sm1": inc, "sp2": inc}},
			{"MedicationRequest?_id=smr4&_include=MedicationRequest:*", map[string]string{"smr4": m, "sm1": inc, "sp2": inc}},
			{"Provenance?_id=sprov1&_include=Provenance:target", map[string]string{"sprov1": m, "so1": inc}},
			{"Provenance?_id=sprov1&_include=Provenance:target&_include:iterate=Observation:subject", map[string]string{"sprov1": m, "so1": inc, "sp1": inc}},
			{"Provenance?_id=sprov1&_include=Provenance:target&_include:recurse=Observation:patient", map[string]string{"sprov1": m, "so1": inc, "sp1": inc}},
			{"Provenance?_id=sprov1&_include:iterate=*", map[string]string{"sprov1": m, "so1": inc, "sp1": inc}},
			{"Patient?_id=sp1&_revinclude=Observation:patient", map[string]string{"sp1": m, "so1": inc, "so2": inc, "so3": inc}},
			{"Patient?_id=sp1&_revinclude=Observation:patient&_revinclude:iterate=Provenance:target",
				map[string]string{"sp1": m, "so1": inc, "so2": inc, "so3": inc, "sprov1": inc}},
			{"Observation?_id=so1&_revinclude=*", map[string]string{"so1": m, "sprov1": inc}},
			{"Patient?_id=sp2&_revinclude=*", map[string]string{"sp2": m, "so4": inc, "smr4": inc, "sc1": inc}},
			{"Patient?_id=sp2&_revinclude=MedicationRequest:*", map[string]string{"sp2": m, "smr4": inc}},
			// Mixed directions: what points at sp2, then what that points at.
			{"Patient?_id=sp2&_revinclude=MedicationRequest:patient&_include:iterate=MedicationRequest:medication",
				map[string]string{"sp2": m, "smr4": inc, "sm1": inc}},
			// Iteration ends where the references do …
			{"Patient?_id=pl2&_include:iterate=Patient:link", map[string]string{"pl2": m, "pl3": inc, "pl4": inc, "pl5": inc}},
			// … or after three rounds beyond the first, saying so.
			{"Patient?_id=pl0&_include:iterate=Patient:link", map[string]string{"pl0": m, "pl1": inc, "pl2": inc, "pl3": inc, "pl4": inc, "outcome": "outcome"}},
			{"Observation?_id=sbad&_include=*", map[string]string{"sbad": m}},
			// A match is never included again.
			{"Patient?_id=pl0,pl1&_include=Patient:link", map[string]string{"pl0": m, "pl1": m, "pl2": inc}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				if got := includeModes(t, s, c.query); !maps.Equal(got, c.want) {
					t.Errorf("got %v, want %v", got, c.want)
				}
			})
		}
		for _, q := range []string{
			"Provenance?_include=Provenance:target&_include=Observation:subject", // not from Provenance, not :iterate
			"Observation?_include:deep=Observation:subject",
			"Observation?_include=Observation:*:Patient",
			"Observation?_include=Nonsense:*",
			"Observation?_revinclude=Encounter:patient",
			"Observation?_revinclude:x=*",
		} {
			t.Run(q, func(t *testing.T) {
				outcomeNames(t, s.do("GET", q, nil), http.StatusBadRequest, "_")
			})
		}
	})
}

// TestSearchIncludesAreCapped: a page includes at most 1000 resources and
// says when it left some out.
func TestSearchIncludesAreCapped(t *testing.T) {
	s := start(t, "")
	var entries []string
	entries = append(entries, `{"request":{"method":"PUT","url":"Patient/capp"},"resource":`+patient("Cap", `,"id":"capp"`)+`}`)
	for i := range 1001 {
		entries = append(entries, `{"request":{"method":"POST","url":"Observation"},"resource":`+
			obs(fmt.Sprintf("x%d", i), "capp", "laboratory", "2339-0", "2024-03-01T10:00:00Z", "final")+`}`)
	}
	expect(t, s.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+strings.Join(entries, ",")+`]}`), http.StatusOK)
	modes := includeModes(t, s, "Patient?_id=capp&_revinclude=Observation:patient")
	counts := map[string]int{}
	for _, mode := range modes {
		counts[mode]++
	}
	if want := map[string]int{"match": 1, "include": 1000, "outcome": 1}; !maps.Equal(counts, want) {
		t.Errorf("entry modes %v, want %v", counts, want)
	}
	modes = includeModes(t, s, "Patient?_id=capp&_revinclude=Observation:patient&_count=1&_summary=true")
	if modes["outcome"] != "outcome" {
		t.Errorf("no outcome entry for the cut includes")
	}
}

// links returns a searchset's links by relation.
func links(b map[string]any) map[string]string {
	out := map[string]string{}
	for _, l := range b["link"].([]any) {
		out[str(l.(map[string]any)["relation"])] = str(l.(map[string]any)["url"])
	}
	return out
}

// TestSearchPreviousLinks: every page after the first links back to the
// page before it, as tamper-evident as the next link.
func TestSearchPreviousLinks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		loadFixtures(t, s)
		matchIDs := func(b map[string]any) []string {
			got, modes := entryResources(t, b)
			var out []string
			for id := range got {
				if modes[id] == "match" {
					out = append(out, id)
				}
			}
			return out
		}
		first := expect(t, s.do("GET", "Observation?_sort=_id&_count=2", nil), http.StatusOK)
		if l := links(first); l["previous"] != "" || l["next"] == "" {
			t.Fatalf("first page links %v", l)
		}
		second := expect(t, s.do("GET", links(first)["next"], nil), http.StatusOK)
		if got := matchIDs(second); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"so3", "so4"}) {
			t.Errorf("second page %v", got)
		}
		prev := links(second)["previous"]
		if prev == "" {
			t.Fatalf("the second page has no previous link: %v", links(second))
		}
		back := expect(t, s.do("GET", prev, nil), http.StatusOK)
		if got := matchIDs(back); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"so1", "so2"}) {
			t.Errorf("previous of the second page gave %v, want [so1 so2]", got)
		}
		u, _ := url.Parse(prev)
		q := u.Query()
		c := q.Get("_cursor")
		q.Set("_cursor", "x"+c)
		expectOutcome(t, s.do("GET", "Observation?"+q.Encode(), nil), http.StatusBadRequest)
	})
}

// TestAbsoluteReferencesToThisServer: a reference written as an absolute
// URL under the server's base finds, and is found by, the resource it names
// like a relative one does, whether written over the API or imported with
// the server's --base-url.
func TestAbsoluteReferencesToThisServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		local := s.base + "/Patient/abp"
		expect(t, s.do("PUT", "Patient/abp", patient("Absolute", `,"id":"abp"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Observation/ab1", `{"resourceType":"Observation","id":"ab1","status":"final","code":{"text":"x"},"subject":{"reference":"`+local+`"}}`), http.StatusCreated)
		expect(t, s.do("PUT", "Observation/ab3", `{"resourceType":"Observation","id":"ab3","status":"final","code":{"text":"x"},"subject":{"reference":"https://elsewhere.example.org/fhir/Patient/abp"}}`), http.StatusCreated)
		file := filepath.Join(t.TempDir(), "obs.ndjson")
		imported := `{"resourceType":"Observation","id":"ab2","status":"final","code":{"text":"x"},"subject":{"reference":"` + local + `/_history/1"}}` + "\n"
		if err := os.WriteFile(file, []byte(imported), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := e.cli(t, dir, "import", "--base-url", s.root, "--log-level", "error", file); err != nil {
			t.Fatalf("import: %v\n%s", err, out)
		}
		for _, q := range []string{"Observation?patient=abp", "Observation?subject=Patient/abp", "Observation?subject=" + local, "Patient/abp/Observation"} {
			if got := ids(t, s, q); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"ab1", "ab2"}) {
				t.Errorf("%s = %v, want ab1 and ab2 (not ab3, on another server)", q, got)
			}
		}
		b := expect(t, s.do("GET", "Observation?_id=ab1&_include=Observation:subject", nil), http.StatusOK)
		if n := len(b["entry"].([]any)); n != 2 {
			t.Errorf("_include through an absolute reference: %d entries, want 2", n)
		}
	})
}

// TestSearchQuantities: a quantity searched without a unit matches any
// unit; with one, only that unit (and system, when given).
func TestSearchQuantities(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		for id, q := range map[string]string{
			"q1": `{"value":5,"system":"http://unitsofmeasure.org","code":"mg/dL"}`,
			"q2": `{"value":7.5,"system":"http://unitsofmeasure.org","code":"mmol/L"}`,
			"q3": `{"value":5,"unit":"tablets"}`,
		} {
			expect(t, s.do("PUT", "Observation/"+id, `{"resourceType":"Observation","id":"`+id+`","status":"final","code":{"text":"x"},"valueQuantity":`+q+`}`), http.StatusCreated)
		}
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"value-quantity=5", []string{"q1", "q3"}},
			{"value-quantity=gt5", []string{"q2"}},
			{"value-quantity=ge5", []string{"q1", "q2", "q3"}},
			{"value-quantity=7.5||mmol/L", []string{"q2"}},
			{"value-quantity=5|http://unitsofmeasure.org|mg/dL", []string{"q1"}},
			{"value-quantity=5||mmol/L", nil},
			{"value-quantity=lt10|http://unitsofmeasure.org|mmol/L", []string{"q2"}},
		} {
			got := ids(t, s, "Observation?"+c.query)
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s = %v, want %v", c.query, got, c.want)
			}
		}
	})
}

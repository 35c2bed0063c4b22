package test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// at walks a GraphQL answer: at(data, "Encounter", "partOf", "resource").
func at(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func TestGraphQLReferencesAndReverseListsKeepToTheToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		p1 := w.systemToken("system/*.cruds", "PRAC1")
		expect(t, p1.do("PUT", "Encounter/ea3", encounter("ea3", "pa", "finished", "nowhere")), http.StatusCreated)

		// A reference into another practice reads as one to nothing.
		doctor := w.practitionerToken("user/*.rs", "PRAC1")
		g := gql(t, doctor, `{ a: Encounter(id: "ea2") { partOf { reference resource { id } } subject { resource { ... on Patient { id } } } }
			b: Encounter(id: "ea3") { partOf { resource { id } } } }`)
		if at(g.Data, "a", "partOf", "resource") != nil || at(g.Data, "b", "partOf", "resource") != nil {
			t.Fatalf("references out of reach resolved: %s", g.raw)
		}
		if got := at(g.Data, "a", "subject", "resource", "id"); got != "pa" {
			t.Errorf("subject of ea2 = %v, want pa: %s", got, g.raw)
		}
		if !reflect.DeepEqual(g.codes(), []string{"NOT_FOUND", "NOT_FOUND"}) {
			t.Fatalf("codes %v: %s", g.codes(), g.raw)
		}
		hide := strings.NewReplacer("Encounter/eb", "X", "Encounter/nowhere", "X")
		if a, b := hide.Replace(g.Errors[0].Message), hide.Replace(g.Errors[1].Message); a != b {
			t.Errorf("messages tell existence apart: %q vs %q", a, b)
		}
		// optional: true turns the error into a plain null.
		if g = gql(t, doctor, `{ Encounter(id: "ea2") { partOf { resource(optional: true) { id } } } }`); len(g.Errors) > 0 || at(g.Data, "Encounter", "partOf", "resource") != nil {
			t.Errorf("optional reference: %s", g.raw)
		}

		// Reverse lists hold what the same token finds over REST, per
		// practice: pa's PRAC2 observation stays out of PRAC1's list.
		nested := `{ PatientList { id ObservationList(_reference: "patient") { id } EncounterList(_reference: "patient") { id } ConditionList(_reference: "subject") { id } } }`
		staff := w.as(w.mint("--user-kind", "staff", "--scope", "user/*.rs", "--practice", "PRAC1"))
		for name, tok := range map[string]*server{
			"PRAC1": doctor, "PRAC2": w.practitionerToken("user/*.rs", "PRAC2"), "patient pa": w.patientToken("pa", "patient/*.rs"), "PRAC1 staff": staff,
		} {
			g := gql(t, tok, nested)
			if len(g.Errors) > 0 {
				t.Fatalf("%s: %s", name, g.raw)
			}
			patients, _ := g.Data["PatientList"].([]any)
			if want := restIDs(t, tok, "Patient"); !reflect.DeepEqual(listIDs(patients), want) {
				t.Errorf("%s: patients %v, REST %v", name, listIDs(patients), want)
			}
			for _, p := range patients {
				id := str(at(p, "id"))
				for field, rest := range map[string]string{"ObservationList": "Observation?patient=", "EncounterList": "Encounter?patient=", "ConditionList": "Condition?subject=Patient/"} {
					if got, want := listIDs(at(p, field)), restIDs(t, tok, rest+id); !reflect.DeepEqual(got, want) {
						t.Errorf("%s: %s of %s = %v, REST %v", name, field, id, got, want)
					}
				}
			}
			if strings.HasPrefix(name, "PRAC1") && (len(patients) != 1 || !slices.Equal(listIDs(at(patients[0], "ObservationList")), []string{"oa-lab", "oa-vital"})) {
				t.Errorf("%s sees patients %v and observations %v of the first", name, listIDs(patients), listIDs(at(patients[0], "ObservationList")))
			}
		}

		// Staff read across their practice's patients and never write.
		expectOutcome(t, staff.do("PUT", "Patient/pa", patient("Alpha", `,"id":"pa"`)), http.StatusForbidden)

		// A patient's token does not follow references to another patient.
		pa := w.patientToken("pa", "patient/*.rs")
		g = gql(t, pa, `{ Encounter(id: "ea2") { partOf { resource { id } } } }`)
		if at(g.Data, "Encounter", "partOf", "resource") != nil || !reflect.DeepEqual(g.codes(), []string{"NOT_FOUND"}) {
			t.Errorf("patient followed a reference to another patient: %s", g.raw)
		}
		// Nor reaches types its scopes leave out, through a reference or a
		// reverse list.
		obsOnly := w.patientToken("pa", "patient/Observation.rs")
		g = gql(t, obsOnly, `{ Observation(id: "oa-lab") { id subject { resource { ... on Patient { id } } } } }`)
		if at(g.Data, "Observation", "id") != "oa-lab" || at(g.Data, "Observation", "subject", "resource") != nil || !reflect.DeepEqual(g.codes(), []string{"FORBIDDEN"}) {
			t.Errorf("reference to a type out of scope: %s", g.raw)
		}
		patientOnly := w.patientToken("pa", "patient/Patient.rs")
		g = gql(t, patientOnly, `{ Patient(id: "pa") { id ObservationList(_reference: "patient") { id } } }`)
		if at(g.Data, "Patient", "id") != "pa" || at(g.Data, "Patient", "ObservationList") != nil || !reflect.DeepEqual(g.codes(), []string{"FORBIDDEN"}) {
			t.Errorf("reverse list of a type out of scope: %s", g.raw)
		}
	})
}

func TestGraphQLConnectionsPageWithSignedCursors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, t.TempDir())
		var want []string
		for i := range 7 {
			id := fmt.Sprintf("c%d", i)
			expect(t, s.do("PUT", "Patient/"+id, patient("Conn", `,"id":"`+id+`"`)), http.StatusCreated)
			want = append(want, id)
		}
		var got []string
		var pages []map[string]any
		cursor := ""
		for range 10 {
			args := `family: "Conn", _count: 3`
			if cursor != "" {
				args += `, _cursor: ` + strconv.Quote(cursor)
			}
			g := gql(t, s, `{ PatientConnection(`+args+`) { count pagesize first previous next edges { mode resource { id } } } }`)
			if len(g.Errors) > 0 {
				t.Fatalf("%s", g.raw)
			}
			c, _ := g.Data["PatientConnection"].(map[string]any)
			pages = append(pages, c)
			if c["count"] != float64(7) || c["pagesize"] != float64(3) || str(c["first"]) == "" {
				t.Fatalf("page: %v", c)
			}
			for _, e := range c["edges"].([]any) {
				if at(e, "mode") != "match" {
					t.Errorf("edge mode %v", at(e, "mode"))
				}
				got = append(got, str(at(e, "resource", "id")))
			}
			if cursor = str(c["next"]); cursor == "" {
				break
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || len(pages) != 3 {
			t.Fatalf("paged %v in %d pages, want %v in 3", got, len(pages), want)
		}
		// previous from the second page and first from any page give the
		// first page again.
		for _, c := range []string{str(pages[1]["previous"]), str(pages[2]["first"])} {
			g := gql(t, s, `{ PatientConnection(family: "Conn", _count: 3, _cursor: `+strconv.Quote(c)+`) { edges { resource { id } } } }`)
			var ids []string
			for _, e := range at(g.Data, "PatientConnection", "edges").([]any) {
				ids = append(ids, str(at(e, "resource", "id")))
			}
			var first []string
			for _, e := range pages[0]["edges"].([]any) {
				first = append(first, str(at(e, "resource", "id")))
			}
			if !slices.Equal(ids, first) {
				t.Errorf("back to %v, want %v", ids, first)
			}
		}
		// A cursor edited by the client is refused.
		next := str(pages[0]["next"])
		g := gql(t, s, `{ PatientConnection(family: "Conn", _count: 3, _cursor: `+strconv.Quote("x"+next)+`) { count } }`)
		if !reflect.DeepEqual(g.codes(), []string{"BAD_USER_INPUT"}) {
			t.Errorf("tampered cursor: %s", g.raw)
		}
	})
}

// storeOps reads the server's count of store operations from /metrics.
func storeOps(t testing.TB, s *server) int {
	t.Helper()
	r := s.do("GET", s.root+"/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d", r.status)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "fhirgraph_store_operation_duration_seconds_count{") {
			continue
		}
		v, err := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		n += v
	}
	return n
}

// The nested dashboard query costs the same number of store queries for
// 10 patients as for 50: references and reverse lists are batched.
func TestGraphQLNestedQueriesBatchStoreQueries(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := range 3 {
		lines = append(lines, practitioner(fmt.Sprintf("dr%d", i)))
	}
	for i := range 50 {
		p := fmt.Sprintf("n%02d", i)
		lines = append(lines, patient("Nested", `,"id":"`+p+`"`))
		for j := range 2 {
			lines = append(lines, `{"resourceType":"Condition","id":"`+p+`-c`+strconv.Itoa(j)+`","subject":{"reference":"Patient/`+p+`"},"code":{"text":"c"}}`)
		}
		for j := range 3 {
			lines = append(lines, aobs(p+"-o"+strconv.Itoa(j), p, "laboratory", "718-7"))
		}
		lines = append(lines, `{"resourceType":"Encounter","id":"`+p+`-e","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/`+p+`"},"participant":[{"individual":{"reference":"Practitioner/dr`+strconv.Itoa(i%3)+`"}}]}`)
	}
	file := filepath.Join(t.TempDir(), "nested.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A long gathering window keeps batches whole on a busy machine.
	s := start(t, dir, "--graphql-batch-wait", "50ms")
	if out, err := cli(t, "import", "--data", dir, "--log-level", "error", "--practice", testPractice, file); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	query := func(n int) string {
		return `{ PatientList(family: "Nested", _count: ` + strconv.Itoa(n) + `) { id
			ConditionList(_reference: "patient") { id code { text } }
			ObservationList(_reference: "patient") { id valueQuantity { value } }
			EncounterList(_reference: "patient") { id participant { individual { resource { ... on Practitioner { id name { family } } } } } } } }`
	}
	cost := map[int]int{}
	for _, n := range []int{10, 50, 10, 50} {
		before := storeOps(t, s)
		g := gql(t, s, query(n))
		cost[n] = storeOps(t, s) - before
		if len(g.Errors) > 0 {
			t.Fatalf("%s", g.raw)
		}
		patients, _ := g.Data["PatientList"].([]any)
		if len(patients) != n {
			t.Fatalf("%d patients, want %d", len(patients), n)
		}
		for _, p := range patients {
			conds, obs, encs := at(p, "ConditionList").([]any), at(p, "ObservationList").([]any), at(p, "EncounterList").([]any)
			if len(conds) != 2 || len(obs) != 3 || len(encs) != 1 {
				t.Fatalf("patient %v: %d conditions, %d observations, %d encounters", at(p, "id"), len(conds), len(obs), len(encs))
			}
			for _, ref := range at(encs[0], "participant").([]any) {
				if dr := str(at(ref, "individual", "resource", "id")); !strings.HasPrefix(dr, "dr") {
					t.Fatalf("practitioner not resolved: %v", ref)
				}
			}
		}
	}
	t.Logf("store operations per request: %v", cost)
	// One query each: the patients, their conditions, observations,
	// encounters, and the practitioners those reference.
	if cost[10] != cost[50] || cost[50] > 5 {
		t.Errorf("store operations: %d for 10 patients, %d for 50; want the same, at most 5", cost[10], cost[50])
	}
}

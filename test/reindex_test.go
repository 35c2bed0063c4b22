package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// reindexSummary is the line reindex ends with.
var reindexSummary = regexp.MustCompile(`reindexed (\d+) resources: (\d+) changed, (\d+) skipped \(updated meanwhile\) in \S+ \(\d+ resources/s\)`)

// runReindex runs `fhirgraph reindex` on the store named dir and returns
// the counts of its summary: resources, changed, skipped.
func runReindex(t *testing.T, e engine, dir string, args ...string) [3]int {
	t.Helper()
	out, err := e.cli(t, dir, "reindex", append([]string{"--log-level", "error"}, args...)...)
	if err != nil {
		t.Fatalf("reindex %v: %v\n%s", args, err, out)
	}
	m := reindexSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("reindex %v printed no summary:\n%s", args, out)
	}
	var n [3]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return n
}

// reindexQueries are searches whose results reindex must leave alone or
// put right: tokens, references, strings, dates, chains and compartments.
var reindexQueries = []string{
	"Observation?code=2339-0",
	"Observation?patient=sp1&category=laboratory",
	"Observation?patient=sp1&date=2024-03",
	"Observation?subject:Patient.name=rennet",
	"Patient/sp1/Observation",
	"Patient?family=renee",
	"Patient?identifier=urn:mrn|m2",
	"MedicationRequest?patient=sp1&intent=order,plan",
	"Condition?patient=sp2",
	"Provenance?target=Observation/so1",
}

func searchAll(t *testing.T, s *server) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, q := range reindexQueries {
		got := ids(t, s, q)
		slices.Sort(got)
		out[q] = got
	}
	return out
}

// TestReindexCommand reindexes a store written by this program, while its
// server runs: nothing changes, every search returns what it did, no
// version is made.
func TestReindexCommand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		loadFixtures(t, s)
		before := searchAll(t, s)
		if got := before["Observation?code=2339-0"]; !slices.Equal(got, []string{"so1", "so4"}) {
			t.Fatalf("fixture search Observation?code=2339-0 = %v", got)
		}
		versions := systemVersions(t, s)

		if n := runReindex(t, e, dir); n != [3]int{len(searchFixtures), 0, 0} {
			t.Errorf("reindex of unchanged data: %v resources/changed/skipped, want %d, 0, 0", n, len(searchFixtures))
		}
		if n := runReindex(t, e, dir, "--type", "Observation", "--type", "Patient,Condition", "--batch", "2"); n != [3]int{8, 0, 0} {
			t.Errorf("reindex --type Observation,Patient,Condition: %v, want 8, 0, 0", n)
		}
		for q, want := range before {
			got := ids(t, s, q)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s after reindex = %v, was %v", q, got, want)
			}
		}
		if got := systemVersions(t, s); got != versions {
			t.Errorf("reindex made versions: %d in history, had %d", got, versions)
		}
	})
}

// TestReindexFixesStaleIndex writes resources through the store API with
// the index values of an "old registry" (Observation codes replaced by a
// stale one, no patient compartments), then runs reindex next to the
// running server: searches find them by what they hold, not by the stale
// values, and compartment search finds them, with no new version.
func TestReindexFixesStaleIndex(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		wantChanged := writeStale(t, e, dir)
		s := e.start(t, dir)
		check := func(when, q string, want ...string) {
			t.Helper()
			got := ids(t, s, q)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s = %v, want %v", when, q, got, want)
			}
		}
		check("stale", "Observation?code=2339-0")
		check("stale", "Observation?code=stale-code", "so1", "so2", "so3", "so4")
		check("stale", "Patient/sp1/Observation")
		lastUpdated := str(expect(t, s.do("GET", "Observation/so1", nil), http.StatusOK)["meta"].(map[string]any)["lastUpdated"])

		for _, bad := range [][]string{{"--type", "Nope"}, {"--type", "Observation,nope"}, {"--bogus"}, {"--batch", "0"}, {"Observation"}} {
			if out, err := e.cli(t, dir, "reindex", bad...); err == nil {
				t.Errorf("reindex %v accepted:\n%s", bad, out)
			}
		}
		check("after refused runs", "Observation?code=stale-code", "so1", "so2", "so3", "so4")

		if n := runReindex(t, e, dir); n != [3]int{len(searchFixtures), wantChanged, 0} {
			t.Errorf("reindex of stale data: %v resources/changed/skipped, want %d, %d, 0", n, len(searchFixtures), wantChanged)
		}
		check("reindexed", "Observation?code=2339-0", "so1", "so4")
		check("reindexed", "Observation?code=stale-code")
		check("reindexed", "Patient/sp1/Observation", "so1", "so2", "so3")
		check("reindexed", "Patient/sp1/MedicationRequest", "smr1", "smr2", "smr3")
		check("reindexed", "Observation?patient=sp1&category=laboratory", "so1", "so3")
		so1 := expect(t, s.do("GET", "Observation/so1", nil), http.StatusOK)["meta"].(map[string]any)
		if so1["versionId"] != "1" || so1["lastUpdated"] != lastUpdated {
			t.Errorf("reindex changed Observation/so1's meta: %v, was version 1 at %s", so1, lastUpdated)
		}
		if got := systemVersions(t, s); got != len(searchFixtures) {
			t.Errorf("history holds %d versions after reindex, want %d", got, len(searchFixtures))
		}
		if n := runReindex(t, e, dir); n != [3]int{len(searchFixtures), 0, 0} {
			t.Errorf("second reindex: %v, want %d, 0, 0", n, len(searchFixtures))
		}
	})
}

// TestReindexWhileServing runs reindex in small batches while the server
// updates a patient over and over: every update succeeds, reindex visits
// every resource once and changes none (the server indexes with the same
// registry), and the patient is found by its last name only.
func TestReindexWhileServing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		if out, err := e.cli(t, dir, "seed", "--patients", "3", "--log-level", "error"); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		s := e.start(t, dir)
		var resources int
		for _, typ := range []string{"Patient", "Observation"} {
			resources += len(ids(t, s, typ+"?_count=1000"))
		}
		p := expect(t, s.do("GET", "Patient/p0001", nil), http.StatusOK)
		const updates = 20
		done := make(chan []string)
		go func() {
			var problems []string
			for i := range updates {
				p["name"] = []any{map[string]any{"family": fmt.Sprintf("Concurrent%02d", i), "given": []any{"Ada"}}}
				body, _ := json.Marshal(p)
				if r := s.do("PUT", "Patient/p0001", body); r.status != http.StatusOK {
					problems = append(problems, fmt.Sprintf("update %d: %d %s", i, r.status, r.body))
				}
			}
			done <- problems
		}()
		n := runReindex(t, e, dir, "--type", "Patient", "--type", "Observation", "--batch", "10")
		if problems := <-done; len(problems) > 0 {
			t.Errorf("updates during reindex failed: %v", problems)
		}
		if n[0] != resources || n[1] != 0 {
			t.Errorf("reindex next to the server: %v resources/changed/skipped, want %d resources, none changed", n, resources)
		}
		last := fmt.Sprintf("Concurrent%02d", updates-1)
		if got := ids(t, s, "Patient?family="+last); !slices.Equal(got, []string{"p0001"}) {
			t.Errorf("Patient?family=%s = %v, want [p0001]", last, got)
		}
		if got := ids(t, s, "Patient?family=Concurrent00"); len(got) != 0 {
			t.Errorf("Patient?family=Concurrent00 = %v, want none (an earlier version's name)", got)
		}
		v := expect(t, s.do("GET", "Patient/p0001", nil), http.StatusOK)["meta"].(map[string]any)["versionId"]
		if v != strconv.Itoa(updates+1) {
			t.Errorf("Patient/p0001 is at version %v after %d updates of version 1", v, updates)
		}
	})
}

// writeStale stores the search fixtures, prepared as the FHIR layer does,
// with the index values of an older registry, and returns how many of them
// differ from what this program derives.
func writeStale(t *testing.T, e engine, dir string) int {
	t.Helper()
	ctx := context.Background()
	var st store.Store
	var err error
	if uri := e.getenv(dir)("MONGODB_URI"); uri != "" {
		st, err = mongo.Open(ctx, uri, mongo.Options{})
	} else {
		st, err = sqlite.Open(dir, sqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var writes []store.Write
	stale := 0
	for _, f := range searchFixtures {
		obj, err := fhirjson.Parse([]byte(f))
		if err != nil {
			t.Fatal(err)
		}
		typ, id := obj.String("resourceType"), obj.String("id")
		w, issues := resource.Prepare(store.OpUpdate, typ, id, obj, "")
		if len(issues) > 0 {
			t.Fatalf("%s/%s: %v", typ, id, issues)
		}
		old := len(w.Compartments) > 0
		w.Compartments = nil
		if typ == "Observation" {
			w.Index = slices.DeleteFunc(w.Index, func(v store.IndexValue) bool { return v.Param == "code" })
			w.Index = append(w.Index, store.IndexValue{Param: "code", Value: "stale-code"})
			old = true
		}
		if old {
			stale++
		}
		writes = append(writes, w)
	}
	_, errs, err := st.ApplyEach(ctx, writes)
	if err := errors.Join(append(errs, err)...); err != nil {
		t.Fatal(err)
	}
	return stale
}

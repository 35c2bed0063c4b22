package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
)

// patientPlan is what a patient's app asks most: one patient's
// Observations of a category, newest first.
func patientPlan(patient string) store.Query {
	return store.Query{
		Type: "Observation",
		Where: []store.Clause{
			{{Param: "patient", Match: store.MatchEqual, Value: "Patient/" + patient}},
			{{Param: "category", Match: store.MatchEqual, Value: "laboratory"}},
		},
		Compartments: []string{"Patient/" + patient},
		Sort:         []store.SortKey{{Param: "date", Desc: true}},
		Count:        20,
	}
}

// queryPlan returns SQLite's plan for a statement, one detail per line.
func queryPlan(t testing.TB, s *Store, text string, args []any) []string {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+text, args...)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, text)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// tableScan matches a plan step that reads a whole table or index of
// search or resources: SQLite names them by alias, and the statements give
// resources the aliases r, o, x, t<n> and search s<n>.
var tableScan = regexp.MustCompile(`^SCAN (r|o|x\d*|t\d+|s\d+|search|resources)\b`)

func TestPatientSearchUsesIndexes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	var writes []store.Write
	for i := range 200 {
		writes = append(writes, benchObservation(i, rng))
	}
	if _, err := s.Apply(context.Background(), writes); err != nil {
		t.Fatal(err)
	}
	q := patientPlan("pat-000001")
	date := "2020-01-01T00:00:00.000Z"
	at := func(back bool) *searchCursor {
		return &searchCursor{Position: cursor.Position{Keys: []*string{&date}, Back: back}, RID: 100}
	}
	for _, tc := range []struct {
		name string
		q    store.Query
		c    *searchCursor
	}{
		{"Page", q, nil},
		{"WithoutCompartment", func() store.Query { q := q; q.Compartments = nil; return q }(), nil},
		{"ByLastUpdated", func() store.Query { q := q; q.Sort = []store.SortKey{{Param: "_lastUpdated", Desc: true}}; return q }(), nil},
		{"PageAfter", q, at(false)},
		{"PageBefore", q, at(true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pageText, pageArgs := pageSQL(&tc.q, tc.c, -1)
			countText, countArgs := countSQL(&tc.q, -1)
			for _, stmt := range []struct {
				text string
				args []any
			}{{pageText, pageArgs}, {countText, countArgs}} {
				plan := queryPlan(t, s, stmt.text, stmt.args)
				t.Logf("%s\n  %s", stmt.text, strings.Join(plan, "\n  "))
				if !slices.ContainsFunc(plan, func(l string) bool { return strings.Contains(l, "USING PRIMARY KEY (pid=? AND value=?)") }) {
					t.Errorf("plan does not start from search's (pid, value) key:\n  %s", strings.Join(plan, "\n  "))
				}
				// The category is checked per candidate by seeking its
				// (pid, value, rid), not by reading every laboratory entry.
				if !slices.ContainsFunc(plan, func(l string) bool { return strings.Contains(l, "USING PRIMARY KEY (pid=? AND value=? AND rid=?)") }) {
					t.Errorf("plan does not check the category by seeking (pid, value, rid):\n  %s", strings.Join(plan, "\n  "))
				}
				for _, l := range plan {
					if tableScan.MatchString(l) {
						t.Errorf("plan scans a table: %q", l)
					}
				}
			}
			page, err := s.Search(context.Background(), tc.q)
			if err != nil || len(page.Resources) == 0 {
				t.Fatalf("Search = %d resources, %v; want the patient's", len(page.Resources), err)
			}
		})
	}
}

// BenchmarkSearchPatient runs patient-scoped plans over 20k Observations
// of 400 patients (50 each, 15 index values each).
//
//	go test -run '^$' -bench SearchPatient -count 5 ./store/sqlite
func BenchmarkSearchPatient(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 20000
	for i := 0; i < n; i += benchBatch {
		writes := make([]store.Write, benchBatch)
		for j := range writes {
			writes[j] = benchObservation(i+j, rng)
		}
		if _, err := s.Apply(context.Background(), writes); err != nil {
			b.Fatal(err)
		}
	}
	plans := map[string]func(p string) store.Query{
		"PatientCategoryByDate": patientPlan,
		"PatientCategoryByLastUpdated": func(p string) store.Query {
			q := patientPlan(p)
			q.Compartments, q.Sort = nil, []store.SortKey{{Param: "_lastUpdated", Desc: true}}
			return q
		},
		"PatientCodeTotal": func(p string) store.Query {
			q := patientPlan(p)
			q.Where = append(q.Where[:1], store.Clause{{Param: "code", Match: store.MatchPrefix, Value: "10"}})
			q.Total = true
			return q
		},
		"PatientDateRange": func(p string) store.Query {
			q := patientPlan(p)
			q.Where = append(q.Where, store.Clause{{Param: "date", Bounds: []store.Bound{{Field: store.High, Op: store.GE, Arg: "2019-01-01T00:00:00.000"}}}})
			return q
		},
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range plans {
			if !yield(k) {
				return
			}
		}
	}) {
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				q := plans[name](fmt.Sprintf("pat-%06d", i%(n/50)))
				i++
				page, err := s.Search(context.Background(), q)
				if err != nil || len(page.Resources) == 0 {
					b.Fatalf("Search = %d resources, %v", len(page.Resources), err)
				}
			}
		})
	}
}

// TestSearchStartsFromTheFewestRows: when two clauses of one kind could
// start a search, the one yielding fewer rows does, whichever comes first
// in the plan; results do not depend on the choice.
func TestSearchStartsFromTheFewestRows(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	ctx := context.Background()
	var writes []store.Write
	for i := range 1500 {
		name := "smith"
		if i%500 == 0 {
			name = "walker"
		}
		writes = append(writes, store.Write{
			Op: store.OpUpdate, Type: "Patient", ID: fmt.Sprintf("p%04d", i),
			Stamp: func(int64, time.Time) ([]byte, error) { return []byte(`{}`), nil },
			Index: []store.IndexValue{{Param: "gender", Value: "male"}, {Param: "name", Value: name}},
		})
	}
	if _, err := s.Apply(ctx, writes); err != nil {
		t.Fatal(err)
	}
	gender := store.Clause{{Param: "gender", Match: store.MatchEqual, Value: "male"}}
	name := store.Clause{{Param: "name", Match: store.MatchPrefix, Value: "wal"}}
	for _, where := range [][]store.Clause{{gender, name}, {name, gender}} {
		q := store.Query{Type: "Patient", Where: where, Count: 10}
		drive, err := s.chooseDriver(ctx, &q)
		if err != nil {
			t.Fatal(err)
		}
		if drive < 0 || q.Where[drive][0].Param != "name" {
			t.Errorf("plan %v starts from clause %d, want the name clause", where, drive)
		}
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range page.Resources {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, []string{"p0000", "p0500", "p1000"}) {
			t.Errorf("found %v", ids)
		}
	}
	// A reference equality needs no probe: one patient bounds it.
	q := store.Query{Type: "Observation", Where: []store.Clause{{{Param: "patient", Match: store.MatchEqual, Value: "Patient/p1"}}, gender}, Count: 10}
	if drive, _ := s.chooseDriver(ctx, &q); drive != -1 {
		t.Errorf("reference equality probed: %d", drive)
	}
}

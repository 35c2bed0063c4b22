package sqlite

import (
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/search/searchtest"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
)

// TestUSCoreShallSearchesUseIndexes compiles every SHALL search and
// required combination of both US Core server CapabilityStatements through
// the same compiler REST uses, and fails if SQLite would read all of search
// or resources for any of them: whichever clause starts the search (the
// kinds' choice, or one a probe picks) and in the probes themselves.
func TestUSCoreShallSearchesUseIndexes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	plans, err := searchtest.ShallPlans()
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) < 40 {
		t.Fatalf("only %d SHALL searches found in the registry", len(plans))
	}
	for _, p := range plans {
		t.Run(p.Name, func(t *testing.T) {
			statements := [][]any{}
			add := func(text string, args []any) { statements = append(statements, append([]any{text}, args...)) }
			add(pageSQL(&p.Query, nil, -1))
			for i, c := range p.Query.Where {
				if driverRank(c) != driveNone {
					add(pageSQL(&p.Query, nil, i))
					add(probeSQL(p.Query.Type, c, probeLimit))
				}
			}
			for _, st := range statements {
				text := st[0].(string)
				for _, l := range queryPlan(t, s, text, st[1:]) {
					if tableScan.MatchString(l) {
						t.Errorf("full scan %q in the plan of %s", l, text)
					}
				}
			}
		})
	}
	t.Logf("%d SHALL searches checked", len(plans))
}

// Paging through a whole type (bulk export, a search with no clause to
// start from) seeks from the cursor in rid order: no sort of the whole
// type for each page (a page before the cursor is read backwards and put
// back in order, which sorts that page alone).
func TestWholeTypePagesSeekByRID(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	q := store.Query{Type: "Observation", Practices: []string{"P1", ""}, Count: 1000}
	for name, c := range map[string]*searchCursor{"first page": nil, "next page": {RID: 5000}, "previous page": {RID: 5000, Position: cursor.Position{Back: true}}} {
		text, args := pageSQL(&q, c, -1)
		plan := queryPlan(t, s, text, args)
		seek := false
		for _, l := range plan {
			if l == "SCAN p" {
				break
			}
			seek = seek || strings.HasPrefix(l, "SEARCH r USING INDEX resources_type (type=?")
			if tableScan.MatchString(l) || strings.Contains(l, "TEMP B-TREE") {
				t.Errorf("%s: %q in the plan %q", name, l, plan)
			}
		}
		if !seek {
			t.Errorf("%s: no seek by type in rid order in the plan %q", name, plan)
		}
	}
}

package sqlite

import (
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/search/searchtest"
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

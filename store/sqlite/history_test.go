package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

// anyScan matches a plan step that reads a whole table or index (not the
// bounded output of a subquery, "SCAN (subquery-1)").
var anyScan = regexp.MustCompile(`^SCAN [^(]`)

// TestFilteredHistoryUsesIndexes: history confined to compartments or
// practices seeks the membership indexes (version_compartments,
// versions_practice) rather than reading every version of the type.
func TestFilteredHistoryUsesIndexes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	var writes []store.Write
	for i := range 200 {
		writes = append(writes, benchObservation(i, rng))
	}
	if _, err := s.Apply(context.Background(), writes); err != nil {
		t.Fatal(err)
	}
	comp := []string{writes[0].Compartments[0]}
	practices := []string{writes[0].Practice, ""}
	for _, tc := range []struct {
		name string
		q    store.HistoryQuery
		// uses is the index the plan must seek.
		uses string
	}{
		{"TypeByCompartment", store.HistoryQuery{Type: "Observation", Compartments: comp}, "c USING PRIMARY KEY"},
		{"TypeByPractice", store.HistoryQuery{Type: "Observation", Practices: practices}, "versions_practice (practice=?"},
		{"TypeByBoth", store.HistoryQuery{Type: "Observation", Compartments: comp, Practices: practices}, "c USING PRIMARY KEY"},
		{"SystemByCompartment", store.HistoryQuery{Compartments: comp}, "c USING PRIMARY KEY"},
		{"SystemByPractice", store.HistoryQuery{Practices: practices}, "versions_practice (practice=?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, args := filteredHistory(tc.q, 0, 1<<62, 0, 51)
			plan := queryPlan(t, s, text, args)
			t.Logf("%s\n  %s", text, strings.Join(plan, "\n  "))
			seeks := false
			for _, l := range plan {
				if anyScan.MatchString(l) {
					t.Errorf("plan scans: %q", l)
				}
				if strings.HasPrefix(l, "SEARCH") && strings.Contains(l, tc.uses) {
					seeks = true
				}
			}
			if !seeks {
				t.Errorf("plan does not seek %s:\n  %s", tc.uses, strings.Join(plan, "\n  "))
			}
			page, err := s.History(context.Background(), tc.q)
			if err != nil || len(page.Versions) == 0 {
				t.Errorf("History = %d versions, %v; want some", len(page.Versions), err)
			}
		})
	}
}

// TestUpgradeFromSchema1 opens a version 1 database (one without version
// membership): each version gets its resource's current membership, and
// filtered history serves it.
func TestUpgradeFromSchema1(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	w := testWrite(store.OpCreate, "Observation", "o1", `{"resourceType":"Observation","id":"o1"}`)
	w.Practice, w.Compartments = "P1", []string{"Patient/p1"}
	d := testWrite(store.OpCreate, "Observation", "o2", `{"resourceType":"Observation","id":"o2"}`)
	d.Practice, d.Compartments = "P1", []string{"Patient/p1"}
	if _, err := s.Apply(ctx, []store.Write{w, d, {Op: store.OpDelete, Type: "Observation", ID: "o2"}}); err != nil {
		t.Fatal(err)
	}
	// Back to version 1's layout.
	for _, stmt := range []string{
		"DROP TABLE version_compartments", "DROP INDEX versions_practice",
		"ALTER TABLE versions DROP COLUMN practice", "PRAGMA user_version = 1",
	} {
		if _, err := s.w.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s.Close()
	s = openTest(t, dir, Options{})
	for _, c := range []struct {
		q    store.HistoryQuery
		want string
	}{
		{store.HistoryQuery{Type: "Observation", Practices: []string{"P1"}}, "o2/2 o2/1 o1/1"},
		// A deleted resource kept no compartments in version 1.
		{store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p1"}}, "o1/1"},
	} {
		page, err := s.History(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range page.Versions {
			got = append(got, fmt.Sprintf("%s/%d", v.ID, v.VersionID))
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("History(%+v) after the upgrade = %v, want %s", c.q, got, c.want)
		}
	}
}

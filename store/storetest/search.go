package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

func runSearch(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Plans", func(t *testing.T) { testSearchPlans(t, open(t)) })
	t.Run("SortByParameters", func(t *testing.T) { testSearchSort(t, open(t)) })
	t.Run("RangesOnSeveralValues", func(t *testing.T) { testSearchRanges(t, open(t)) })
	runAll(t, open, []test{
		{"PagesVisitEveryMatchOnce", testSearchPaging},
		{"PagesBackMatchPagesForward", testSearchPagingBack},
		{"PagesBackUnderInserts", testSearchPagingBackUnderInserts},
		{"SinceAndBefore", testSearchSinceBefore},
		{"InvalidPlansAreErrInvalid", testSearchInvalid},
	})
}

// Index values of the search fixture, as fhir/search extracts them.
const (
	loinc    = "http://loinc.org"
	category = "http://terminology.hl7.org/CodeSystem/observation-category"
)

func token(param, system, code string) store.IndexValue {
	return store.IndexValue{Param: param, Value: code, System: system}
}

func ref(param, target string) store.IndexValue {
	return store.IndexValue{Param: param, Value: target}
}

func str(param, folded, exact string) store.IndexValue {
	return store.IndexValue{Param: param, Value: folded, System: exact}
}

// day is a date index value covering one UTC day.
func day(param, d string) store.IndexValue {
	return store.IndexValue{Param: param, Low: d + "T00:00:00.000Z", High: d + "T23:59:59.999Z"}
}

// fixtureDoc is one resource of the search fixture.
type fixtureDoc struct {
	typ, id      string
	practice     string
	compartments []string
	index        []store.IndexValue
	deleted      bool
}

// searchFixture: three patients and six observations, one of them
// deleted. Ids sort in the order of creation, so that an engine's order of
// creation and its order of ids agree; each range parameter has at most
// one value per resource, so that every engine checks both ends of a
// range against the same value.
var searchFixture = []fixtureDoc{
	{typ: "Patient", id: "p1", compartments: []string{"Patient/p1"}, index: []store.IndexValue{str("name", "smith", "Smith"), token("gender", "", "female")}},
	{typ: "Patient", id: "p2", compartments: []string{"Patient/p2"}, index: []store.IndexValue{str("name", "smythe", "Smythe"), token("gender", "", "male")}},
	{typ: "Patient", id: "p3", compartments: []string{"Patient/p3"}, index: []store.IndexValue{str("name", "jones", "Jones"), token("gender", "", "female")}},
	{typ: "Observation", id: "o1", practice: "pr1", compartments: []string{"Patient/p1"}, index: []store.IndexValue{
		ref("patient", "Patient/p1"), token("category", category, "laboratory"), token("code", loinc, "718-7"),
		day("date", "2024-01-10"), str("note", "hemoglobin high", "Hemoglobin high")}},
	{typ: "Observation", id: "o2", practice: "pr1", compartments: []string{"Patient/p1"}, index: []store.IndexValue{
		ref("patient", "Patient/p1"), token("category", category, "vital-signs"), token("code", loinc, "8867-4"),
		day("date", "2024-02-01"), str("note", "heart rate", "Heart rate")}},
	{typ: "Observation", id: "o3", practice: "pr2", compartments: []string{"Patient/p2"}, index: []store.IndexValue{
		ref("patient", "Patient/p2"), token("category", category, "laboratory"), token("code", "http://other.org", "718-7"),
		day("date", "2024-03-01")}},
	{typ: "Observation", id: "o4", practice: "pr2", compartments: []string{"Patient/p2"}, index: []store.IndexValue{
		ref("patient", "Patient/p2"), token("category", category, "laboratory"), token("code", "", "718-7"),
		day("date", "2023-12-31"), str("note", "hemo", "Hemo")}},
	{typ: "Observation", id: "o5", practice: "pr3", compartments: []string{"Patient/p3"}, index: []store.IndexValue{
		ref("patient", "Patient/p3"), token("category", category, "survey"), token("code", loinc, "1234-5")}},
	{typ: "Observation", id: "o6", practice: "pr1", compartments: []string{"Patient/p1"}, deleted: true, index: []store.IndexValue{
		ref("patient", "Patient/p1"), token("category", category, "laboratory"), token("code", loinc, "718-7"),
		day("date", "2024-01-15"), str("note", "hemolysis", "Hemolysis")}},
}

// writeFixture writes docs one at a time, each stamped after the one
// before, and deletes those marked deleted.
func writeFixture(t *testing.T, s store.Store, docs []fixtureDoc) {
	t.Helper()
	for _, d := range docs {
		w := create(d.typ, d.id, []byte(fmt.Sprintf(`{"resourceType":%q,"id":%q}`, d.typ, d.id)))
		w.Practice, w.Compartments, w.Index = d.practice, d.compartments, d.index
		waitPast(apply(t, s, w)[0].LastUpdated)
	}
	for _, d := range docs {
		if d.deleted {
			apply(t, s, del(d.typ, d.id))
		}
	}
}

func eq(param, value string) store.Predicate {
	return store.Predicate{Param: param, Match: store.MatchEqual, Value: value}
}

func where(clauses ...store.Clause) []store.Clause { return clauses }

func obsQuery(clauses ...store.Clause) store.Query {
	return store.Query{Type: "Observation", Where: clauses, Count: 50}
}

func dateBound(field store.BoundField, op store.CmpOp, arg string) store.Predicate {
	return store.Predicate{Param: "date", Bounds: []store.Bound{{Field: field, Op: op, Arg: arg}}}
}

// searchCase is one plan and the ids it must return, in order.
type searchCase struct {
	name string
	q    store.Query
	want []string
	// total, when not -1, is the Total the page must report.
	total int
}

func searchCases() []searchCase {
	withSystem := eq("code", "718-7")
	withSystem.System, withSystem.HasSystem = loinc, true
	noSystem := eq("code", "718-7")
	noSystem.HasSystem = true
	notLab := eq("category", "laboratory")
	notLab.Not = true
	missingNote := store.Predicate{Param: "note", Missing: true}
	hasNote := store.Predicate{Param: "note", Missing: true, Not: true}
	prefix := func(param, v string) store.Predicate {
		return store.Predicate{Param: param, Match: store.MatchPrefix, Value: v}
	}
	contains := func(param, v string) store.Predicate {
		return store.Predicate{Param: param, Match: store.MatchContains, Value: v}
	}
	overlap := store.Predicate{Param: "date", Bounds: []store.Bound{
		{Field: store.Low, Op: store.LE, Arg: "2024-01-31T23:59:59.999Z"},
		{Field: store.High, Op: store.GE, Arg: "2024-01-01T00:00:00.000Z"}}}
	chain := func(p store.Predicate) store.Predicate {
		return store.Predicate{Param: "patient", Target: &store.Query{Type: "Patient", Where: where(store.Clause{p})}}
	}
	has := func(p store.Predicate, not bool) store.Predicate {
		return store.Predicate{Param: "_has", Not: not, Has: &store.ReverseChain{Param: "patient", Query: &store.Query{Type: "Observation", Where: where(store.Clause{p})}}}
	}
	patients := func(clauses ...store.Clause) store.Query {
		return store.Query{Type: "Patient", Where: clauses, Count: 50}
	}
	with := func(q store.Query, f func(q *store.Query)) store.Query { f(&q); return q }
	sorted := func(param string, desc bool) func(q *store.Query) {
		return func(q *store.Query) { q.Sort = []store.SortKey{{Param: param, Desc: desc}} }
	}

	return []searchCase{
		{name: "EqualityMatchesAnySystem", q: obsQuery(store.Clause{eq("code", "718-7")}), want: []string{"o1", "o3", "o4"}},
		{name: "SystemQualifiedEquality", q: obsQuery(store.Clause{withSystem}), want: []string{"o1"}},
		{name: "EmptySystemMatchesOnlyValuesWithoutOne", q: obsQuery(store.Clause{noSystem}), want: []string{"o4"}},
		{name: "Prefix", q: obsQuery(store.Clause{prefix("note", "hem")}), want: []string{"o1", "o4"}},
		{name: "PrefixOfReference", q: obsQuery(store.Clause{prefix("patient", "Patient/p")}), want: []string{"o1", "o2", "o3", "o4", "o5"}},
		{name: "Contains", q: obsQuery(store.Clause{contains("note", "rate")}), want: []string{"o2"}},
		{name: "ContainsMetacharacters", q: obsQuery(store.Clause{contains("note", "h.*h")}), want: nil},
		{name: "PrefixMetacharacters", q: obsQuery(store.Clause{prefix("code", "7.8")}), want: nil},
		{name: "OrWithinAClause", q: obsQuery(store.Clause{eq("category", "survey"), eq("category", "vital-signs")}), want: []string{"o2", "o5"}},
		{name: "AndAcrossClauses", q: obsQuery(store.Clause{eq("patient", "Patient/p2")}, store.Clause{eq("category", "laboratory")}), want: []string{"o3", "o4"}},
		{name: "PatientAndOrOfCategories", q: obsQuery(store.Clause{eq("patient", "Patient/p1")}, store.Clause{eq("category", "laboratory"), eq("category", "vital-signs")}), want: []string{"o1", "o2"}},
		{name: "Missing", q: obsQuery(store.Clause{missingNote}), want: []string{"o3", "o5"}},
		{name: "NotMissing", q: obsQuery(store.Clause{hasNote}), want: []string{"o1", "o2", "o4"}},
		{name: "MissingAndEquality", q: obsQuery(store.Clause{eq("category", "laboratory")}, store.Clause{missingNote}), want: []string{"o3"}},
		{name: "Not", q: obsQuery(store.Clause{notLab}), want: []string{"o2", "o5"}},
		{name: "DateLessThan", q: obsQuery(store.Clause{dateBound(store.Low, store.LT, "2024-01-01T00:00:00.000Z")}), want: []string{"o4"}},
		{name: "DateGreaterThan", q: obsQuery(store.Clause{dateBound(store.High, store.GT, "2024-02-01T23:59:59.999Z")}), want: []string{"o3"}},
		{name: "DateGreaterOrEqual", q: obsQuery(store.Clause{dateBound(store.High, store.GE, "2024-02-01T00:00:00.000Z")}), want: []string{"o2", "o3"}},
		{name: "DateLessOrEqual", q: obsQuery(store.Clause{dateBound(store.Low, store.LE, "2024-01-10T23:59:59.999Z")}), want: []string{"o1", "o4"}},
		{name: "DateOverlapsMonth", q: obsQuery(store.Clause{overlap}), want: []string{"o1"}},
		{name: "IDs", q: with(obsQuery(), func(q *store.Query) { q.IDs = []string{"o5", "o2", "o6", "nope"} }), want: []string{"o2", "o5"}},
		{name: "IDsAndEquality", q: with(obsQuery(store.Clause{eq("category", "laboratory")}), func(q *store.Query) { q.IDs = []string{"o1", "o2"} }), want: []string{"o1"}},
		{name: "Compartments", q: with(obsQuery(), func(q *store.Query) { q.Compartments = []string{"Patient/p2", "Patient/p3"} }), want: []string{"o3", "o4", "o5"}},
		{name: "CompartmentsAndEquality", q: with(obsQuery(store.Clause{eq("category", "laboratory")}), func(q *store.Query) { q.Compartments = []string{"Patient/p1"} }), want: []string{"o1"}},
		{name: "Practices", q: with(obsQuery(), func(q *store.Query) { q.Practices = []string{"pr2", "pr3"} }), want: []string{"o3", "o4", "o5"}},
		// "" stands for resources no practice owns (authorization adds it
		// to every practice filter: shared reference data).
		{name: "PracticesWithUnowned", q: with(patients(), func(q *store.Query) { q.Practices = []string{"pr2", ""} }), want: []string{"p1", "p2", "p3"}},
		{name: "PracticesUnownedOnly", q: with(obsQuery(), func(q *store.Query) { q.Practices = []string{""} }), want: nil},
		{name: "PracticesUnownedAndOwned", q: with(obsQuery(), func(q *store.Query) { q.Practices = []string{"", "pr3"} }), want: []string{"o5"}},
		{name: "SortByDateAscending", q: with(obsQuery(), sorted("date", false)), want: []string{"o4", "o1", "o2", "o3", "o5"}},
		{name: "SortByDateDescending", q: with(obsQuery(), sorted("date", true)), want: []string{"o3", "o2", "o1", "o4", "o5"}},
		{name: "SortByStringThenLastUpdated", q: with(obsQuery(), func(q *store.Query) {
			q.Sort = []store.SortKey{{Param: "note"}, {Param: "_lastUpdated", Desc: true}}
		}), want: []string{"o2", "o4", "o1", "o5", "o3"}},
		{name: "SortByLastUpdatedDescending", q: with(obsQuery(), sorted("_lastUpdated", true)), want: []string{"o5", "o4", "o3", "o2", "o1"}},
		{name: "SortByLastUpdatedAscending", q: with(obsQuery(store.Clause{eq("category", "laboratory")}), sorted("_lastUpdated", false)), want: []string{"o1", "o3", "o4"}},
		{name: "SortByIDDescending", q: with(obsQuery(), sorted("_id", true)), want: []string{"o5", "o4", "o3", "o2", "o1"}},
		{name: "Total", q: with(obsQuery(store.Clause{eq("code", "718-7")}), func(q *store.Query) { q.Count, q.Total = 2, true }), want: []string{"o1", "o3"}, total: 3},
		{name: "CountOnly", q: with(obsQuery(store.Clause{eq("category", "laboratory")}), func(q *store.Query) { q.Count, q.CountOnly = 0, true }), want: nil, total: 3},
		{name: "CountOnlyIgnoresCount", q: with(obsQuery(store.Clause{eq("category", "laboratory")}), func(q *store.Query) { q.CountOnly = true }), want: nil, total: 3},
		{name: "Chain", q: obsQuery(store.Clause{chain(eq("name", "smith"))}), want: []string{"o1", "o2"}},
		{name: "ChainWithPrefix", q: obsQuery(store.Clause{chain(prefix("name", "sm"))}, store.Clause{eq("category", "laboratory")}), want: []string{"o1", "o3", "o4"}},
		{name: "ReverseChain", q: patients(store.Clause{has(eq("category", "laboratory"), false)}), want: []string{"p1", "p2"}},
		{name: "ReverseChainAndEquality", q: patients(store.Clause{has(eq("category", "laboratory"), false)}, store.Clause{eq("gender", "female")}), want: []string{"p1"}},
		{name: "NotReverseChain", q: patients(store.Clause{has(eq("category", "laboratory"), true)}), want: []string{"p3"}},
		{name: "ReverseChainSkipsDeletedReferrers", q: patients(store.Clause{has(prefix("note", "hemol"), false)}), want: nil},
		{name: "DeletedNeverMatch", q: obsQuery(store.Clause{withSystem}, store.Clause{eq("patient", "Patient/p1")}), want: []string{"o1"}},
		{name: "DeletedNotFoundByID", q: with(obsQuery(), func(q *store.Query) { q.IDs = []string{"o6"} }), want: nil},
		{name: "UnknownParameterMatchesNothing", q: obsQuery(store.Clause{eq("nope", "x")}), want: nil},
		{name: "UnknownParameterIsMissing", q: obsQuery(store.Clause{store.Predicate{Param: "nope", Missing: true}}, store.Clause{eq("patient", "Patient/p3")}), want: []string{"o5"}},
	}
}

// searchIDs runs q and returns the page's ids.
func searchIDs(t *testing.T, s store.Store, q store.Query) ([]string, store.SearchPage) {
	t.Helper()
	page, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	var ids []string
	for _, r := range page.Resources {
		if r.Type != q.Type || r.Deleted || len(r.Body) == 0 || r.VersionID < 1 || r.LastUpdated.IsZero() {
			t.Errorf("result %+v is not a current %s version", r, q.Type)
		}
		ids = append(ids, r.ID)
	}
	return ids, page
}

func testSearchPlans(t *testing.T, s store.Store) {
	writeFixture(t, s, searchFixture)
	for _, tc := range searchCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, page := searchIDs(t, s, tc.q)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
			wantTotal := -1
			if tc.q.Total || tc.q.CountOnly {
				wantTotal = tc.total
			}
			if page.Total != wantTotal {
				t.Errorf("Total = %d, want %d", page.Total, wantTotal)
			}
			if wantNext := !tc.q.CountOnly && tc.total > len(tc.want); (page.Next != "") != wantNext {
				t.Errorf("Next = %q, want a cursor: %v", page.Next, wantNext)
			}
		})
	}
}

// testSearchPaging walks every page with Count 2 while a resource is
// created between the first two pages: each match that existed at the
// start is returned exactly once, in order, whatever is created meanwhile.
func testSearchPaging(t *testing.T, s store.Store) {
	writeFixture(t, s, searchFixture)
	n := 0
	for _, o := range pagingOrders {
		t.Run(o.name, func(t *testing.T) {
			q := store.Query{Type: "Observation", Where: where(store.Clause{store.Predicate{Param: "patient", Match: store.MatchPrefix, Value: "Patient/p"}}), Sort: o.sort, Count: 2}
			var got []string
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				ids, page := searchIDs(t, s, q)
				got = append(got, ids...)
				if page.Next == "" {
					break
				}
				if len(ids) != 2 {
					t.Fatalf("page %d has %d resources and a next cursor", pages, len(ids))
				}
				q.Cursor = page.Next
				if pages > 0 {
					continue
				}
				n++
				id := fmt.Sprintf("q%02d", n)
				w := create("Observation", id, []byte(fmt.Sprintf(`{"resourceType":"Observation","id":%q}`, id)))
				w.Index = []store.IndexValue{ref("patient", "Patient/p9"), day("date", "2030-01-01"), token("category", category, "zzz")}
				apply(t, s, w)
			}
			var old []string
			for _, id := range got {
				if id[0] == 'o' {
					old = append(old, id)
				}
			}
			if !slices.Equal(old, o.want) {
				t.Errorf("fixture ids over all pages = %v, want %v (all: %v)", old, o.want, got)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("%s returned twice: %v", id, got)
				}
				seen[id] = true
			}
		})
	}
}

func testSearchSinceBefore(t *testing.T, s store.Store) {
	var times []time.Time
	for _, id := range []string{"a", "b", "c"} {
		r := apply(t, s, create("Basic", id, []byte(`{"resourceType":"Basic"}`)))[0]
		times = append(times, r.LastUpdated)
		waitPast(r.LastUpdated)
	}
	instant := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	cases := []struct {
		name          string
		since, before string
		want          []string
	}{
		{"SinceIsInclusive", instant(times[1]), "", []string{"b", "c"}},
		{"BeforeIsExclusive", "", instant(times[1]), []string{"a"}},
		{"Both", instant(times[1]), instant(times[2]), []string{"b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := searchIDs(t, s, store.Query{Type: "Basic", Since: tc.since, Before: tc.before, Count: 10})
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

func testSearchInvalid(t *testing.T, s store.Store) {
	writeFixture(t, s, searchFixture[:4])
	ctx := context.Background()
	first, err := s.Search(ctx, store.Query{Type: "Patient", Count: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page = %+v, %v; want a next cursor", first, err)
	}
	valid := store.Query{Type: "Patient", Count: 1, Cursor: first.Next}
	second, err := s.Search(ctx, valid)
	if err != nil || second.Prev == "" {
		t.Fatalf("next page = %+v, %v; want a cursor back", second, err)
	}
	tampered := []byte(first.Next)
	tampered[0] ^= 1 // the cursor no longer decodes to JSON
	cases := []struct {
		name string
		q    store.Query
	}{
		{"GarbageCursor", store.Query{Type: "Patient", Count: 1, Cursor: "not a cursor"}},
		{"TamperedCursor", store.Query{Type: "Patient", Count: 1, Cursor: string(tampered)}},
		{"CursorOfAnotherPlan", store.Query{Type: "Patient", Count: 1, Cursor: first.Next, Sort: []store.SortKey{{Param: "_id"}}}},
		{"PrevCursorOfAnotherPlan", store.Query{Type: "Patient", Count: 1, Cursor: second.Prev, Where: where(store.Clause{eq("gender", "female")})}},
		{"CountZero", store.Query{Type: "Patient"}},
		{"CountAboveMax", store.Query{Type: "Patient", Count: store.MaxPageSize + 1}},
		{"NegativeCountWithCountOnly", store.Query{Type: "Patient", Count: -1, CountOnly: true}},
		{"UnknownMatch", store.Query{Type: "Patient", Count: 1, Where: where(store.Clause{{Param: "name", Match: store.Match(99)}})}},
		{"NoType", store.Query{Count: 1}},
		{"BadSince", store.Query{Type: "Patient", Count: 1, Since: "yesterday"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Search(ctx, tc.q); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("Search error = %v, want ErrInvalid", err)
			}
		})
	}
}

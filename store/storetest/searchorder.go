package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

// Conformance of _sort by search parameters and of paging in both
// directions.

// number is a quantity index value: its unit code as Value, its size as
// both bounds (fixed-width digits stand in for fhir/search.EncodeNumber).
func number(param, unit, n string) store.IndexValue {
	return store.IndexValue{Param: param, Value: unit, Low: n, High: n}
}

func withSystem(v store.IndexValue, system string) store.IndexValue { v.System = system; return v }

// ucum is the system of quantity units.
const ucum = "http://unitsofmeasure.org"

// sortFixture: five Conditions whose parameters have several values, one,
// or none, so that a resource sorts by its lowest value ascending and its
// highest descending, and last without one, and so that a predicate on a
// range must hold for one value, not for the ends of two. c5's onset has
// an end and no start: it has a value descending only.
var sortFixture = []fixtureDoc{
	{typ: "Condition", id: "c1", index: []store.IndexValue{
		day("onset-date", "2024-03-01"), day("onset-date", "2024-01-05"),
		token("code", "http://s", "b"), token("code", "", "z"),
		ref("asserter", "Practitioner/b"), number("value", "mg", "010")}},
	{typ: "Condition", id: "c2", index: []store.IndexValue{
		day("onset-date", "2024-02-01"), token("code", "", "c"),
		ref("asserter", "Practitioner/a"), ref("asserter", "Practitioner/c"),
		withSystem(number("value", "mg", "002"), ucum), withSystem(number("value", "mg", "020"), ucum)}},
	{typ: "Condition", id: "c3", index: []store.IndexValue{
		token("code", "", "a"), token("code", "", "y"), number("value", "mg", "001"), number("value", "kg", "050")}},
	{typ: "Condition", id: "c4", index: []store.IndexValue{
		day("onset-date", "2023-12-31"), day("onset-date", "2024-04-01"), ref("asserter", "Practitioner/b")}},
	{typ: "Condition", id: "c5", index: []store.IndexValue{
		{Param: "onset-date", High: "2024-02-15T23:59:59.999Z"}, token("code", "", "c"),
		ref("asserter", "Practitioner/a"), number("value", "mg", "010")}},
}

func sortCases() []searchCase {
	by := func(keys ...store.SortKey) store.Query {
		return store.Query{Type: "Condition", Sort: keys, Count: 50}
	}
	asc := func(p string) store.SortKey { return store.SortKey{Param: p} }
	desc := func(p string) store.SortKey { return store.SortKey{Param: p, Desc: true} }
	return []searchCase{
		{name: "DateByLowestStart", q: by(asc("onset-date")), want: []string{"c4", "c1", "c2", "c3", "c5"}},
		{name: "DateByHighestEnd", q: by(desc("onset-date")), want: []string{"c4", "c1", "c5", "c2", "c3"}},
		{name: "TokenByLowestCode", q: by(asc("code")), want: []string{"c3", "c1", "c2", "c5", "c4"}},
		{name: "TokenByHighestCode", q: by(desc("code")), want: []string{"c1", "c3", "c2", "c5", "c4"}},
		{name: "ReferenceAscending", q: by(asc("asserter")), want: []string{"c2", "c5", "c1", "c4", "c3"}},
		{name: "ReferenceDescending", q: by(desc("asserter")), want: []string{"c2", "c1", "c4", "c5", "c3"}},
		{name: "QuantityBySmallest", q: by(asc("value")), want: []string{"c3", "c2", "c1", "c5", "c4"}},
		{name: "QuantityByLargest", q: by(desc("value")), want: []string{"c3", "c2", "c1", "c5", "c4"}},
		{name: "TwoParameters", q: by(desc("asserter"), asc("onset-date")), want: []string{"c2", "c4", "c1", "c5", "c3"}},
		{name: "ParameterThenLastUpdated", q: by(asc("code"), desc("_lastUpdated")), want: []string{"c3", "c1", "c5", "c2", "c4"}},
		{name: "UnknownParameterKeepsStableOrder", q: by(asc("nope")), want: []string{"c1", "c2", "c3", "c4", "c5"}},
		{name: "WithFilter", q: func() store.Query {
			q := by(desc("value"))
			q.Where = where(store.Clause{eq("code", "c"), eq("code", "a")})
			return q
		}(), want: []string{"c3", "c2", "c5"}},
	}
}

func testSearchSort(t *testing.T, s store.Store) {
	writeFixture(t, s, sortFixture)
	cases := sortCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := searchIDs(t, s, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

func rangeCases() []searchCase {
	conditions := func(p store.Predicate) store.Query {
		return store.Query{Type: "Condition", Where: where(store.Clause{p}), Count: 50}
	}
	bound := func(f store.BoundField, op store.CmpOp, arg string) store.Bound {
		return store.Bound{Field: f, Op: op, Arg: arg}
	}
	feb := []store.Bound{bound(store.Low, store.GE, "2024-02-01T00:00:00.000Z"), bound(store.High, store.LE, "2024-02-29T23:59:59.999Z")}
	onset := func(not bool, bounds ...store.Bound) store.Predicate {
		return store.Predicate{Param: "onset-date", Match: store.MatchEqual, Bounds: bounds, Not: not}
	}
	quantity := func(unit, system string, hasSystem bool, bounds ...store.Bound) store.Predicate {
		p := store.Predicate{Param: "value", Match: store.MatchEqual, Value: unit, System: system, HasSystem: hasSystem, Bounds: bounds}
		if unit == "" {
			p.Match = store.MatchAny // any unit
		}
		return p
	}
	return []searchCase{
		{name: "WithinOneValue", q: conditions(onset(false, feb...)), want: []string{"c2"}},
		{name: "OverlapsWithOneValue", q: conditions(onset(false, bound(store.Low, store.LE, "2024-02-29T23:59:59.999Z"), bound(store.High, store.GE, "2024-02-01T00:00:00.000Z"))), want: []string{"c2", "c5"}},
		{name: "NoValueWithin", q: conditions(onset(true, feb...)), want: []string{"c1", "c3", "c4", "c5"}},
		{name: "NumberWithinOneValue", q: conditions(quantity("", "", false, bound(store.Low, store.GE, "005"), bound(store.High, store.LE, "015"))), want: []string{"c1", "c5"}},
		{name: "UnitAndNumberOfOneValue", q: conditions(quantity("mg", "", false, bound(store.Low, store.GE, "010"))), want: []string{"c1", "c2", "c5"}},
		{name: "SystemUnitAndNumberOfOneValue", q: conditions(quantity("mg", ucum, true, bound(store.Low, store.GE, "010"))), want: []string{"c2"}},
		{name: "UnitWithoutSystemAndNumber", q: conditions(quantity("mg", "", true, bound(store.Low, store.GE, "005"))), want: []string{"c1", "c5"}},
	}
}

// testSearchRanges: every Bound of a predicate, and its unit, hold for one
// value of the parameter.
func testSearchRanges(t *testing.T, s store.Store) {
	writeFixture(t, s, sortFixture)
	for _, tc := range rangeCases() {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := searchIDs(t, s, tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
}

// pagingOrders are orders of the search fixture's five live Observations
// matching patient=Patient/p…, walked a page at a time.
var pagingOrders = []struct {
	name string
	sort []store.SortKey
	want []string
}{
	{"Creation", nil, []string{"o1", "o2", "o3", "o4", "o5"}},
	{"LastUpdatedDescending", []store.SortKey{{Param: "_lastUpdated", Desc: true}}, []string{"o5", "o4", "o3", "o2", "o1"}},
	{"IDAscending", []store.SortKey{{Param: "_id"}}, []string{"o1", "o2", "o3", "o4", "o5"}},
	{"DateAscending", []store.SortKey{{Param: "date"}}, []string{"o4", "o1", "o2", "o3", "o5"}},
	{"DateDescending", []store.SortKey{{Param: "date", Desc: true}}, []string{"o3", "o2", "o1", "o4", "o5"}},
	{"CategoryDescending", []store.SortKey{{Param: "category", Desc: true}}, []string{"o2", "o5", "o1", "o3", "o4"}},
	{"NoteThenLastUpdatedDescending", []store.SortKey{{Param: "note"}, {Param: "_lastUpdated", Desc: true}}, []string{"o2", "o4", "o1", "o5", "o3"}},
}

func pagingQuery(sort []store.SortKey) store.Query {
	return store.Query{Type: "Observation", Where: where(store.Clause{store.Predicate{Param: "patient", Match: store.MatchPrefix, Value: "Patient/p"}}), Sort: sort, Count: 2}
}

// testSearchPagingBack walks every order forwards to the last page, then
// backwards through Prev to the first: each page read backwards is the
// page read forwards there, with the same Next and Prev, and the first
// page has no Prev.
func testSearchPagingBack(t *testing.T, s store.Store) {
	writeFixture(t, s, searchFixture)
	for _, o := range pagingOrders {
		t.Run(o.name, func(t *testing.T) {
			q := pagingQuery(o.sort)
			var pages [][]string
			var links [][2]bool // Prev, Next present
			for {
				if len(pages) > 10 {
					t.Fatal("paging does not end")
				}
				ids, page := searchIDs(t, s, q)
				if (page.Prev != "") != (len(pages) > 0) {
					t.Fatalf("forward page %d: Prev = %q", len(pages), page.Prev)
				}
				pages = append(pages, ids)
				links = append(links, [2]bool{page.Prev != "", page.Next != ""})
				if page.Next == "" {
					q.Cursor = page.Prev
					break
				}
				q.Cursor = page.Next
			}
			if got := slices.Concat(pages...); !slices.Equal(got, o.want) {
				t.Fatalf("forward = %v, want %v", pages, o.want)
			}
			for i := len(pages) - 2; i >= 0; i-- {
				ids, page := searchIDs(t, s, q)
				if !slices.Equal(ids, pages[i]) {
					t.Fatalf("page %d read backwards = %v, forwards %v", i, ids, pages[i])
				}
				if got := [2]bool{page.Prev != "", page.Next != ""}; got != links[i] {
					t.Errorf("page %d read backwards has Prev, Next = %v, forwards %v", i, got, links[i])
				}
				// Its Next leads back to the page it was reached from.
				next, _ := searchIDs(t, s, continued(q, page.Next))
				if !slices.Equal(next, pages[i+1]) {
					t.Errorf("Next of page %d read backwards = %v, want %v", i, next, pages[i+1])
				}
				q.Cursor = page.Prev
			}
		})
	}
}

// continued is q continuing from cursor c.
func continued(q store.Query, c string) store.Query { q.Cursor = c; return q }

// testSearchPagingBackUnderInserts walks every order to its last page,
// then back to the first while matches are created before each step, in
// every part of the order: each match that existed throughout is returned
// exactly once, in order. (Matches created for one order stay for the
// next.)
func testSearchPagingBackUnderInserts(t *testing.T, s store.Store) {
	writeFixture(t, s, searchFixture)
	n := 0
	insert := func() {
		n++
		id := fmt.Sprintf("q%02d", n)
		w := create("Observation", id, []byte(fmt.Sprintf(`{"resourceType":"Observation","id":%q}`, id)))
		w.Index = []store.IndexValue{ref("patient", "Patient/p9"),
			day("date", fmt.Sprintf("2024-01-%02d", 1+n%28)),
			token("category", category, []string{"a", "m", "z"}[n%3]),
			str("note", []string{"a", "hemo", "i"}[n%3], "x")}
		apply(t, s, w)
	}
	for _, o := range pagingOrders {
		t.Run(o.name, func(t *testing.T) {
			q := pagingQuery(o.sort)
			// Forwards to the last page, without writes: what is there
			// now is there throughout the walk back.
			var before, lastPage []string
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				ids, page := searchIDs(t, s, q)
				if page.Next == "" {
					q.Cursor, lastPage = page.Prev, ids
					break
				}
				before = append(before, ids...)
				q.Cursor = page.Next
			}
			var fixture []string
			for _, id := range append(slices.Clone(before), lastPage...) {
				if id[0] == 'o' {
					fixture = append(fixture, id)
				}
			}
			if !slices.Equal(fixture, o.want) {
				t.Fatalf("fixture ids forwards = %v, want %v", fixture, o.want)
			}
			var got []string
			for pages := 0; q.Cursor != ""; pages++ {
				if pages > 100 {
					t.Fatal("paging back does not end")
				}
				insert()
				ids, page := searchIDs(t, s, q)
				got = append(slices.Clone(ids), got...)
				q.Cursor = page.Prev
			}
			var old []string
			for _, id := range got {
				if slices.Contains(before, id) {
					old = append(old, id)
				}
			}
			if !slices.Equal(old, before) {
				t.Errorf("matches before the last page, read backwards = %v, want %v (all: %v)", old, before, got)
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

// SearchPlans writes the fixtures of the search conformance tests into s
// and returns their plans (each of the cases, each paging order, a
// _lastUpdated bound), so that an engine's own tests can check how it runs
// them on data they match: which indexes serve them, for example.
func SearchPlans(t *testing.T, s store.Store) []store.Query {
	t.Helper()
	writeFixture(t, s, searchFixture)
	writeFixture(t, s, sortFixture)
	var plans []store.Query
	for _, tc := range slices.Concat(searchCases(), sortCases(), rangeCases()) {
		plans = append(plans, tc.q)
	}
	for _, o := range pagingOrders {
		plans = append(plans, pagingQuery(o.sort))
	}
	return append(plans,
		store.Query{Type: "Observation", Since: "2024-01-01T00:00:00.000Z", Before: "2999-01-01T00:00:00.000Z", Count: 10},
		store.Query{Type: "Observation", Sort: []store.SortKey{{Param: "_lastUpdated"}}, Count: 10})
}

package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func runHistory(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"NewestFirstAtEveryLevel", testHistoryLevels},
		{"PagingYieldsEveryVersionOnce", testHistoryPaging},
		{"PagingIgnoresLaterWrites", testHistoryStableCursor},
		{"SinceKeepsLaterVersions", testHistorySince},
		{"PageSizeDefaultAndCap", testHistoryPageSize},
		{"UnknownInstanceIsErrNotFound", testHistoryUnknown},
		{"EmptyStore", testHistoryEmpty},
		{"FiltersJudgeEachVersionsOwnMembership", testHistoryFilters},
	})
}

// history writes a small mixed history and returns its versions in commit
// order.
func writeMixedHistory(t *testing.T, s store.Store) []store.Result {
	var out []store.Result
	out = append(out, apply(t, s,
		create("Patient", "p1", patient("p1", "A")),
		create("Patient", "p2", patient("p2", "B")),
	)...)
	out = append(out, apply(t, s, create("Observation", "o1", observation("o1", "p1", 1)))...)
	out = append(out, apply(t, s, update("Patient", "p1", patient("p1", "C")))...)
	out = append(out, apply(t, s, update("Observation", "o1", observation("o1", "p1", 2)))...)
	out = append(out, apply(t, s, del("Patient", "p2"))...)
	out = append(out, apply(t, s, update("Patient", "p1", patient("p1", "D")))...)
	return out
}

func resultKeys(rs []store.Result, keep func(store.Result) bool) []string {
	var out []string
	for i := len(rs) - 1; i >= 0; i-- {
		if keep(rs[i]) {
			out = append(out, key(rs[i].Resource))
		}
	}
	return out
}

func testHistoryLevels(t *testing.T, s store.Store) {
	written := writeMixedHistory(t, s)
	for _, tc := range []struct {
		name string
		q    store.HistoryQuery
		keep func(store.Result) bool
	}{
		{"system", store.HistoryQuery{}, func(store.Result) bool { return true }},
		{"type", store.HistoryQuery{Type: "Patient"}, func(r store.Result) bool { return r.Type == "Patient" }},
		{"instance", store.HistoryQuery{Type: "Patient", ID: "p1"}, func(r store.Result) bool { return r.Type == "Patient" && r.ID == "p1" }},
		{"deleted instance", store.HistoryQuery{Type: "Patient", ID: "p2"}, func(r store.Result) bool { return r.Type == "Patient" && r.ID == "p2" }},
		{"other type", store.HistoryQuery{Type: "Observation"}, func(r store.Result) bool { return r.Type == "Observation" }},
		{"type without resources", store.HistoryQuery{Type: "Encounter"}, func(store.Result) bool { return false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allHistory(t, s, tc.q)
			want := resultKeys(written, tc.keep)
			if !slices.Equal(keys(got), want) {
				t.Errorf("history = %v, want %v", keys(got), want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].LastUpdated.After(got[i-1].LastUpdated) {
					t.Errorf("version %s (%v) listed after the older %s (%v)", key(got[i]), got[i].LastUpdated, key(got[i-1]), got[i-1].LastUpdated)
				}
			}
			for _, v := range got {
				if v.Deleted != (v.Body == nil) {
					t.Errorf("%s: Deleted %v with body %q", key(v), v.Deleted, v.Body)
				}
				if !v.Deleted {
					r, err := s.VRead(context.Background(), v.Type, v.ID, v.VersionID)
					if err != nil || string(r.Body) != string(v.Body) || !r.LastUpdated.Equal(v.LastUpdated) {
						t.Errorf("%s: history entry differs from VRead (%v)", key(v), err)
					}
				}
			}
		})
	}
}

func testHistoryPaging(t *testing.T, s store.Store) {
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("p%d", i%5)
		var w store.Write
		if i < 5 {
			w = create("Patient", id, patient(id, fmt.Sprint(i)))
		} else {
			w = update("Patient", id, patient(id, fmt.Sprint(i)))
		}
		res := apply(t, s, w, create("Observation", fmt.Sprintf("o%d", i), observation(fmt.Sprintf("o%d", i), id, i)))
		want = append(want, key(res[0].Resource), key(res[1].Resource))
	}
	slices.Reverse(want)
	for _, size := range []int{1, 2, 5, 7, 24, 25, 100} {
		t.Run(fmt.Sprintf("count=%d", size), func(t *testing.T) {
			q := store.HistoryQuery{Count: size}
			var got []string
			for page := 0; ; page++ {
				p, err := s.History(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Versions) > size {
					t.Fatalf("page %d has %d versions, more than Count %d", page, len(p.Versions), size)
				}
				if p.Next != "" && len(p.Versions) != size {
					t.Fatalf("page %d has %d versions and a next page", page, len(p.Versions))
				}
				got = append(got, keys(p.Versions)...)
				if p.Next == "" || page > len(want) {
					break
				}
				q.Cursor = p.Next
			}
			if !slices.Equal(got, want) {
				t.Errorf("paged history =\n%v\nwant\n%v", got, want)
			}
		})
	}
	typ := allHistory(t, s, store.HistoryQuery{Type: "Patient", Count: 3})
	if len(typ) != 12 {
		t.Errorf("paged type history has %d versions, want 12", len(typ))
	}
	inst := allHistory(t, s, store.HistoryQuery{Type: "Patient", ID: "p1", Count: 1})
	if got := keys(inst); !slices.Equal(got, []string{"Patient/p1/3", "Patient/p1/2", "Patient/p1/1"}) {
		t.Errorf("paged instance history = %v", got)
	}
}

func testHistoryStableCursor(t *testing.T, s store.Store) {
	for i := range 6 {
		id := fmt.Sprint("p", i)
		apply(t, s, create("Patient", id, patient(id, "A")))
	}
	first, err := s.History(context.Background(), store.HistoryQuery{Count: 3})
	if err != nil || first.Next == "" {
		t.Fatalf("first page: %v, next %q", err, first.Next)
	}
	apply(t, s, update("Patient", "p0", patient("p0", "B")), create("Patient", "late", patient("late", "C")))
	rest := allHistory(t, s, store.HistoryQuery{Count: 3, Cursor: first.Next})
	got := append(keys(first.Versions), keys(rest)...)
	want := []string{"Patient/p5/1", "Patient/p4/1", "Patient/p3/1", "Patient/p2/1", "Patient/p1/1", "Patient/p0/1"}
	if !slices.Equal(got, want) {
		t.Errorf("history across later writes = %v, want %v", got, want)
	}
}

func testHistorySince(t *testing.T, s store.Store) {
	early := apply(t, s, create("Patient", "p1", patient("p1", "A")), create("Observation", "o1", observation("o1", "p1", 1)))
	waitPast(early[1].LastUpdated)
	late := apply(t, s, update("Patient", "p1", patient("p1", "B")))
	late = append(late, apply(t, s, create("Patient", "p2", patient("p2", "C")))...)
	since := late[0].LastUpdated
	if !since.After(early[1].LastUpdated) {
		t.Fatalf("clock did not advance: %v then %v", early[1].LastUpdated, since)
	}
	for _, tc := range []struct {
		q    store.HistoryQuery
		want []string
	}{
		{store.HistoryQuery{Since: since}, []string{"Patient/p2/1", "Patient/p1/2"}},
		{store.HistoryQuery{Since: since, Count: 1}, []string{"Patient/p2/1", "Patient/p1/2"}},
		{store.HistoryQuery{Type: "Patient", Since: since}, []string{"Patient/p2/1", "Patient/p1/2"}},
		{store.HistoryQuery{Type: "Observation", Since: since}, nil},
		{store.HistoryQuery{Type: "Patient", ID: "p1", Since: since}, []string{"Patient/p1/2"}},
		{store.HistoryQuery{Since: early[0].LastUpdated}, []string{"Patient/p2/1", "Patient/p1/2", "Observation/o1/1", "Patient/p1/1"}},
		{store.HistoryQuery{Since: late[1].LastUpdated.Add(1e6)}, nil},
	} {
		got := keys(allHistory(t, s, tc.q))
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("History(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func testHistoryPageSize(t *testing.T, s store.Store) {
	var writes []store.Write
	for i := range store.DefaultPageSize + 5 {
		id := fmt.Sprint("p", i)
		writes = append(writes, create("Patient", id, patient(id, "A")))
	}
	apply(t, s, writes...)
	p, err := s.History(context.Background(), store.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != store.DefaultPageSize || p.Next == "" {
		t.Errorf("default page has %d versions (next %q), want %d and a next page", len(p.Versions), p.Next, store.DefaultPageSize)
	}
	p, err = s.History(context.Background(), store.HistoryQuery{Count: store.MaxPageSize * 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Versions) != store.DefaultPageSize+5 || p.Next != "" {
		t.Errorf("large page has %d versions (next %q), want all %d", len(p.Versions), p.Next, store.DefaultPageSize+5)
	}
}

func testHistoryUnknown(t *testing.T, s store.Store) {
	_, err := s.History(context.Background(), store.HistoryQuery{Type: "Patient", ID: "nobody"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of an unknown resource: %v, want ErrNotFound", err)
	}
}

func testHistoryEmpty(t *testing.T, s store.Store) {
	for _, q := range []store.HistoryQuery{{}, {Type: "Patient"}} {
		p, err := s.History(context.Background(), q)
		if err != nil || len(p.Versions) != 0 || p.Next != "" {
			t.Errorf("History(%+v) on an empty store = %+v, %v", q, p, err)
		}
	}
}

// testHistoryFilters: Compartments and Practices keep the versions whose
// own membership (as written; a deletion's being the live version's before
// it) is within them, at every level, across pages and with Since; and
// ExceptTypes leaves types out of system history.
func testHistoryFilters(t *testing.T, s store.Store) {
	member := func(w store.Write, practice string, comps ...string) store.Write {
		w.Practice, w.Compartments = practice, comps
		return w
	}
	var at []store.Result
	for _, w := range []store.Write{
		member(create("Observation", "o1", observation("o1", "p1", 1)), "P1", "Patient/p1"),
		member(create("Observation", "o2", observation("o2", "p2", 1)), "P2", "Patient/p2"),
		member(update("Observation", "o1", observation("o1", "p2", 2)), "P2", "Patient/p2"),
		member(update("Observation", "o1", observation("o1", "p1", 3)), "P1", "Patient/p1", "Patient/p3"),
		member(create("Observation", "o3", observation("o3", "p9", 1)), ""),
		member(create("Patient", "p1", patient("p1", "A")), "P1", "Patient/p1"),
		del("Observation", "o1"),
		del("Observation", "o2"),
	} {
		at = append(at, apply(t, s, w)...)
	}
	for _, c := range []struct {
		name string
		q    store.HistoryQuery
		want []string
	}{
		{"type, one compartment", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p1"}},
			[]string{"Observation/o1/4", "Observation/o1/3", "Observation/o1/1"}},
		{"type, another compartment", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p2"}},
			[]string{"Observation/o2/2", "Observation/o1/2", "Observation/o2/1"}},
		{"type, two compartments of one version", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p1", "Patient/p3"}},
			[]string{"Observation/o1/4", "Observation/o1/3", "Observation/o1/1"}},
		{"type, a practice", store.HistoryQuery{Type: "Observation", Practices: []string{"P2"}},
			[]string{"Observation/o2/2", "Observation/o1/2", "Observation/o2/1"}},
		{"type, a practice and unowned", store.HistoryQuery{Type: "Observation", Practices: []string{"P1", ""}},
			[]string{"Observation/o1/4", "Observation/o3/1", "Observation/o1/3", "Observation/o1/1"}},
		{"type, compartments and a practice", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p1", "Patient/p2"}, Practices: []string{"P1"}},
			[]string{"Observation/o1/4", "Observation/o1/3", "Observation/o1/1"}},
		{"type, a compartment outside the practice", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p2"}, Practices: []string{"P1", ""}},
			nil},
		{"system, a compartment", store.HistoryQuery{Compartments: []string{"Patient/p1"}},
			[]string{"Observation/o1/4", "Patient/p1/1", "Observation/o1/3", "Observation/o1/1"}},
		{"system, a practice", store.HistoryQuery{Practices: []string{"P1"}},
			[]string{"Observation/o1/4", "Patient/p1/1", "Observation/o1/3", "Observation/o1/1"}},
		{"instance, a compartment", store.HistoryQuery{Type: "Observation", ID: "o1", Compartments: []string{"Patient/p2"}},
			[]string{"Observation/o1/2"}},
		{"instance, a practice", store.HistoryQuery{Type: "Observation", ID: "o1", Practices: []string{"P1"}},
			[]string{"Observation/o1/4", "Observation/o1/3", "Observation/o1/1"}},
		{"since", store.HistoryQuery{Type: "Observation", Compartments: []string{"Patient/p1"}, Since: at[3].LastUpdated},
			[]string{"Observation/o1/4", "Observation/o1/3"}},
		{"a compartment no version has", store.HistoryQuery{Compartments: []string{"Patient/none"}}, nil},
		{"system, a compartment, a type left out", store.HistoryQuery{Compartments: []string{"Patient/p1"}, ExceptTypes: []string{"Patient"}},
			[]string{"Observation/o1/4", "Observation/o1/3", "Observation/o1/1"}},
		{"system, a practice, a type left out", store.HistoryQuery{Practices: []string{"P1", ""}, ExceptTypes: []string{"Observation", "Device"}},
			[]string{"Patient/p1/1"}},
		{"system, a type left out", store.HistoryQuery{ExceptTypes: []string{"Observation"}},
			[]string{"Patient/p1/1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, count := range []int{0, 1, 2} {
				q := c.q
				q.Count = count
				if got := keys(allHistory(t, s, q)); !slices.Equal(got, c.want) {
					t.Errorf("Count %d: versions %v, want %v", count, got, c.want)
				}
			}
		})
	}
}

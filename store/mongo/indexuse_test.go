package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/search/searchtest"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// TestEverySearchHasAnIndex runs every plan of the search conformance
// cases and every US Core SHALL search (and required combination) of both
// server CapabilityStatements, compiled by the REST compiler, each a page
// at a time forwards and back, plus Count, and captures with a command
// monitor every find, count and aggregate the engine sends to a resource
// collection. FerretDB uses no index for reads, so the test judges the
// commands against the indexes the engine declares (resourceIndexes, and
// _id's own), as MongoDB would plan them:
//
//   - A field is covered by an index whose first key is that field, or by
//     a wildcard index "p.$**" for fields under p.
//   - A condition is indexable when it can bound an index scan: equality,
//     $in, $all, a range ($gt, $gte, $lt, $lte) or an anchored regular
//     expression on a covered field, or $exists: true on a field a
//     wildcard index covers (wildcard indexes hold only documents with the
//     field); an $and of conditions when one of them is; an $or when every
//     branch is. Nothing under $nor is, nor $exists: false.
//   - The conjuncts of a filter are its top-level $and, flattened, less
//     deleted: false (every search has it; it selects nearly everything),
//     less negations ($nor: :missing=true, :not, |code), which no index
//     serves, and less the keyset condition of a page after the first
//     (the conjunct naming only fields of the sort, which the sort's own
//     index serves where there is one).
//   - A command with conjuncts is covered when one of them is indexable
//     (the leading condition MongoDB seeks on; the rest are checked on the
//     documents it finds, and the server sorts those). One without reads
//     the live resources of the type, as the embedded engine does for
//     such plans: a count must then be served by an index on deleted, a
//     find by an index whose first keys are the sort's fields in the
//     sort's directions, all of them or all reversed (an index walk that
//     stops after a page of matches).
//
// Sorts by a search parameter (srt) have no index (see Search), so a find
// with no conjunct and such a sort — a whole type sorted by a parameter —
// cannot be covered; the test counts those apart and fails on any other
// uncovered command. It then drops each declared index in turn and
// requires that some command become uncovered, so that no index is there
// for nothing and dropping one from resourceIndexes fails the test.
func TestEverySearchHasAnIndex(t *testing.T) {
	uri := ferret.URI(ferret.NewDatabase())
	s := openURI(t, uri, Options{})
	plans := storetest.SearchPlans(t, s)
	plans = append(plans, shallPlans(t)...)

	rec := &recorder{}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetMonitor(rec.monitor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	s.db = client.Database(s.name, options.Database().SetReadPreference(readpref.Primary()))

	ctx := context.Background()
	for _, q := range plans {
		rec.plan = planName(q)
		if !q.CountOnly {
			q.Count = 2
		}
		page, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", rec.plan, err)
		}
		if page.Next == "" {
			continue
		}
		if page, err = s.Search(ctx, withCursor(q, page.Next)); err != nil {
			t.Fatalf("%s, next page: %v", rec.plan, err)
		}
		if page.Prev == "" {
			t.Fatalf("%s: second page without Prev", rec.plan)
		}
		if _, err := s.Search(ctx, withCursor(q, page.Prev)); err != nil {
			t.Fatalf("%s, page before: %v", rec.plan, err)
		}
	}
	rec.plan = "Count"
	if _, err := s.Count(ctx, ""); err != nil {
		t.Fatal(err)
	}

	indexes := []bson.D{{{Key: "_id", Value: 1}}}
	for _, ix := range resourceIndexes {
		indexes = append(indexes, ix.keys)
	}
	if len(rec.cmds) < len(plans) {
		t.Fatalf("captured %d commands for %d plans", len(rec.cmds), len(plans))
	}
	uncovered, wholeTypeSorts := check(rec.cmds, indexes)
	for _, c := range uncovered {
		t.Errorf("no declared index serves %s", c)
	}
	var sorted []string
	for _, c := range wholeTypeSorts {
		sorted = append(sorted, c.plan)
	}
	t.Logf("%d plans, %d commands; %d sort a whole type by a parameter in the server, which no index can serve, for plans %q",
		len(plans), len(rec.cmds), len(wholeTypeSorts), slices.Compact(sorted))

	for i, ix := range resourceIndexes {
		t.Run("Without"+formatKeys(ix.keys), func(t *testing.T) {
			fewer := slices.Delete(slices.Clone(indexes), i+1, i+2)
			if uncovered, _ := check(rec.cmds, fewer); len(uncovered) == 0 {
				t.Errorf("every command is still covered without %s: nothing needs it, or the test misses what does", formatKeys(ix.keys))
			}
		})
	}
}

func withCursor(q store.Query, c string) store.Query { q.Cursor = c; return q }

func planName(q store.Query) string {
	s := fmt.Sprintf("%s %+v", q.Type, q.Where)
	if len(q.Sort) > 0 {
		s += fmt.Sprintf(" sort %+v", q.Sort)
	}
	return s
}

// shallPlans are the plans of every US Core SHALL search and required
// combination.
func shallPlans(t *testing.T) []store.Query {
	plans, err := searchtest.ShallPlans()
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) < 40 {
		t.Fatalf("only %d SHALL searches found in the registry", len(plans))
	}
	queries := make([]store.Query, len(plans))
	for i, p := range plans {
		queries[i] = p.Query
	}
	return queries
}

// command is one read the engine sent to a resource collection.
type command struct {
	plan, name, coll string
	filter, sort     bson.D
}

func (c command) String() string {
	return fmt.Sprintf("%s on %s, filter %v, sort %v (plan %s)", c.name, c.coll, c.filter, c.sort, c.plan)
}

// recorder captures the reads of resource collections.
type recorder struct {
	mu   sync.Mutex
	plan string
	cmds []command
}

func (r *recorder) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" && e.CommandName != "count" && e.CommandName != "aggregate" {
			return
		}
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		if !validType(coll) {
			return
		}
		c := command{name: e.CommandName, coll: coll}
		doc := func(key string) bson.D {
			var d bson.D
			if raw, ok := e.Command.Lookup(key).DocumentOK(); ok {
				bson.Unmarshal(raw, &d)
			}
			return d
		}
		switch e.CommandName {
		case "find":
			c.filter, c.sort = doc("filter"), doc("sort")
		case "count":
			c.filter = doc("query")
		case "aggregate":
			var stages []bson.D
			if raw, ok := e.Command.Lookup("pipeline").ArrayOK(); ok {
				vals, _ := raw.Values()
				for _, v := range vals {
					var st bson.D
					if d, ok := v.DocumentOK(); ok && bson.Unmarshal(d, &st) == nil {
						stages = append(stages, st)
					}
				}
			}
			for _, st := range stages {
				for _, e := range st {
					switch e.Key {
					case "$match":
						c.filter, _ = e.Value.(bson.D)
					case "$sort":
						c.sort, _ = e.Value.(bson.D)
					}
				}
			}
		}
		r.mu.Lock()
		c.plan = r.plan
		r.cmds = append(r.cmds, c)
		r.mu.Unlock()
	}}
}

// check returns the commands the indexes do not cover, and apart the
// finds of a whole type sorted by a parameter (see TestEverySearchHasAnIndex).
func check(cmds []command, indexes []bson.D) (uncovered, wholeTypeSorts []command) {
	for _, c := range cmds {
		var conjuncts []bson.D
		for _, x := range flattenAnd(c.filter) {
			if isDeletedFalse(x) || x[0].Key == "$nor" || c.name == "find" && isKeyset(x, c.sort) {
				continue
			}
			conjuncts = append(conjuncts, x)
		}
		switch {
		case len(conjuncts) > 0:
			if !slices.ContainsFunc(conjuncts, func(x bson.D) bool { return indexable(x, indexes) }) {
				uncovered = append(uncovered, c)
			}
		case c.name != "find":
			if !slices.ContainsFunc(indexes, func(ix bson.D) bool { return leads(ix, "deleted") }) {
				uncovered = append(uncovered, c)
			}
		case servesSort(indexes, c.sort):
		case len(c.sort) > 0 && strings.HasPrefix(c.sort[0].Key, "srt."):
			wholeTypeSorts = append(wholeTypeSorts, c)
		default:
			uncovered = append(uncovered, c)
		}
	}
	return uncovered, wholeTypeSorts
}

// flattenAnd lists the conditions a filter document ANDs: its fields, and
// those of its $and, recursively.
func flattenAnd(d bson.D) []bson.D {
	var out []bson.D
	for _, e := range d {
		if e.Key != "$and" {
			out = append(out, bson.D{e})
			continue
		}
		arr, _ := e.Value.(bson.A)
		for _, x := range arr {
			if xd, ok := x.(bson.D); ok {
				out = append(out, flattenAnd(xd)...)
			}
		}
	}
	return out
}

func isDeletedFalse(d bson.D) bool {
	return len(d) == 1 && d[0].Key == "deleted" && d[0].Value == false
}

// isKeyset reports whether a condition names only fields of the sort: the
// keyset condition of a page after the first.
func isKeyset(d bson.D, sort bson.D) bool {
	fields := fieldsOf(d)
	return len(fields) > 0 && !slices.ContainsFunc(fields, func(f string) bool {
		return !slices.ContainsFunc(sort, func(e bson.E) bool { return e.Key == f })
	})
}

func fieldsOf(d bson.D) []string {
	var out []string
	for _, e := range d {
		if !strings.HasPrefix(e.Key, "$") {
			out = append(out, e.Key)
			continue
		}
		arr, _ := e.Value.(bson.A)
		for _, x := range arr {
			if xd, ok := x.(bson.D); ok {
				out = append(out, fieldsOf(xd)...)
			}
		}
	}
	return out
}

// leads reports whether ix covers field (see TestEverySearchHasAnIndex).
func leads(ix bson.D, field string) bool {
	first := ix[0].Key
	if p, ok := strings.CutSuffix(first, "$**"); ok {
		return strings.HasPrefix(field, p)
	}
	return first == field
}

func wildcard(ix bson.D) bool { return strings.HasSuffix(ix[0].Key, "$**") }

// indexable reports whether a condition can bound a scan of one of the
// indexes (see TestEverySearchHasAnIndex).
func indexable(d bson.D, indexes []bson.D) bool {
	for _, e := range d {
		switch e.Key {
		case "$and":
			arr, _ := e.Value.(bson.A)
			for _, x := range arr {
				if xd, ok := x.(bson.D); ok && indexable(xd, indexes) {
					return true
				}
			}
		case "$or":
			arr, _ := e.Value.(bson.A)
			if len(arr) > 0 && !slices.ContainsFunc(arr, func(x any) bool {
				xd, ok := x.(bson.D)
				return !ok || !indexable(xd, indexes)
			}) {
				return true
			}
		case "$nor":
		default:
			if fieldIndexable(e.Key, e.Value, indexes) {
				return true
			}
		}
	}
	return false
}

func fieldIndexable(field string, v any, indexes []bson.D) bool {
	var covering []bson.D
	for _, ix := range indexes {
		if leads(ix, field) {
			covering = append(covering, ix)
		}
	}
	if len(covering) == 0 {
		return false
	}
	switch v := v.(type) {
	case nil:
		return false
	case bson.Regex:
		return strings.HasPrefix(v.Pattern, "^")
	case bson.D:
		if len(v) == 0 || !strings.HasPrefix(v[0].Key, "$") {
			return true // equality with a document
		}
		for _, op := range v {
			switch op.Key {
			case "$eq", "$in", "$all", "$gt", "$gte", "$lt", "$lte":
				return true
			case "$exists":
				if op.Value == true && slices.ContainsFunc(covering, wildcard) {
					return true
				}
			}
		}
		return false
	}
	return true // equality
}

// servesSort reports whether an index walk yields the sort's order: the
// index's first keys are the sort's fields, in its directions or all
// reversed.
func servesSort(indexes []bson.D, sort bson.D) bool {
	if len(sort) == 0 {
		return false
	}
	return slices.ContainsFunc(indexes, func(ix bson.D) bool {
		if len(ix) < len(sort) || wildcard(ix) {
			return false
		}
		same, reversed := true, true
		for i, e := range sort {
			if ix[i].Key != e.Key {
				return false
			}
			d := direction(ix[i].Value) * direction(e.Value)
			same, reversed = same && d > 0, reversed && d < 0
		}
		return same || reversed
	})
}

func direction(v any) int {
	var f float64
	switch v := v.(type) {
	case int32:
		f = float64(v)
	case int64:
		f = float64(v)
	case int:
		f = float64(v)
	case float64:
		f = v
	}
	if f < 0 {
		return -1
	}
	return 1
}

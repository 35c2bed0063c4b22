package store

import (
	"fmt"
	"time"
)

// A Query is an engine-neutral search plan over the current versions of one
// resource type, compiled by package fhir/search from a FHIR search. Engines
// execute every part of it with indexes (SQL indexes on the embedded engine,
// MongoDB indexes on the MongoDB engine) and must return identical results;
// store/storetest holds the plan-level conformance tests.
//
// Matching is on index values (Write.Index) of the current, not deleted,
// version: a predicate holds for a resource when at least one of its index
// values with that Param satisfies it.
type Query struct {
	Type string
	// Where is a conjunction of clauses; each clause is a disjunction of
	// predicates (FHIR: repeated parameters AND, comma-separated values OR).
	Where []Clause
	// IDs, when non-empty, keeps only resources with one of these logical
	// ids (_id).
	IDs []string
	// Compartments, when non-empty, keeps only resources in at least one of
	// these compartments ("Patient/123"). Authorization uses it.
	Compartments []string
	// Practices, when non-empty, keeps only resources owned by one of these
	// practices. Authorization uses it.
	Practices []string
	// Since and Before bound the time of the current version
	// (_lastUpdated): Since inclusive, Before exclusive, as instants in the
	// index layout ("2006-01-02T15:04:05.000Z"); empty means unbounded.
	Since, Before string
	// Sort orders results; ties and an empty Sort fall back to the engine's
	// stable order: the order of creation on the embedded engine, the
	// logical id on MongoDB (whose documents do not record it). See SortKey.
	Sort []SortKey
	// Count is the page size, 1..MaxPageSize; with CountOnly it is unused
	// and may be 0.
	Count int
	// Cursor continues from a page's Next, or goes back from its Prev;
	// opaque to callers.
	Cursor string
	// Total asks for the number of matches over all pages.
	Total bool
	// CountOnly asks for Total alone, no resources.
	CountOnly bool
}

// Clause holds when any of its predicates does.
type Clause []Predicate

// Match says how a predicate compares Value (and System) with the index
// values of its Param.
type Match int

const (
	// MatchAny ignores Value: any entry of Param (with Bounds) will do.
	MatchAny Match = iota
	// MatchEqual: entry Value equals Value. Date and number entries have
	// an empty Value, so their predicates are MatchEqual "" with Bounds:
	// an equality engines can seek on.
	MatchEqual
	// MatchPrefix: entry Value starts with Value.
	MatchPrefix
	// MatchContains: entry Value contains Value (may scan the parameter's
	// entries; other predicates should bound the search).
	MatchContains
)

// Predicate is one condition on the index values of Param.
type Predicate struct {
	Param string
	Match Match
	Value string
	// System, when HasSystem is set, must equal the entry's System too
	// (token system|code, |code with System "", quantity units, :exact
	// strings).
	System    string
	HasSystem bool
	// Bounds are range comparisons the same entry must satisfy as well.
	Bounds []Bound
	// Missing inverts the predicate into "the resource has no entry of
	// Param" (:missing=true); Match, Value and Bounds are then ignored.
	Missing bool
	// Not inverts the predicate: the resource has no entry of Param that
	// satisfies the rest (token :not, date ne).
	Not bool
	// Target, when set, makes this a chained search: the entry Value must
	// be "Type/id" of a resource matching Target (Match and Value are then
	// ignored).
	Target *Query
	// Has, when set, makes this a reverse chain (_has): the resource must
	// be referenced, through Has.Param, by a resource matching Has.Query.
	Has *ReverseChain
}

// ReverseChain is a _has condition: resources of Query.Type matching Query
// that point at the candidate through their reference parameter Param.
type ReverseChain struct {
	Query *Query
	Param string
}

// BoundField is the end of an index range a Bound compares.
type BoundField int

const (
	Low BoundField = iota
	High
)

// CmpOp is a comparison of an index range end with an argument.
type CmpOp int

const (
	LT CmpOp = iota
	LE
	GT
	GE
)

// Bound compares one end of an entry's [Low, High] range with Arg, as
// order-preserving strings (see fhir/search: dates as fixed-width UTC
// instants, numbers through EncodeNumber).
type Bound struct {
	Field BoundField
	Op    CmpOp
	Arg   string
}

// SortKey orders by the index values of Param: ascending by each
// resource's lowest Value (or Low, for ranges), descending by its highest
// Value (or High); resources without a value sort last. Param
// "_lastUpdated" and "_id" sort by the version's time and the logical id.
type SortKey struct {
	Param string
	Desc  bool
}

// SearchPage is one page of results in order.
//
// Pages continue by keyset: Next holds where the page ends and Prev where
// it begins, so a page reached through either is the Count matches right
// after (before) that point at the time it is read, in the plan's order:
// matches written or deleted meanwhile neither repeat nor skip the others,
// and pages read backwards need not end where pages read forwards began.
type SearchPage struct {
	Resources []Resource
	// Next is a cursor for the page after this one (as Query.Cursor);
	// empty on the last page, and on an empty page.
	Next string
	// Prev is a cursor for the page before this one (as Query.Cursor);
	// empty on the first page (one read without a cursor, or read
	// backwards up to the first match), and on an empty page.
	Prev string
	// Total is the number of matches over all pages when Query.Total or
	// CountOnly asked for it, otherwise -1.
	Total int
}

// Validate reports, as an error wrapping ErrInvalid, what makes q a plan no
// engine can run: no Type, a Count out of range, an unknown Match or Bound,
// a Since or Before that is not an instant, an empty clause or sort key, a
// predicate without a Param (one with Has needs none), or a nested plan
// (Target, Has.Query) with such a fault. Nested plans are filters only:
// their Sort, Count, Cursor, Total and CountOnly are ignored. Engines call
// it first, so that both refuse the same plans.
func (q *Query) Validate() error {
	switch {
	case q.Count < 0 || q.Count > MaxPageSize:
		return fmt.Errorf("%w: Count %d out of 0..%d", ErrInvalid, q.Count, MaxPageSize)
	case !q.CountOnly && q.Count < 1:
		return fmt.Errorf("%w: Count %d out of 1..%d", ErrInvalid, q.Count, MaxPageSize)
	}
	for _, k := range q.Sort {
		if k.Param == "" {
			return fmt.Errorf("%w: sort key without a parameter", ErrInvalid)
		}
	}
	return q.validateFilter(0)
}

// maxDepth bounds the nesting of chained plans.
const maxDepth = 8

func (q *Query) validateFilter(depth int) error {
	if q.Type == "" {
		return fmt.Errorf("%w: search plan without a type", ErrInvalid)
	}
	if depth > maxDepth {
		return fmt.Errorf("%w: chains nested deeper than %d", ErrInvalid, maxDepth)
	}
	for _, t := range []string{q.Since, q.Before} {
		if _, err := time.Parse(time.RFC3339Nano, t); t != "" && err != nil {
			return fmt.Errorf("%w: _lastUpdated bound %q is not an instant", ErrInvalid, t)
		}
	}
	for _, c := range q.Where {
		if len(c) == 0 {
			return fmt.Errorf("%w: empty clause", ErrInvalid)
		}
		for _, p := range c {
			if err := p.validate(depth); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *Predicate) validate(depth int) error {
	if p.Param == "" && p.Has == nil {
		return fmt.Errorf("%w: predicate without a parameter", ErrInvalid)
	}
	if p.Match < MatchAny || p.Match > MatchContains {
		return fmt.Errorf("%w: unknown match %d on %s", ErrInvalid, p.Match, p.Param)
	}
	if p.Target != nil && p.Has != nil {
		return fmt.Errorf("%w: predicate on %s is both a chain and a reverse chain", ErrInvalid, p.Param)
	}
	for _, b := range p.Bounds {
		if b.Field != Low && b.Field != High || b.Op < LT || b.Op > GE {
			return fmt.Errorf("%w: unknown bound %+v on %s", ErrInvalid, b, p.Param)
		}
	}
	switch {
	case p.Target != nil:
		return p.Target.validateFilter(depth + 1)
	case p.Has != nil:
		if p.Has.Query == nil || p.Has.Param == "" {
			return fmt.Errorf("%w: reverse chain without a plan or a parameter", ErrInvalid)
		}
		return p.Has.Query.validateFilter(depth + 1)
	}
	return nil
}

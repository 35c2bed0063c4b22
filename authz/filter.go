package authz

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sync"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// Filter is what a decision confines a token to on one resource type, in
// store terms: a resource is within reach when it is in one of
// Compartments (when set), owned by one of Practices (when set) and
// matches every clause of Where. The zero Filter confines nothing. Its
// slices are shared: read them, do not change them.
type Filter struct {
	// Compartments are patient compartments ("Patient/123"), as
	// store.Query.Compartments.
	Compartments []string
	// Practices are the owning practices in reach, as
	// store.Query.Practices. When set they always hold "": resources that
	// no practice owns (shared reference data: Practitioner, Organization,
	// Medication, …) are visible to every token whose scopes allow the
	// type.
	Practices []string
	// Where are the v2 granular scope queries, compiled by the search
	// compiler: every clause must hold.
	Where []store.Clause
}

// Confines reports whether f filters anything.
func (f Filter) Confines() bool {
	return len(f.Compartments) > 0 || len(f.Practices) > 0 || len(f.Where) > 0
}

// Apply narrows q (and nothing it nests: callers decide nested plans per
// type) to f. Compartments and practices q already names are intersected
// with f's; an empty intersection matches nothing.
func (f Filter) Apply(q *store.Query) {
	q.Compartments = narrow(q.Compartments, f.Compartments)
	q.Practices = narrow(q.Practices, f.Practices)
	if len(f.Where) > 0 {
		q.Where = slices.Concat(q.Where, f.Where)
	}
}

// nothing is a compartment and practice no resource has (compartments
// are "Patient/…", PINs letters and digits): a list holding only it
// matches nothing.
const nothing = "!none"

func narrow(have, allowed []string) []string {
	switch {
	case len(allowed) == 0:
		return have
	case len(have) == 0:
		return allowed
	}
	var out []string
	for _, h := range have {
		if slices.Contains(allowed, h) {
			out = append(out, h)
		}
	}
	if out == nil {
		return []string{nothing}
	}
	return out
}

// Admits reports whether a resource written with these patient
// compartments and this owning practice is within f's compartments and
// practices. Where is not evaluated: callers refuse writes under a
// granular filter.
func (f Filter) Admits(compartments []string, practice string) bool {
	if len(f.Compartments) > 0 && !slices.ContainsFunc(compartments, func(c string) bool { return slices.Contains(f.Compartments, c) }) {
		return false
	}
	return len(f.Practices) == 0 || slices.Contains(f.Practices, practice)
}

// OwnPractice is the one practice the filter reaches besides unowned
// data, and false when it reaches none or several (or all).
func (f Filter) OwnPractice() (string, bool) {
	own := ""
	for _, p := range f.Practices {
		if p == "" {
			continue
		}
		if own != "" {
			return "", false
		}
		own = p
	}
	return own, own != ""
}

// alt is one grant in store terms while grants are combined.
type alt struct {
	comps     []string // nil: any
	practices []string // nil: any
	where     []store.Clause
}

// filter combines a decision's grants (alternatives: a resource is in
// reach when any grant reaches it) into one Filter. It serves the
// combinations one store query expresses exactly, merging two grants at a
// time until one is left:
//
//   - equal everywhere but their practices: the union of the practices;
//   - equal everywhere but their compartments: the union of the
//     compartments;
//   - equal compartments and practices, each with a granular query of one
//     parameter: one clause OR-ing both (category=laboratory OR
//     category=vital-signs; parameters may differ);
//   - a grant without a query beside a granular one of equal compartments
//     and practices: the ungranular one.
//
// Any other combination (a patient compartment OR a granular query over
// the practice, granular queries of several parameters each, …) is
// refused with the reason; refusing never shows more than the scopes
// allow.
//
// Reading a type that no patient's compartment holds (Practitioner,
// Organization, Location, Medication, …: the data a patient's record
// refers to) is not confined to the patient compartment, which would hide
// all of it; the grant's practices still apply. Writing such a type with
// a patient-confined grant stays refused.
func (g *Guard) filter(typ string, grants []policy.Grant, read bool) (Filter, string, error) {
	outside := read && search.OutsidePatientCompartments(typ)
	alts := make([]alt, 0, len(grants))
	for _, gr := range grants {
		a := alt{practices: gr.Practices}
		if gr.Compartment != "" && !outside {
			a.comps = []string{gr.Compartment}
		}
		if gr.Query != nil {
			where, reason := g.compile(typ, gr.Query)
			if reason != "" {
				return Filter{}, reason, nil
			}
			a.where = where
		}
		alts = append(alts, a)
	}
	for len(alts) > 1 {
		merged := false
		for i := 0; i < len(alts) && !merged; i++ {
			for j := i + 1; j < len(alts); j++ {
				if m, ok := merge(alts[i], alts[j]); ok {
					alts[i] = m
					alts = slices.Delete(alts, j, j+1)
					merged = true
					break
				}
			}
		}
		if !merged {
			return Filter{}, fmt.Sprintf("%d alternative grants differ in more than one of patient compartment, practices and granular query", len(alts)), nil
		}
	}
	a := alts[0]
	f := Filter{Compartments: a.comps, Where: a.where}
	if a.practices != nil {
		f.Practices = append(slices.Clone(a.practices), "")
	}
	return f, "", nil
}

func merge(a, b alt) (alt, bool) {
	sameC, sameP := sameSet(a.comps, b.comps), sameSet(a.practices, b.practices)
	sameW := reflect.DeepEqual(a.where, b.where)
	switch {
	case sameC && sameP && sameW:
		return a, true
	case sameC && sameP && len(a.where) == 0:
		return a, true
	case sameC && sameP && len(b.where) == 0:
		return b, true
	case sameC && sameP && len(a.where) == 1 && len(b.where) == 1:
		a.where = []store.Clause{slices.Concat(a.where[0], b.where[0])}
		return a, true
	case sameC && sameW:
		a.practices = union(a.practices, b.practices)
		return a, true
	case sameP && sameW:
		a.comps = union(a.comps, b.comps)
		return a, true
	}
	return alt{}, false
}

// sameSet reports whether a and b hold the same members, nil ("any")
// equalling only nil.
func sameSet(a, b []string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// union of two filters' lists, nil ("any") absorbing.
func union(a, b []string) []string {
	if a == nil || b == nil {
		return nil
	}
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// compile turns a granular scope query into store clauses with the
// search compiler, remembered per type and query. A query that is not a
// plain filter (unknown parameters, _id, _lastUpdated, result parameters)
// comes back as a reason to refuse.
func (g *Guard) compile(typ string, q url.Values) ([]store.Clause, string) {
	key := typ + "?" + q.Encode()
	if c, ok := g.queries.get(key); ok {
		return c.where, c.reason
	}
	var c compiled
	s, err := search.Compile(typ, q, search.Options{Strict: true, BaseURL: g.baseURL})
	switch {
	case err != nil:
		c.reason = fmt.Sprintf("granular scope query %q: %v", q.Encode(), err)
	case len(s.Query.Where) == 0 || len(s.Query.IDs) > 0 || s.Query.Since != "" || s.Query.Before != "" || s.Query.Sort != nil ||
		s.Query.Total || s.Query.CountOnly || s.Query.Cursor != "" || s.Query.Count != search.DefaultCount ||
		len(s.Includes)+len(s.RevIncludes) > 0 || s.Subset != nil:
		c.reason = fmt.Sprintf("granular scope query %q is not a plain search filter", q.Encode())
	default:
		c.where = s.Query.Where
	}
	g.queries.put(key, c)
	return c.where, c.reason
}

type compiled struct {
	where  []store.Clause
	reason string
}

// queryCache remembers compiled granular queries; it forgets them all when
// full (the scopes a deployment grants are few).
type queryCache struct {
	mu sync.RWMutex
	m  map[string]compiled
}

const maxCachedQueries = 4096

func (c *queryCache) get(key string) (compiled, bool) {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	return v, ok
}

func (c *queryCache) put(key string, v compiled) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedQueries {
		c.m = make(map[string]compiled)
	}
	c.m[key] = v
	c.mu.Unlock()
}

package search

import (
	"fmt"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// prefixes are the comparators of date, number and quantity values.
var prefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

// splitPrefix separates a comparator prefix from the value.
func splitPrefix(v string) (string, string) {
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		for _, p := range prefixes {
			if strings.HasPrefix(v, p) {
				return p, v[2:]
			}
		}
	}
	return "eq", v
}

// rangeBounds turns a comparator and the range [ql, qh] a search value
// denotes into conditions on an indexed range [Low, High], after FHIR R4
// search §3.1.1.4.7 (date) and §3.1.1.4.1 (number). Each alternative is a
// set of bounds that must all hold; an entry matches when any alternative
// does. eq: the indexed range lies within the search range; gt: it reaches
// above the search range; ge: gt or eq; sa: it starts after the search
// range; ap: the two overlap. ne is eq negated.
func rangeBounds(prefix, ql, qh string) (alternatives [][]store.Bound, not bool) {
	b := func(f store.BoundField, op store.CmpOp, arg string) store.Bound {
		return store.Bound{Field: f, Op: op, Arg: arg}
	}
	within := []store.Bound{b(store.Low, store.GE, ql), b(store.High, store.LE, qh)}
	switch prefix {
	case "eq", "ne":
		return [][]store.Bound{within}, prefix == "ne"
	case "gt":
		return [][]store.Bound{{b(store.High, store.GT, qh)}}, false
	case "lt":
		return [][]store.Bound{{b(store.Low, store.LT, ql)}}, false
	case "ge":
		return [][]store.Bound{{b(store.High, store.GT, qh)}, within}, false
	case "le":
		return [][]store.Bound{{b(store.Low, store.LT, ql)}, within}, false
	case "sa":
		return [][]store.Bound{{b(store.Low, store.GT, qh)}}, false
	case "eb":
		return [][]store.Bound{{b(store.High, store.LT, ql)}}, false
	default: // ap: the ranges overlap
		return [][]store.Bound{{b(store.Low, store.LE, qh), b(store.High, store.GE, ql)}}, false
	}
}

// rangePredicates are the predicates, one per alternative, that compare
// the indexed ranges of code with a [prefix]value; template carries what
// else each must match (a quantity's unit).
func rangePredicates(code, prefix, ql, qh string, template store.Predicate) []store.Predicate {
	alternatives, not := rangeBounds(prefix, ql, qh)
	preds := make([]store.Predicate, len(alternatives))
	for i, bounds := range alternatives {
		preds[i] = template
		preds[i].Param, preds[i].Bounds, preds[i].Not = code, bounds, not
	}
	return preds
}

func datePredicates(code, key, v string) ([]store.Predicate, error) {
	prefix, value := splitPrefix(v)
	ql, qh, err := DateRange(value)
	if err != nil {
		return nil, &ParamError{Param: key, Msg: fmt.Sprintf("%q is not a date: expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|±hh:mm]]]] with prefix eq, ne, gt, lt, ge, le, sa, eb or ap", v)}
	}
	return rangePredicates(code, prefix, ql, qh, store.Predicate{Match: store.MatchEqual}), nil
}

func numberPredicates(code, key, v string, template store.Predicate) ([]store.Predicate, error) {
	prefix, value := splitPrefix(v)
	lo, hi, err := NumberRange(value)
	if err != nil {
		return nil, &ParamError{Param: key, Msg: fmt.Sprintf("%q is not a number (with an optional prefix)", v)}
	}
	return rangePredicates(code, prefix, EncodeNumber(lo), EncodeNumber(hi), template), nil
}

// quantityPredicates reads [prefix]number[|system|code] and [prefix]number||code.
func quantityPredicates(code, key, v string) ([]store.Predicate, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 1 && len(parts) != 3 {
		return nil, &ParamError{Param: key, Msg: "expected [prefix]number|system|code"}
	}
	unit := store.Predicate{Match: store.MatchAny} // any unit
	if len(parts) == 3 && parts[2] != "" {
		unit.Match, unit.Value = store.MatchEqual, parts[2]
		if parts[1] != "" {
			unit.System, unit.HasSystem = parts[1], true
		}
	}
	return numberPredicates(code, key, parts[0], unit)
}

// lastUpdated bounds the version time; it has no index entries.
func (s *Search) lastUpdated(key, v string) error {
	prefix, value := splitPrefix(v)
	ql, qh, err := DateRange(value)
	if err != nil {
		return &ParamError{Param: key, Msg: fmt.Sprintf("%q is not an instant", v)}
	}
	after := func(instant string) string { // the first instant past qh
		t, _ := time.Parse(instantLayout, instant)
		return formatInstant(t.Add(time.Millisecond))
	}
	since, before := "", ""
	switch prefix {
	case "eq", "ap":
		since, before = ql, after(qh)
	case "gt", "sa":
		since = after(qh)
	case "ge":
		since = ql
	case "lt", "eb":
		before = ql
	case "le":
		before = after(qh)
	default:
		return &ParamError{Param: key, Msg: "prefix " + prefix + " is not supported on _lastUpdated"}
	}
	if since > s.Query.Since {
		s.Query.Since = since
	}
	if before != "" && (s.Query.Before == "" || before < s.Query.Before) {
		s.Query.Before = before
	}
	return nil
}

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
// search §3.1.1.4.7 (date) and §3.1.1.4.1 (number): eq means the indexed
// range lies within the search range, gt that it reaches above it, sa that
// it starts after it, and so on. ne is eq negated.
func rangeBounds(prefix, ql, qh string) (bounds []store.Bound, not bool) {
	b := func(f store.BoundField, op store.CmpOp, arg string) store.Bound {
		return store.Bound{Field: f, Op: op, Arg: arg}
	}
	switch prefix {
	case "eq", "ne":
		return []store.Bound{b(store.Low, store.GE, ql), b(store.High, store.LE, qh)}, prefix == "ne"
	case "gt":
		return []store.Bound{b(store.High, store.GT, qh)}, false
	case "lt":
		return []store.Bound{b(store.Low, store.LT, ql)}, false
	case "ge":
		return []store.Bound{b(store.High, store.GE, ql)}, false
	case "le":
		return []store.Bound{b(store.Low, store.LE, qh)}, false
	case "sa":
		return []store.Bound{b(store.Low, store.GT, qh)}, false
	case "eb":
		return []store.Bound{b(store.High, store.LT, ql)}, false
	default: // ap: the ranges overlap
		return []store.Bound{b(store.Low, store.LE, qh), b(store.High, store.GE, ql)}, false
	}
}

func dateBounds(key, v string) ([]store.Bound, bool, error) {
	prefix, value := splitPrefix(v)
	ql, qh, err := DateRange(value)
	if err != nil {
		return nil, false, &ParamError{Param: key, Msg: fmt.Sprintf("%q is not a date: expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|±hh:mm]]]] with prefix eq, ne, gt, lt, ge, le, sa, eb or ap", v)}
	}
	b, not := rangeBounds(prefix, ql, qh)
	return b, not, nil
}

func numberBounds(key, v string) ([]store.Bound, bool, error) {
	prefix, value := splitPrefix(v)
	lo, hi, err := NumberRange(value)
	if err != nil {
		return nil, false, &ParamError{Param: key, Msg: fmt.Sprintf("%q is not a number (with an optional prefix)", v)}
	}
	b, not := rangeBounds(prefix, EncodeNumber(lo), EncodeNumber(hi))
	return b, not, nil
}

// quantityPredicate reads [prefix]number[|system|code] and [prefix]number||code.
func quantityPredicate(code, key, v string) ([]store.Predicate, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 1 && len(parts) != 3 {
		return nil, &ParamError{Param: key, Msg: "expected [prefix]number|system|code"}
	}
	b, not, err := numberBounds(key, parts[0])
	if err != nil {
		return nil, err
	}
	pred := store.Predicate{Param: code, Bounds: b, Not: not}
	if len(parts) == 3 && parts[2] != "" {
		pred.Match, pred.Value = store.MatchEqual, parts[2]
		if parts[1] != "" {
			pred.System, pred.HasSystem = parts[1], true
		}
	}
	return []store.Predicate{pred}, nil
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

package mongo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// How a range predicate holds for one entry, not for the ends of two.
//
// rng keeps the Low and High of a parameter's entries in two arrays, and
// each Bound is a condition on one of them, which MongoDB and FerretDB
// satisfy with any element: for a resource with two dates, "within
// February" (Low >= Feb 1 and High <= Feb 29) would hold with the Low of
// one and the High of the other, and a quantity's unit would be checked
// against another entry than its number. $elemMatch would keep them
// together, but FerretDB lacks it.
//
// So each range entry is also stored whole, as one string in rngx.<param>:
// "<Low> <High> <System>|<Value>" (dates: "2024-02-01T00:00:00.000Z
// 2024-02-01T23:59:59.999Z |"), and a predicate with more than one Bound,
// or with Bounds and a Value, adds one anchored regular expression on that
// array which only an entry meeting every Bound (and the Value) matches:
// comparisons of order-preserving strings are regular languages (see
// between). The one-bound conditions on rng stay, for the index; the
// expression, which no index serves, only drops the documents they let
// through wrongly. Documents written before rngx existed (no rngx at all)
// keep the old, per-end matching until reindexed.

// rangeSeparator separates the parts of an rngx entry; Low and High never
// contain it (dates and fhir/search.EncodeNumber strings).
const rangeSeparator = " "

// rangeEntries lays out the whole range entries of a version's search
// values, per parameter in parameter order.
func rangeEntries(values []store.IndexValue) bson.D {
	byField := map[string][]string{}
	var fields []string
	for _, v := range values {
		if v.Low == "" && v.High == "" || strings.Contains(v.Low+v.High, rangeSeparator) {
			continue
		}
		f := fieldName(v.Param)
		if _, ok := byField[f]; !ok {
			fields = append(fields, f)
		}
		byField[f] = append(byField[f], v.Low+rangeSeparator+v.High+rangeSeparator+v.System+"|"+v.Value)
	}
	slices.Sort(fields)
	var out bson.D
	for _, f := range fields {
		out = append(out, bson.E{Key: f, Value: slices.Compact(slices.Sorted(slices.Values(byField[f])))})
	}
	return out
}

// exactRange is the condition that one entry of p.Param meets all of p's
// Bounds and its Value (see rangeEntries); ok is false when p needs none
// (one Bound and no Value is exact as it is) or its arguments are not
// printable ASCII, which no date or number is.
func exactRange(p store.Predicate) (bson.D, bool) {
	withValue := p.Match == store.MatchEqual && p.Value != ""
	if p.Target != nil || len(p.Bounds) == 0 || len(p.Bounds) == 1 && !withValue {
		return nil, false
	}
	var lows, highs []store.Bound
	for _, b := range p.Bounds {
		if b.Field == store.Low {
			lows = append(lows, b)
		} else {
			highs = append(highs, b)
		}
	}
	low, ok1 := between(lows)
	high, ok2 := between(highs)
	if !ok1 || !ok2 {
		return nil, false
	}
	tail := ""
	switch {
	case !withValue:
	case p.HasSystem && p.System != "":
		tail = regexp.QuoteMeta(p.System+"|"+p.Value) + "$"
	case p.HasSystem:
		tail = `\|` + regexp.QuoteMeta(p.Value) + "$"
	default:
		tail = `[^|]*\|` + regexp.QuoteMeta(p.Value) + "$"
	}
	pattern := "^" + low + rangeSeparator + high + rangeSeparator + tail
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "rngx." + fieldName(p.Param), Value: bson.Regex{Pattern: pattern}}},
		bson.D{{Key: "rngx", Value: bson.D{{Key: "$exists", Value: false}}}},
	}}}, true
}

// A regular expression for the strings s (without the separator) that
// satisfy comparisons with arguments, as Go and MongoDB compare strings
// (byte-wise; these are ASCII): s >= a is "s starts with a, or with a[:i]
// and then a byte above a[i]", s <= b "s is a prefix of b, or starts with
// b[:i] and then a byte below b[i]", and both at once split at the first
// byte where a and b differ.

// char is any byte of an rngx Low or High.
const char = `[^ ]`

// never matches nothing: an empty range.
const never = `\b\B`

// between is the expression for the strings meeting every comparison of
// bounds (all on one end of the range).
func between(bounds []store.Bound) (string, bool) {
	var lo, hi *store.Bound
	for i := range bounds {
		b := &bounds[i]
		if !printable(b.Arg) {
			return "", false
		}
		switch strict := b.Op == store.GT || b.Op == store.LT; {
		case b.Op == store.GT || b.Op == store.GE:
			if lo == nil || b.Arg > lo.Arg || b.Arg == lo.Arg && strict {
				lo = b
			}
		default:
			if hi == nil || b.Arg < hi.Arg || b.Arg == hi.Arg && strict {
				hi = b
			}
		}
	}
	switch {
	case lo == nil && hi == nil:
		return char + "*", true
	case hi == nil:
		return atLeast(lo.Arg, lo.Op == store.GT), true
	case lo == nil:
		return atMost(hi.Arg, hi.Op == store.LT, false), true
	}
	a, b := lo.Arg, hi.Arg
	if a > b || a == b && (lo.Op == store.GT || hi.Op == store.LT) {
		return never, true
	}
	k := 0
	for k < len(a) && a[k] == b[k] {
		k++
	}
	if k == len(a) {
		// a is a prefix of b: s is a followed by at most the rest of b.
		return regexp.QuoteMeta(a) + atMost(b[k:], hi.Op == store.LT, lo.Op == store.GT), true
	}
	alts := []string{regexp.QuoteMeta(a[:k+1]) + atLeast(a[k+1:], lo.Op == store.GT)}
	if a[k]+1 < b[k] {
		alts = append(alts, regexp.QuoteMeta(a[:k])+fmt.Sprintf(`[\x%02x-\x%02x]`, a[k]+1, b[k]-1)+char+"*")
	}
	alts = append(alts, regexp.QuoteMeta(b[:k+1])+atMost(b[k+1:], hi.Op == store.LT, false))
	return "(?:" + strings.Join(alts, "|") + ")", true
}

// atLeast matches the strings after a (strict) or from a on.
func atLeast(a string, strict bool) string {
	var alts []string
	for i := 0; i < len(a); i++ {
		alts = append(alts, regexp.QuoteMeta(a[:i])+fmt.Sprintf(`[^\x00-\x%02x]`, a[i])+char+"*")
	}
	rest := char + "*"
	if strict {
		rest = char + "+"
	}
	alts = append(alts, regexp.QuoteMeta(a)+rest)
	return "(?:" + strings.Join(alts, "|") + ")"
}

// atMost matches the strings before b (strict) or up to b, but the empty
// string when nonEmpty.
func atMost(b string, strict, nonEmpty bool) string {
	var alts []string
	for i := 0; i < len(b); i++ {
		below := `[\x00-\x1f]` // the separator, a space, is no byte of an entry
		if b[i] > '!' {
			below = fmt.Sprintf(`[\x00-\x1f!-\x%02x]`, b[i]-1)
		}
		alt := regexp.QuoteMeta(b[:i]) + "(?:" + below + char + "*)"
		if i > 0 || !nonEmpty {
			alt += "?" // or b[:i] itself, a prefix of b
		}
		alts = append(alts, alt)
	}
	if !strict && (b != "" || !nonEmpty) {
		alts = append(alts, regexp.QuoteMeta(b))
	}
	if len(alts) == 0 {
		return never
	}
	return "(?:" + strings.Join(alts, "|") + ")"
}

// printable reports whether s is printable ASCII without the separator.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

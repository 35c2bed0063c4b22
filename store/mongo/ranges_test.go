package mongo

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestExactRangeMatchesOneEntry compares, over random entries and
// predicates, the expression exactRange makes with the comparisons it
// stands for: an entry matches it exactly when its Low and High meet every
// Bound and its system and value meet the predicate's.
func TestExactRangeMatchesOneEntry(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const alphabet = "!#09:;AZ~"
	word := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	holds := func(v string, b store.Bound) bool {
		switch b.Op {
		case store.LT:
			return v < b.Arg
		case store.LE:
			return v <= b.Arg
		case store.GT:
			return v > b.Arg
		}
		return v >= b.Arg
	}
	systems, values := []string{"", "http://u"}, []string{"mg", "kg"}
	for range 3000 {
		p := store.Predicate{Param: "value", Match: store.MatchEqual}
		for range 1 + rng.IntN(4) {
			p.Bounds = append(p.Bounds, store.Bound{Field: store.BoundField(rng.IntN(2)), Op: store.CmpOp(rng.IntN(4)), Arg: word()})
		}
		switch rng.IntN(4) {
		case 1:
			p.Value = values[rng.IntN(2)]
		case 2:
			p.Value, p.System, p.HasSystem = values[rng.IntN(2)], systems[rng.IntN(2)], true
		}
		cond, ok := exactRange(p)
		if !ok {
			if len(p.Bounds) > 1 || p.Value != "" {
				t.Fatalf("no expression for %+v", p)
			}
			continue
		}
		pattern := cond[0].Value.(bson.A)[0].(bson.D)[0].Value.(bson.Regex).Pattern
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		for range 20 {
			v := store.IndexValue{Param: "value", Low: word(), High: word(), System: systems[rng.IntN(2)], Value: values[rng.IntN(2)]}
			if v.Low == "" && v.High == "" {
				continue // not a range entry
			}
			want := true
			for _, b := range p.Bounds {
				end := v.Low
				if b.Field == store.High {
					end = v.High
				}
				want = want && holds(end, b)
			}
			if p.Value != "" {
				want = want && v.Value == p.Value && (!p.HasSystem || v.System == p.System)
			}
			entry := rangeEntries([]store.IndexValue{v})
			if len(entry) == 0 {
				t.Fatalf("no entry stored for %+v", v)
			}
			s := entry[0].Value.([]string)[0]
			if got := re.MatchString(s); got != want {
				t.Fatalf("entry %q against %+v: match = %v, want %v (pattern %s)", s, p, got, want, pattern)
			}
		}
	}
}

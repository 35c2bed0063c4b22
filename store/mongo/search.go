package mongo

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Search runs a plan as one filter document on the type's collection (see
// currentDoc for the fields it reads), after one query per chain (Target)
// or reverse chain (Has) that turns it into an $in list of ids. Pages
// continue by keyset, like the embedded engine's: a cursor holds the sort
// values and the id of the row a page ended at (Next) or began at (Prev),
// and the next query asks for the rows after (before) it.
//
// Where it differs from the contract of store.Query, and why:
//   - Order: ties and an empty Sort fall back to the logical id, not to
//     the order of creation, which documents do not record. A search
//     parameter's sort values (srt) have no index (a wildcard index leaves
//     out the documents without the field, which must come last; an index
//     per sortable parameter would be one per parameter of the registry),
//     so the server sorts the filter's matches, keeping the first Count+1:
//     cheap for the usual patient-scoped search, a read of every live
//     resource of the type for a search sorted by a parameter alone.
//   - Ranges: a predicate's Bounds and Value hold for one entry of the
//     parameter (see ranges.go), except on documents written before rngx
//     was stored, where each Bound is checked against some entry, and
//     separately from the Value, until they are reindexed.
//   - An empty System (|code) is "an entry code=value and no entry
//     code=<system>|value": exact unless one resource has the code both with
//     and without a system.
//   - A chain or reverse chain resolving to more than Options.MaxChainIDs
//     ids is an
//     error wrapping store.ErrInvalid ("chain too broad").
func (s *Store) Search(ctx context.Context, q store.Query) (store.SearchPage, error) {
	if err := s.enter(); err != nil {
		return store.SearchPage{}, err
	}
	defer s.leave()
	if err := q.Validate(); err != nil {
		return store.SearchPage{}, fmt.Errorf("mongo store: %w", err)
	}
	order := orderOf(q.Sort)
	var pos *cursor.Position
	if q.Cursor != "" {
		p, err := decodeSearchCursor(q, order)
		if err != nil {
			return store.SearchPage{}, fmt.Errorf("mongo store: %w", err)
		}
		pos = &p
	}
	page := store.SearchPage{Total: -1}
	if !validType(q.Type) {
		if q.Total || q.CountOnly {
			page.Total = 0
		}
		return page, nil
	}
	filter, err := s.filter(ctx, &q)
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	c := s.db.Collection(q.Type)
	if q.Total || q.CountOnly {
		n, err := c.CountDocuments(ctx, filter)
		if err != nil {
			return store.SearchPage{}, s.fail(ctx, err)
		}
		page.Total = int(n)
	}
	if q.CountOnly {
		return page, nil
	}
	back := pos != nil && pos.Back
	if back {
		order = order.reversed()
	}
	if pos != nil {
		filter = bson.D{{Key: "$and", Value: bson.A{filter, order.after(pos)}}}
	}
	opts := options.Find().SetSort(order.spec()).SetLimit(int64(q.Count) + 1).SetProjection(order.projection())
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	var docs []currentDoc
	if err := cur.All(ctx, &docs); err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	more := len(docs) > q.Count
	docs = docs[:min(len(docs), q.Count)]
	if back {
		// Read nearest first, shown in the plan's order.
		slices.Reverse(docs)
	}
	for _, d := range docs {
		page.Resources = append(page.Resources, store.Resource{Type: q.Type, ID: d.ID, VersionID: d.Version, LastUpdated: d.LastUpdated.UTC(), Body: []byte(d.Body)})
	}
	if len(docs) == 0 {
		return page, nil
	}
	// A page read backwards ends where the page it was asked from began,
	// so there is a next one; one read forwards from a cursor has one
	// before it.
	if more || back {
		page.Next = encodeSearchCursor(q, docs[len(docs)-1], false)
	}
	if more && back || !back && pos != nil {
		page.Prev = encodeSearchCursor(q, docs[0], true)
	}
	return page, nil
}

// filter is the filter document selecting the live resources of q.
func (s *Store) filter(ctx context.Context, q *store.Query) (bson.D, error) {
	and := bson.A{bson.D{{Key: "deleted", Value: false}}}
	if len(q.IDs) > 0 {
		and = append(and, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: q.IDs}}}})
	}
	if len(q.Compartments) > 0 {
		and = append(and, bson.D{{Key: "compartments", Value: bson.D{{Key: "$in", Value: q.Compartments}}}})
	}
	if len(q.Practices) > 0 {
		and = append(and, practiceFilter(q.Practices))
	}
	if q.Since != "" {
		and = append(and, bson.D{{Key: "lastUpdated", Value: bson.D{{Key: "$gte", Value: instant(q.Since)}}}})
	}
	if q.Before != "" {
		and = append(and, bson.D{{Key: "lastUpdated", Value: bson.D{{Key: "$lt", Value: instant(q.Before)}}}})
	}
	for _, c := range q.Where {
		var or bson.A
		for _, p := range c {
			d, err := s.predicate(ctx, q.Type, p)
			if err != nil {
				return nil, err
			}
			or = append(or, d)
		}
		if len(or) == 1 {
			and = append(and, or[0])
		} else {
			and = append(and, bson.D{{Key: "$or", Value: or}})
		}
	}
	return bson.D{{Key: "$and", Value: and}}, nil
}

// practiceFilter keeps documents owned by one of practices, "" standing
// for no practice: documents of resources without one have no practice
// field (it is omitted when empty), which $in "" would not match, but
// $in null does (null matches a missing field), through the same index.
func practiceFilter(practices []string) bson.D {
	in := make(bson.A, 0, len(practices))
	for _, p := range practices {
		if p == "" {
			in = append(in, nil)
		} else {
			in = append(in, p)
		}
	}
	return bson.D{{Key: "practice", Value: bson.D{{Key: "$in", Value: in}}}}
}

// instant converts an instant in the index layout; Validate has checked it.
func instant(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t.Truncate(time.Millisecond).UTC()
}

// predicate is the condition of one predicate on a document of typ.
func (s *Store) predicate(ctx context.Context, typ string, p store.Predicate) (bson.D, error) {
	var d bson.D
	var err error
	switch {
	case p.Has != nil:
		d, err = s.reverseChain(ctx, typ, p.Has)
	case p.Missing:
		d = hasEntry(p.Param)
		if !p.Not {
			return bson.D{{Key: "$nor", Value: bson.A{d}}}, nil
		}
		return d, nil
	default:
		d, err = s.entry(ctx, p)
	}
	if err != nil {
		return nil, err
	}
	if p.Not {
		d = bson.D{{Key: "$nor", Value: bson.A{d}}}
	}
	return d, nil
}

// hasEntry matches documents with any index value of param.
func hasEntry(param string) bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "idx", Value: anchored(param + "=")}},
		bson.D{{Key: "rng." + fieldName(param), Value: bson.D{{Key: "$exists", Value: true}}}},
	}}}
}

// anchored is a regular expression matching strings that start with
// prefix, then match rest (a regular expression itself).
func anchored(prefix string, rest ...string) bson.Regex {
	return bson.Regex{Pattern: "^" + regexp.QuoteMeta(prefix) + strings.Join(rest, "")}
}

// entry is the condition "some index value of p.Param satisfies p".
func (s *Store) entry(ctx context.Context, p store.Predicate) (bson.D, error) {
	key := p.Param + "="
	if p.HasSystem && p.System != "" {
		key += p.System + "|"
	}
	var and bson.A
	switch {
	case p.Target != nil:
		ids, err := s.ids(ctx, p.Target)
		if err != nil {
			return nil, err
		}
		vals := make([]string, len(ids))
		for i, id := range ids {
			vals[i] = key + p.Target.Type + "/" + id
		}
		and = append(and, bson.D{{Key: "idx", Value: bson.D{{Key: "$in", Value: vals}}}})
	case p.Match == store.MatchEqual && p.Value == "" && len(p.Bounds) > 0:
		// Range entries (dates, numbers) have no idx key; rng carries them.
	case p.Match == store.MatchEqual:
		and = append(and, bson.D{{Key: "idx", Value: key + p.Value}})
	case p.Match == store.MatchPrefix:
		and = append(and, bson.D{{Key: "idx", Value: anchored(key + p.Value)}})
	case p.Match == store.MatchContains:
		and = append(and, bson.D{{Key: "idx", Value: anchored(key, ".*", regexp.QuoteMeta(p.Value))}})
	case len(p.Bounds) == 0:
		and = append(and, hasEntry(p.Param))
	}
	if p.HasSystem && p.System == "" && p.Match != store.MatchAny && p.Target == nil {
		// |code: the value must not be there with a system.
		var system bson.Regex
		switch p.Match {
		case store.MatchEqual:
			system = anchored(key, `.*\|`, regexp.QuoteMeta(p.Value), "$")
		case store.MatchPrefix:
			system = anchored(key, `.*\|`, regexp.QuoteMeta(p.Value))
		default:
			system = anchored(key, `.*\|.*`, regexp.QuoteMeta(p.Value))
		}
		and = append(and, bson.D{{Key: "$nor", Value: bson.A{bson.D{{Key: "idx", Value: system}}}}})
	}
	for _, b := range p.Bounds {
		f := "rng." + fieldName(p.Param) + ".lo"
		if b.Field == store.High {
			f = "rng." + fieldName(p.Param) + ".hi"
		}
		and = append(and, bson.D{{Key: f, Value: bson.D{{Key: mongoOps[b.Op], Value: b.Arg}}}})
	}
	if d, ok := exactRange(p); ok {
		and = append(and, d)
	}
	if len(and) == 1 {
		return and[0].(bson.D), nil
	}
	return bson.D{{Key: "$and", Value: and}}, nil
}

var mongoOps = map[store.CmpOp]string{store.LT: "$lt", store.LE: "$lte", store.GT: "$gt", store.GE: "$gte"}

// ids returns the ids of the resources matching q, at most s.maxChainIDs.
func (s *Store) ids(ctx context.Context, q *store.Query) ([]string, error) {
	if !validType(q.Type) {
		return nil, nil
	}
	f, err := s.filter(ctx, q)
	if err != nil {
		return nil, err
	}
	cur, err := s.db.Collection(q.Type).Find(ctx, f, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(s.maxChainIDs)+1))
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	if len(docs) > s.maxChainIDs {
		return nil, fmt.Errorf("%w: chain too broad: more than %d %s resources match", store.ErrInvalid, s.maxChainIDs, q.Type)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

// reverseChain is the condition "referenced through h.Param by a resource
// matching h.Query": the ids those resources point at, as an $in list.
func (s *Store) reverseChain(ctx context.Context, typ string, h *store.ReverseChain) (bson.D, error) {
	none := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}
	if !validType(h.Query.Type) {
		return none, nil
	}
	f, err := s.filter(ctx, h.Query)
	if err != nil {
		return nil, err
	}
	prefix := h.Param + "=" + typ + "/"
	f = bson.D{{Key: "$and", Value: bson.A{f, bson.D{{Key: "idx", Value: anchored(prefix)}}}}}
	cur, err := s.db.Collection(h.Query.Type).Find(ctx, f, options.Find().SetProjection(bson.D{{Key: "idx", Value: 1}}).SetLimit(int64(s.maxChainIDs)+1))
	if err != nil {
		return nil, err
	}
	var docs []struct {
		Idx []string `bson:"idx"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	if len(docs) > s.maxChainIDs {
		return nil, fmt.Errorf("%w: chain too broad: more than %d %s resources match", store.ErrInvalid, s.maxChainIDs, h.Query.Type)
	}
	seen := map[string]bool{}
	ids := bson.A{}
	for _, d := range docs {
		for _, v := range d.Idx {
			if id, ok := strings.CutPrefix(v, prefix); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > s.maxChainIDs {
		return nil, fmt.Errorf("%w: chain too broad: more than %d %s resources referenced", store.ErrInvalid, s.maxChainIDs, typ)
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, nil
}

package mongo

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Search runs a plan as one filter document on the type's collection (see
// currentDoc for the fields it reads), after one query per chain (Target)
// or reverse chain (Has) that turns it into an $in list of ids.
//
// Where it differs from the contract of store.Query, and why:
//   - Order: Sort may name _lastUpdated and _id only; a search parameter
//     is an error wrapping store.ErrUnsupported (a document's sort value
//     would be the lowest or highest of an array, which FerretDB cannot
//     compute). Ties and an empty Sort fall back to the logical id, not to
//     the order of creation, which documents do not record.
//   - Ranges: a predicate's Bounds are each checked against some entry of
//     the parameter, and separately from its Value: lo and hi live in
//     parallel arrays (rng.<param>.lo, .hi), which FerretDB cannot match
//     element by element. For a parameter with one value per resource (most
//     dates and quantities) this is exact.
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
	sort := bson.D{}
	for _, k := range q.Sort {
		f, ok := sortFields[k.Param]
		if !ok {
			return store.SearchPage{}, fmt.Errorf("mongo store: sort by %s: %w", k.Param, store.ErrUnsupported)
		}
		dir := 1
		if k.Desc {
			dir = -1
		}
		sort = append(sort, bson.E{Key: f, Value: dir})
	}
	if !slices.ContainsFunc(sort, func(e bson.E) bool { return e.Key == "_id" }) {
		sort = append(sort, bson.E{Key: "_id", Value: 1})
	}
	var after bson.D
	if q.Cursor != "" {
		var err error
		if after, err = afterCursor(q); err != nil {
			return store.SearchPage{}, fmt.Errorf("mongo store: %w", err)
		}
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
	if after != nil {
		filter = bson.D{{Key: "$and", Value: bson.A{filter, after}}}
	}
	cur, err := c.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(q.Count)+1).SetProjection(readProjection))
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	var docs []currentDoc
	if err := cur.All(ctx, &docs); err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	for i, d := range docs {
		if i == q.Count {
			page.Next = nextCursor(q, docs[i-1])
			break
		}
		page.Resources = append(page.Resources, store.Resource{Type: q.Type, ID: d.ID, VersionID: d.Version, LastUpdated: d.LastUpdated.UTC(), Body: []byte(d.Body)})
	}
	return page, nil
}

// sortFields are the sort keys this engine orders by natively.
var sortFields = map[string]string{"_lastUpdated": "lastUpdated", "_id": "_id"}

func nextCursor(q store.Query, d currentDoc) string {
	pos := cursor.Position{Tie: d.ID}
	for _, k := range q.Sort {
		v := d.ID
		if k.Param == "_lastUpdated" {
			v = strconv.FormatInt(d.LastUpdated.UnixMilli(), 10)
		}
		pos.Keys = append(pos.Keys, &v)
	}
	return cursor.Encode(q, pos)
}

// afterCursor is the keyset condition "sorts after the cursor's document":
// after on a key, or equal on it and after on the rest; _id breaks ties.
func afterCursor(q store.Query) (bson.D, error) {
	pos, err := cursor.Decode(q, q.Cursor)
	if err != nil {
		return nil, err
	}
	cond := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: pos.Tie}}}}
	for i := len(q.Sort) - 1; i >= 0; i-- {
		k := q.Sort[i]
		if pos.Keys[i] == nil {
			return nil, fmt.Errorf("%w: search cursor: bad position", store.ErrInvalid)
		}
		var v any = *pos.Keys[i]
		if k.Param == "_lastUpdated" {
			ms, err := strconv.ParseInt(*pos.Keys[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: search cursor: bad position", store.ErrInvalid)
			}
			v = time.UnixMilli(ms).UTC()
		}
		op := "$gt"
		if k.Desc {
			op = "$lt"
		}
		f := sortFields[k.Param]
		cond = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: f, Value: bson.D{{Key: op, Value: v}}}},
			bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: f, Value: v}}, cond}}},
		}}}
	}
	return cond, nil
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
		and = append(and, bson.D{{Key: "practice", Value: bson.D{{Key: "$in", Value: q.Practices}}}})
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

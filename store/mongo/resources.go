package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collections other than the per-type ones. Resource types start with a
// capital letter, these never do, so the names cannot collide.
const (
	historyCollection  = "history"
	countersCollection = "counters"
	metaCollection     = "meta"
	recordPrefix       = "rec_"
)

// currentDoc is the current version of a resource, in the collection named
// after its type. For example, in Observation:
//
//	{_id: "o1", version: 2, lastUpdated: ISODate("2025-03-01T10:00:00.123Z"),
//	 deleted: false, shard: "Patient/p1", hash: "9f2c…", practice: "1234",
//	 compartments: ["Patient/p1"],
//	 idx: ["code=http://loinc.org|718-7", "code=718-7", "subject=Patient/p1"],
//	 rng: {date: {lo: ["2025-02-28T00:00:00.000Z"], hi: ["2025-02-28T23:59:59.999Z"]}},
//	 body: "{\"resourceType\":\"Observation\",\"id\":\"o1\",…}"}
//
// Search values are shaped so that every predicate of the search engine is
// one condition on one array field, which MongoDB and FerretDB both match
// per element without $elemMatch (FerretDB lacks it):
//   - idx holds "param=value" for every index value with a Value: equality
//     is {idx: "p=v"}, OR is $in, AND is $all, a string prefix is the
//     anchored regex {idx: /^p=smi/} (an index range scan in MongoDB);
//   - rng holds the Low and High bounds of range values (dates, numbers)
//     as parallel arrays per parameter, so each comparison is a one-bound
//     condition on one parameter's array: "some value ends at or after X"
//     is {"rng.date.hi": {$gte: X}}, "starts before X" {"rng.date.lo":
//     {$lt: X}}. A bound the value lacks is stored as "". Predicates on
//     both bounds of one value are exact for the usual single-valued
//     parameter; for several values lo[i] and hi[i] belong together.
//
// rngx holds each range entry whole, per parameter, so that the Bounds of
// one predicate hold for one entry (see ranges.go):
// {rngx: {date: ["2025-02-28T00:00:00.000Z 2025-02-28T23:59:59.999Z |"]}}.
//
// srt holds, per parameter, the values _sort orders by (see sortKeys):
// {srt: {date: {a: "cfcd…~", d: "2025-02-28T23:59:59.999Z"}}}. Both are
// read in descending order, so that resources without one come last.
//
// Flat "param=low" strings in one array would not do: a two-sided range on
// an array matches when different elements satisfy each side, so values of
// other parameters would leak into the result.
//
// shard is a single value to shard on: the resource's patient compartment
// (the first, if several), else "Type/id"; it never changes after the first
// write.
//
// A deletion keeps the document (version, time, deleted: true) and drops
// the body and the search values; it keeps the practice of the last live
// version, marked by kept: true (deletions written before it was kept
// have no practice and no kept, and read as store.UnknownPractice).
type currentDoc struct {
	ID           string    `bson:"_id"`
	Version      int64     `bson:"version"`
	LastUpdated  time.Time `bson:"lastUpdated"`
	Deleted      bool      `bson:"deleted"`
	Shard        string    `bson:"shard,omitempty"`
	Hash         string    `bson:"hash,omitempty"`
	Practice     string    `bson:"practice,omitempty"`
	Kept         bool      `bson:"kept,omitempty"`
	Compartments []string  `bson:"compartments,omitempty"`
	Idx          []string  `bson:"idx,omitempty"`
	Rng          bson.D    `bson:"rng,omitempty"`
	Srt          bson.D    `bson:"srt,omitempty"`
	Rngx         bson.D    `bson:"rngx,omitempty"`
	Body         string    `bson:"body,omitempty"`
}

// rangeValues are the bounds of one parameter's range values.
type rangeValues struct {
	Lo []string `bson:"lo"`
	Hi []string `bson:"hi"`
}

// resourceIndexes are the indexes of each resource-type collection: Search
// (search.go) filters on idx, rng, compartments and practice and orders by
// lastUpdated and _id; Count filters on deleted. Reads by id use _id.
// Orders by a search parameter (srt) have no index: they sort the matches
// of the filter (see Search). TestEverySearchHasAnIndex checks the list.
//
// The practice (tenant) follows the search keys instead of leading them:
// authorization adds a practice filter to some searches only, and an index
// led by practice would serve no other search (MongoDB cannot skip its
// first key); after idx or compartments, the practice filter is an index
// bound wherever it is given.
var resourceIndexes = []index{
	{keys: bson.D{{Key: "idx", Value: 1}, {Key: "practice", Value: 1}}, why: "search: equality and prefix on normalized values, within the practices authorization allows"},
	{keys: bson.D{{Key: "rng.$**", Value: 1}}, optional: true, wildcard: true, why: "search: date and number range comparisons"},
	{keys: bson.D{{Key: "compartments", Value: 1}, {Key: "practice", Value: 1}}, why: "patient-compartment filters, within the practices authorization allows"},
	{keys: bson.D{{Key: "practice", Value: 1}}, why: "practice (tenant) filters"},
	{keys: bson.D{{Key: "deleted", Value: 1}}, why: "Count of live resources"},
	{keys: bson.D{{Key: "lastUpdated", Value: 1}, {Key: "_id", Value: 1}}, why: "search: _lastUpdated bounds, sort and keyset paging"},
	{keys: bson.D{{Key: "lastUpdated", Value: -1}, {Key: "_id", Value: 1}}, why: "search: newest first (ties by id), and the pages before a cursor of oldest first"},
}

// versionDoc is one version in the history collection. _id is its place in
// the store-wide sequence (see counters): newest first is _id descending.
// practice and compartments are the version's own membership, which
// filtered history lists by (a deletion has the live version's before it);
// practice is always present ("" for none), so that versions written
// before it was recorded, which lack it, match no practice filter.
type versionDoc struct {
	Seq          int64     `bson:"_id"`
	Type         string    `bson:"type"`
	ID           string    `bson:"id"`
	Version      int64     `bson:"version"`
	LastUpdated  time.Time `bson:"lastUpdated"`
	Deleted      bool      `bson:"deleted"`
	Shard        string    `bson:"shard,omitempty"`
	Body         string    `bson:"body,omitempty"`
	Practice     string    `bson:"practice"`
	Compartments []string  `bson:"compartments,omitempty"`
}

// historyIndexes serve VRead and instance history (and refuse a version
// twice), and type history newest first, also confined to compartments or
// practices; system history scans _id.
var historyIndexes = []index{
	{keys: bson.D{{Key: "type", Value: 1}, {Key: "id", Value: 1}, {Key: "version", Value: 1}}, unique: true, why: "vread, instance history"},
	{keys: bson.D{{Key: "type", Value: 1}, {Key: "_id", Value: -1}}, why: "type history, newest first"},
	{keys: bson.D{{Key: "compartments", Value: 1}, {Key: "type", Value: 1}, {Key: "_id", Value: -1}}, why: "history confined to patient compartments"},
	{keys: bson.D{{Key: "practice", Value: 1}, {Key: "type", Value: 1}, {Key: "_id", Value: -1}}, why: "history confined to practices"},
}

// validType reports whether typ can be a resource type, and so the name of
// one of its collections: a capital letter, then letters and digits.
func validType(typ string) bool {
	if typ == "" || len(typ) > 64 || typ[0] < 'A' || typ[0] > 'Z' {
		return false
	}
	for _, c := range typ {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

var readProjection = bson.D{{Key: "version", Value: 1}, {Key: "lastUpdated", Value: 1}, {Key: "deleted", Value: 1}, {Key: "body", Value: 1}, {Key: "practice", Value: 1}, {Key: "kept", Value: 1}}

// Read returns the current version of a resource.
func (s *Store) Read(ctx context.Context, typ, id string) (store.Resource, error) {
	if err := s.enter(); err != nil {
		return store.Resource{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Resource{}, err
	}
	if !validType(typ) {
		return store.Resource{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, typ, id)
	}
	var d currentDoc
	err := s.db.Collection(typ).FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(readProjection)).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Resource{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, typ, id)
	}
	if err != nil {
		return store.Resource{}, s.fail(ctx, err)
	}
	r := store.Resource{Type: typ, ID: id, VersionID: d.Version, LastUpdated: d.LastUpdated, Deleted: d.Deleted, Body: []byte(d.Body), Practice: d.Practice}
	if d.Deleted && !d.Kept {
		r.Practice = store.UnknownPractice
	}
	return finish(r)
}

// VRead returns one version of a resource.
func (s *Store) VRead(ctx context.Context, typ, id string, version int64) (store.Resource, error) {
	if err := s.enter(); err != nil {
		return store.Resource{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return store.Resource{}, err
	}
	notFound := fmt.Errorf("%w: %s/%s/_history/%d", store.ErrNotFound, typ, id, version)
	if !validType(typ) || version < 1 {
		return store.Resource{}, notFound
	}
	var v versionDoc
	err := s.history.FindOne(ctx, bson.D{{Key: "type", Value: typ}, {Key: "id", Value: id}, {Key: "version", Value: version}}).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		// Without transactions a version reaches the current document just
		// before its history entry: serve it from there in between.
		var d currentDoc
		err = s.db.Collection(typ).FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}}, options.FindOne().SetProjection(readProjection)).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return store.Resource{}, notFound
		}
		v = versionDoc{Version: d.Version, LastUpdated: d.LastUpdated, Deleted: d.Deleted, Body: d.Body}
	}
	if err != nil {
		return store.Resource{}, s.fail(ctx, err)
	}
	return finish(store.Resource{Type: typ, ID: id, VersionID: v.Version, LastUpdated: v.LastUpdated, Deleted: v.Deleted, Body: []byte(v.Body)})
}

// finish is the end of a read: a deletion is returned with ErrGone.
func finish(r store.Resource) (store.Resource, error) {
	r.LastUpdated = r.LastUpdated.UTC()
	if r.Deleted {
		r.Body = nil
		return r, fmt.Errorf("%w: %s/%s", store.ErrGone, r.Type, r.ID)
	}
	return r, nil
}

// Count returns how many live resources of a type (or of all types) exist.
func (s *Store) Count(ctx context.Context, typ string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	types := []string{typ}
	if typ == "" {
		var err error
		if types, err = s.resourceTypes(ctx); err != nil {
			return 0, s.fail(ctx, err)
		}
	} else if !validType(typ) {
		return 0, nil
	}
	total := 0
	for _, t := range types {
		n, err := s.db.Collection(t).CountDocuments(ctx, bson.D{{Key: "deleted", Value: false}})
		if err != nil {
			return 0, s.fail(ctx, err)
		}
		total += int(n)
	}
	return total, nil
}

// resourceTypes lists the resource collections of the database.
func (s *Store) resourceTypes(ctx context.Context) ([]string, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !validType(n) })
	slices.Sort(names)
	return names, nil
}

// History lists versions newest first, by the store-wide sequence. The
// cursor is the sequence number of the last version of the previous page.
//
// A version whose write is still in flight when a page is read can get a
// sequence number below that page's end; it is then not listed by later
// pages of that walk (as if written after it), and listed by any walk that
// starts after it.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) (store.HistoryPage, error) {
	if err := s.enter(); err != nil {
		return store.HistoryPage{}, err
	}
	defer s.leave()
	if q.ID != "" && q.Type == "" {
		return store.HistoryPage{}, errors.New("mongo store: history of an id needs a type")
	}
	if q.Type != "" && !validType(q.Type) {
		if q.ID != "" {
			return store.HistoryPage{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, q.Type, q.ID)
		}
		return store.HistoryPage{}, nil
	}
	filter := bson.D{}
	if q.Type != "" {
		filter = append(filter, bson.E{Key: "type", Value: q.Type})
	}
	if q.ID != "" {
		filter = append(filter, bson.E{Key: "id", Value: q.ID})
	}
	if q.Type == "" && len(q.ExceptTypes) > 0 {
		filter = append(filter, bson.E{Key: "type", Value: bson.D{{Key: "$nin", Value: q.ExceptTypes}}})
	}
	if len(q.Compartments) > 0 {
		filter = append(filter, bson.E{Key: "compartments", Value: bson.D{{Key: "$in", Value: q.Compartments}}})
	}
	if len(q.Practices) > 0 {
		filter = append(filter, bson.E{Key: "practice", Value: bson.D{{Key: "$in", Value: q.Practices}}})
	}
	if q.Cursor != "" {
		before, err := decodeCursor(q.Cursor)
		if err != nil {
			return store.HistoryPage{}, err
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: before}}})
	}
	if !q.Since.IsZero() {
		// Times are stored in ms: a Since inside a millisecond excludes
		// the versions stamped in that millisecond before it.
		since := q.Since.Truncate(time.Millisecond)
		if since.Before(q.Since) {
			since = since.Add(time.Millisecond)
		}
		filter = append(filter, bson.E{Key: "lastUpdated", Value: bson.D{{Key: "$gte", Value: since}}})
	}
	sort := bson.D{{Key: "_id", Value: -1}}
	if q.ID != "" {
		sort = bson.D{{Key: "version", Value: -1}}
	}
	limit := store.PageSize(q.Count)
	cur, err := s.history.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(limit)+1))
	if err != nil {
		return store.HistoryPage{}, s.fail(ctx, err)
	}
	var docs []versionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return store.HistoryPage{}, s.fail(ctx, err)
	}
	var page store.HistoryPage
	for i, v := range docs {
		if i == limit {
			page.Next = encodeCursor(docs[i-1].Seq)
			break
		}
		r := store.Resource{Type: v.Type, ID: v.ID, VersionID: v.Version, LastUpdated: v.LastUpdated.UTC(), Deleted: v.Deleted}
		if !v.Deleted {
			r.Body = []byte(v.Body)
		}
		page.Versions = append(page.Versions, r)
	}
	if q.ID != "" && len(page.Versions) == 0 && q.Cursor == "" {
		err := s.db.Collection(q.Type).FindOne(ctx, bson.D{{Key: "_id", Value: q.ID}}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return store.HistoryPage{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, q.Type, q.ID)
		}
		if err != nil {
			return store.HistoryPage{}, s.fail(ctx, err)
		}
	}
	return page, nil
}

const cursorPrefix = "m"

func encodeCursor(seq int64) string { return cursorPrefix + strconv.FormatInt(seq, 36) }

func decodeCursor(c string) (int64, error) {
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if ok {
		if seq, err := strconv.ParseInt(rest, 36, 64); err == nil && seq > 0 {
			return seq, nil
		}
	}
	return 0, fmt.Errorf("mongo store: invalid history cursor %q", c)
}

package mongo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// recordDoc is one platform record in its collection rec_<name>:
//
//	{_id: "c1", rev: 3, data: {owner: "dev1", redirects: ["https://a/cb"]},
//	 expiresAt: ISODate("2025-03-01T11:00:00Z")}
//
// data is the record's JSON object as a BSON document, so that declared
// keys are fields with indexes of their own (multikey for arrays);
// expiresAt is absent for a record that never expires.
type recordDoc struct {
	ID        string     `bson:"_id"`
	Rev       int64      `bson:"rev"`
	Data      bson.Raw   `bson:"data"`
	ExpiresAt *time.Time `bson:"expiresAt,omitempty"`
}

// recordIndexes are the indexes of a record collection: expiry (TTL where
// the server has it, otherwise for the sweeper's deletes) and Find on each
// declared key.
func recordIndexes(keys []string) []index {
	ixs := []index{{keys: bson.D{{Key: "expiresAt", Value: 1}}, ttl: true, why: "expiry of records"}}
	for _, k := range keys {
		ixs = append(ixs, index{keys: bson.D{{Key: "data." + k, Value: 1}}, why: "Find by " + k})
	}
	return ixs
}

// Collection returns the handle of a platform-record collection. Handles
// are cached by name; a def whose keys differ from the cached one replaces
// it.
func (s *Store) Collection(def store.CollectionDef) store.Collection {
	keys := slices.Clone(def.Keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	s.collMu.Lock()
	defer s.collMu.Unlock()
	if c, ok := s.colls[def.Name]; ok && slices.Equal(c.keys, keys) {
		return c
	}
	c := &collection{s: s, name: def.Name, keys: keys, c: s.db.Collection(recordPrefix + def.Name)}
	if !validCollectionName(def.Name) {
		c.err = fmt.Errorf("mongo store: invalid record collection name %q", def.Name)
	}
	for _, k := range keys {
		if k == "" || strings.Contains(k, ".") || strings.HasPrefix(k, "$") {
			c.err = fmt.Errorf("mongo store: record key %q of %q cannot be a field name", k, def.Name)
		}
	}
	s.colls[def.Name] = c
	return c
}

func validCollectionName(name string) bool {
	return name != "" && len(name) <= 100 && !strings.ContainsAny(name, "$\x00")
}

type collection struct {
	s    *Store
	name string
	keys []string // sorted, unique
	c    *mongo.Collection
	err  error // of the definition

	mu    sync.Mutex
	ready bool
	sweep bool // expired records are deleted by the sweeper, not a TTL index
}

// prepare creates the collection's indexes and records its declared keys
// the first time the collection is used.
func (c *collection) prepare(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	s := c.s
	ttl := true
	s.collMu.Lock()
	probed, have := s.ttlProbed, s.ttl
	s.collMu.Unlock()
	if probed {
		ttl = have
	}
	got, err := s.ensureIndexes(ctx, c.c, recordIndexes(c.keys), ttl)
	if isCode(err, codeIndexOptionsConflict) || isCode(err, codeIndexKeySpecsConflict) {
		// An expiry index made without TTL (on a server without it) is
		// kept; the sweeper deletes.
		s.log.Warn("mongo store: expiry index of a record collection is not TTL; sweeping instead", "collection", c.c.Name(), "err", err)
		got = false
		_, err = s.ensureIndexes(ctx, c.c, recordIndexes(c.keys)[1:], false)
	}
	if err != nil {
		return s.fail(ctx, err)
	}
	if !probed {
		s.collMu.Lock()
		s.ttlProbed, s.ttl = true, got
		s.collMu.Unlock()
	}
	_, err = s.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.c.Name()}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "keys", Value: c.keys}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return s.fail(ctx, err)
	}
	c.sweep = !got
	if c.sweep {
		s.addSweep(c.c)
	}
	c.ready = true
	return nil
}

// Server codes of an index that exists with other options.
const (
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
)

// declaredKeys reads the declared keys of every record collection.
func declaredKeys(ctx context.Context, meta *mongo.Collection) (map[string][]string, error) {
	cur, err := meta.Find(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID   string   `bson:"_id"`
		Keys []string `bson:"keys"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, d := range docs {
		out[d.ID] = d.Keys
	}
	return out, nil
}

// begin is the common start of every collection call.
func (c *collection) begin(ctx context.Context) error {
	if err := c.s.enter(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		c.s.leave()
		return err
	}
	if err := c.prepare(ctx); err != nil {
		c.s.leave()
		return err
	}
	return nil
}

// live matches records that have not expired at now.
func live(now time.Time) bson.E {
	return bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "expiresAt", Value: nil}},
		bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$gt", Value: now}}}},
	}}
}

func (c *collection) notFound(id string) error {
	return fmt.Errorf("%w: %s/%s", store.ErrNotFound, c.name, id)
}

// Get returns an unexpired record.
func (c *collection) Get(ctx context.Context, id string) (store.Record, error) {
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	var d recordDoc
	err := c.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}, live(time.Now())}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Record{}, c.notFound(id)
	}
	if err != nil {
		return store.Record{}, c.s.fail(ctx, err)
	}
	return d.record()
}

// Find returns the unexpired records whose key field holds value, by id.
func (c *collection) Find(ctx context.Context, key, value string) ([]store.Record, error) {
	if _, ok := slices.BinarySearch(c.keys, key); !ok {
		return nil, fmt.Errorf("mongo store: %q is not a declared key of collection %q", key, c.name)
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.s.leave()
	cur, err := c.c.Find(ctx, bson.D{{Key: "data." + key, Value: value}, live(time.Now())}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, c.s.fail(ctx, err)
	}
	var docs []recordDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, c.s.fail(ctx, err)
	}
	out := make([]store.Record, 0, len(docs))
	for _, d := range docs {
		r, err := d.record()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Create stores a new record with Rev 1, replacing an expired one with the
// same id: the replacement matches only an expired record, and a live one
// makes the implied insert fail on the _id.
func (c *collection) Create(ctx context.Context, r store.Record) (store.Record, error) {
	data, err := checkRecord(r)
	if err != nil {
		return store.Record{}, err
	}
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	r.Rev = 1
	filter := bson.D{{Key: "_id", Value: r.ID}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: time.Now()}}}}
	done := c.s.serial(c.c.Name() + "/" + r.ID)
	_, err = c.c.ReplaceOne(ctx, filter, newRecordDoc(r, data), options.Replace().SetUpsert(true))
	done()
	if mongo.IsDuplicateKeyError(err) {
		return store.Record{}, fmt.Errorf("%w: %s/%s", store.ErrExists, c.name, r.ID)
	}
	if err != nil {
		return store.Record{}, c.s.fail(ctx, err)
	}
	return normalized(r), nil
}

// Update replaces a record whose stored Rev equals r.Rev.
func (c *collection) Update(ctx context.Context, r store.Record) (store.Record, error) {
	data, err := checkRecord(r)
	if err != nil {
		return store.Record{}, err
	}
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	now := time.Now()
	want := r.Rev
	r.Rev++
	done := c.s.serial(c.c.Name() + "/" + r.ID)
	res, err := c.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: r.ID}, {Key: "rev", Value: want}, live(now)}, newRecordDoc(r, data))
	done()
	if err != nil {
		return store.Record{}, c.s.fail(ctx, err)
	}
	if res.MatchedCount == 0 {
		return store.Record{}, c.missOrConflict(ctx, r.ID, want, now)
	}
	return normalized(r), nil
}

// Delete removes a record, if rev is not 0 only at that revision.
func (c *collection) Delete(ctx context.Context, id string, rev int64) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.s.leave()
	now := time.Now()
	filter := bson.D{{Key: "_id", Value: id}, live(now)}
	if rev != 0 {
		filter = append(filter, bson.E{Key: "rev", Value: rev})
	}
	done := c.s.serial(c.c.Name() + "/" + id)
	res, err := c.c.DeleteOne(ctx, filter)
	done()
	if err != nil {
		return c.s.fail(ctx, err)
	}
	if res.DeletedCount == 0 {
		return c.missOrConflict(ctx, id, rev, now)
	}
	return nil
}

// missOrConflict explains a compare-and-set that matched nothing.
func (c *collection) missOrConflict(ctx context.Context, id string, rev int64, now time.Time) error {
	var d struct {
		Rev int64 `bson:"rev"`
	}
	err := c.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}, live(now)}, options.FindOne().SetProjection(bson.D{{Key: "rev", Value: 1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return c.notFound(id)
	case err != nil:
		return c.s.fail(ctx, err)
	}
	return fmt.Errorf("%w: %s/%s is at revision %d, expected %d", store.ErrConflict, c.name, id, d.Rev, rev)
}

func newRecordDoc(r store.Record, data bson.D) bson.D {
	d := bson.D{{Key: "_id", Value: r.ID}, {Key: "rev", Value: r.Rev}, {Key: "data", Value: data}}
	if !r.ExpiresAt.IsZero() {
		d = append(d, bson.E{Key: "expiresAt", Value: r.ExpiresAt})
	}
	return d
}

func (d recordDoc) record() (store.Record, error) {
	data, err := bson.MarshalExtJSON(d.Data, false, false)
	if err != nil {
		return store.Record{}, fmt.Errorf("mongo store: record %s: %w", d.ID, err)
	}
	r := store.Record{ID: d.ID, Rev: d.Rev, Data: data}
	if d.ExpiresAt != nil {
		r.ExpiresAt = d.ExpiresAt.UTC()
	}
	return r, nil
}

// normalized is the record as a later Get returns it (times in ms).
func normalized(r store.Record) store.Record {
	if !r.ExpiresAt.IsZero() {
		r.ExpiresAt = r.ExpiresAt.Truncate(time.Millisecond).UTC()
	}
	r.Data = slices.Clone(r.Data)
	return r
}

func checkRecord(r store.Record) (bson.D, error) {
	if r.ID == "" {
		return nil, errors.New("mongo store: record needs an id")
	}
	d, err := jsonObject(r.Data)
	if err != nil {
		return nil, fmt.Errorf("mongo store: record data must be a JSON object: %w", err)
	}
	return d, nil
}

// jsonObject converts a JSON object to a BSON document, keeping the order
// of members. Integers become int64, other numbers float64.
func jsonObject(data []byte) (bson.D, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	d, err := jsonMembers(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the object")
	}
	return d, nil
}

func jsonMembers(dec *json.Decoder) (bson.D, error) {
	d := bson.D{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		v, err := jsonValue(dec)
		if err != nil {
			return nil, err
		}
		d = append(d, bson.E{Key: key, Value: v})
	}
	_, err := dec.Token() // }
	return d, err
}

func jsonValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return jsonMembers(dec)
		}
		a := bson.A{}
		for dec.More() {
			v, err := jsonValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ]
		return a, err
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		return t.Float64()
	default: // string, bool, nil
		return t, nil
	}
}

// addSweep has the sweeper delete c's expired records.
func (s *Store) addSweep(c *mongo.Collection) {
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	if s.sweepColls == nil {
		s.sweepColls = map[string]*mongo.Collection{}
	}
	s.sweepColls[c.Name()] = c
}

// sweep deletes expired records every interval until Close, in the
// collections without a TTL index.
func (s *Store) sweep(every time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
		}
		s.sweepMu.Lock()
		colls := make([]*mongo.Collection, 0, len(s.sweepColls))
		for _, c := range s.sweepColls {
			colls = append(colls, c)
		}
		s.sweepMu.Unlock()
		for _, c := range colls {
			ctx, cancel := context.WithTimeout(context.Background(), every)
			n, err := s.sweepOnce(ctx, c)
			cancel()
			switch {
			case err != nil:
				s.log.Warn("mongo store: sweeping expired records", "collection", c.Name(), "err", err)
			case n > 0:
				s.log.Debug("mongo store: swept expired records", "collection", c.Name(), "count", n)
			}
		}
	}
}

// sweepOnce deletes a collection's expired records. On FerretDB, whose
// deletes are not atomic with their filter (see serial), it deletes them
// one by one, each in turn with this process's writes of that record.
func (s *Store) sweepOnce(ctx context.Context, c *mongo.Collection) (int64, error) {
	expired := bson.D{{Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: time.Now()}}}}
	if !s.ferret {
		res, err := c.DeleteMany(ctx, expired)
		if err != nil {
			return 0, err
		}
		return res.DeletedCount, nil
	}
	cur, err := c.Find(ctx, expired, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(1000))
	if err != nil {
		return 0, err
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return 0, err
	}
	var n int64
	for _, d := range ids {
		done := s.serial(c.Name() + "/" + d.ID)
		res, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "expiresAt", Value: bson.D{{Key: "$lte", Value: time.Now()}}}})
		done()
		if err != nil {
			return n, err
		}
		n += res.DeletedCount
	}
	return n, nil
}

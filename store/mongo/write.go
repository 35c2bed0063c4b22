package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// How an Apply's versions reach the database: numbered and timed by the
// counter document, then written as current documents (compare-and-set)
// and history entries.

// number gives the new versions their sequence numbers and times.
//
// Times come from the counter document with the sequence numbers, so that
// they never go back along the sequence, whichever server writes: each
// version is stamped with the counter's clock after the increment, which is
// at least now and past the resource's previous version. A resource written
// more than once in one Apply gets one more millisecond per version.
func (s *Store) number(ctx context.Context, vers []*pending) error {
	notBefore := time.Now()
	for _, v := range vers {
		if v.st.loaded != nil && v.occurrence == 0 {
			notBefore = maxTime(notBefore, v.st.loaded.LastUpdated.Add(time.Millisecond))
		}
	}
	last, clock, err := s.reserve(ctx, len(vers), notBefore)
	if err != nil {
		return err
	}
	extra := 0
	for i, v := range vers {
		v.seq = last - int64(len(vers)) + 1 + int64(i)
		v.at = clock.Add(time.Duration(v.occurrence) * time.Millisecond)
		extra = max(extra, v.occurrence)
	}
	if extra > 0 {
		return s.advanceClock(ctx, clock.Add(time.Duration(extra)*time.Millisecond))
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// counterID is the counter document of versions: n is the last sequence
// number given out, t (Unix ms) the latest version time.
const counterID = "versions"

// reserve takes k sequence numbers and returns the last of them with the
// time to stamp them with: the counter's clock after raising it to
// notBefore.
func (s *Store) reserve(ctx context.Context, k int, notBefore time.Time) (int64, time.Time, error) {
	var c struct {
		N int64 `bson:"n"`
		T int64 `bson:"t"`
	}
	update := bson.D{
		{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(k)}}},
		{Key: "$max", Value: bson.D{{Key: "t", Value: notBefore.UnixMilli()}}},
	}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	defer s.serial(countersCollection)()
	err := s.counters.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: counterID}}, update, opts).Decode(&c)
	if mongo.IsDuplicateKeyError(err) { // two first upserts raced; the other one created it
		err = s.counters.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: counterID}}, update, opts).Decode(&c)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("version counter: %w", err)
	}
	return c.N, time.UnixMilli(c.T).UTC(), nil
}

// advanceClock raises the counter's clock to t.
func (s *Store) advanceClock(ctx context.Context, t time.Time) error {
	defer s.serial(countersCollection)()
	_, err := s.counters.UpdateOne(ctx, bson.D{{Key: "_id", Value: counterID}}, bson.D{{Key: "$max", Value: bson.D{{Key: "t", Value: t.UnixMilli()}}}})
	return err
}

// writeVersions stores a plan's versions: the new current document of each
// resource, compare-and-set on the version loaded, then the history
// entries. A lost compare-and-set is errRace; inside a transaction it
// aborts everything.
func (s *Store) writeVersions(ctx, outer context.Context, p *plan) error {
	byType := map[string][]*resState{}
	var types []string
	for _, st := range p.order {
		if _, ok := byType[st.typ]; !ok {
			types = append(types, st.typ)
		}
		byType[st.typ] = append(byType[st.typ], st)
	}
	for _, typ := range types {
		if err := s.writeCurrent(ctx, typ, byType[typ]); err != nil {
			return err
		}
	}
	return s.insertHistory(ctx, outer, p.vers)
}

// writeCurrent replaces (or inserts) the current documents of resources of
// one type. Several at once happen only inside a transaction, as one
// ordered bulk write whose counts tell whether every compare-and-set held.
func (s *Store) writeCurrent(ctx context.Context, typ string, sts []*resState) error {
	c := s.db.Collection(typ)
	if len(sts) == 1 {
		st := sts[0]
		doc := st.last.doc()
		if st.loaded == nil {
			_, err := c.InsertOne(ctx, doc)
			return raced(err)
		}
		done := s.serial(typ + "/" + st.id)
		res, err := c.ReplaceOne(ctx, casFilter(st.loaded), doc)
		done()
		if err != nil {
			return raced(err)
		}
		if res.MatchedCount == 0 {
			return errRace
		}
		return nil
	}
	models := make([]mongo.WriteModel, len(sts))
	var replaces, inserts int64
	for i, st := range sts {
		if st.loaded == nil {
			models[i] = mongo.NewInsertOneModel().SetDocument(st.last.doc())
			inserts++
		} else {
			models[i] = mongo.NewReplaceOneModel().SetFilter(casFilter(st.loaded)).SetReplacement(st.last.doc())
			replaces++
		}
	}
	res, err := c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true))
	if err != nil {
		return raced(err)
	}
	if res.MatchedCount != replaces || res.InsertedCount != inserts {
		return errRace
	}
	return nil
}

// casFilter matches a current document only at the version loaded (and,
// for sharded collections, names its shard key value).
func casFilter(d *currentDoc) bson.D {
	f := bson.D{{Key: "_id", Value: d.ID}, {Key: "version", Value: d.Version}}
	if d.Shard != "" {
		f = append(f, bson.E{Key: "shard", Value: d.Shard})
	}
	return f
}

// raced turns a duplicate-key error (another writer created the resource
// first) into errRace.
func raced(err error) error {
	if mongo.IsDuplicateKeyError(err) {
		return errRace
	}
	return err
}

// insertHistory inserts versions into history, in sequence order.
//
// Where increments of the counter are not atomic across processes
// (FerretDB, see serial), two writers can draw the same sequence number;
// the later insertion then fails on _id, and the versions not yet in
// history are numbered again, past the newest in history. Inside a
// transaction the failure aborts it and the Apply starts over.
func (s *Store) insertHistory(ctx, outer context.Context, vers []*pending) error {
	for attempt := 1; ; attempt++ {
		docs := make([]any, len(vers))
		for i, v := range vers {
			docs[i] = v.historyDoc()
		}
		var err error
		if len(docs) == 1 {
			_, err = s.history.InsertOne(ctx, docs[0])
		} else {
			_, err = s.history.InsertMany(ctx, docs)
		}
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return err
		}
		if s.txn {
			return errRace
		}
		if attempt == 20 {
			return fmt.Errorf("history: %w", err)
		}
		// Two processes writing flat out can collide again at once; a
		// short, growing pause lets one of them get ahead.
		select {
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if vers, err = s.notInHistory(ctx, vers); err != nil {
			return err
		}
		if err := s.repairCounter(outer); err != nil {
			return err
		}
		last, _, err := s.reserve(outer, len(vers), time.Time{})
		if err != nil {
			return err
		}
		for i, v := range vers {
			v.seq = last - int64(len(vers)) + 1 + int64(i)
		}
	}
}

// repairCounter raises the sequence past the newest version in history. A
// counter that lost an increment to a concurrent one (FerretDB) can lag
// behind the numbers already given out, and would go on colliding.
func (s *Store) repairCounter(ctx context.Context) error {
	var top versionDoc
	err := s.history.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&top)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return err
	}
	defer s.serial(countersCollection)()
	_, err = s.counters.UpdateOne(ctx, bson.D{{Key: "_id", Value: counterID}}, bson.D{{Key: "$max", Value: bson.D{{Key: "n", Value: top.Seq}}}})
	return err
}

// notInHistory returns the versions whose sequence number does not hold
// them in history.
func (s *Store) notInHistory(ctx context.Context, vers []*pending) ([]*pending, error) {
	seqs := make([]int64, len(vers))
	for i, v := range vers {
		seqs[i] = v.seq
	}
	cur, err := s.history.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: seqs}}}},
		options.Find().SetProjection(bson.D{{Key: "body", Value: 0}}))
	if err != nil {
		return nil, err
	}
	var docs []versionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	in := map[int64]versionDoc{}
	for _, d := range docs {
		in[d.Seq] = d
	}
	var out []*pending
	for _, v := range vers {
		if d, ok := in[v.seq]; ok && d.Type == v.w.Type && d.ID == v.w.ID && d.Version == v.version {
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// shardOf is the value of a resource's shard key: its patient compartment
// (the first, if several), else the resource itself, so that a patient's
// resources live together on one shard.
func shardOf(w store.Write) string {
	if len(w.Compartments) > 0 {
		return slices.Min(w.Compartments)
	}
	return w.Type + "/" + w.ID
}

// shard is the version's shard key value: the resource keeps the one it
// was first written with, so that its documents never move between shards.
func (v *pending) shard() string {
	if v.st.loaded != nil && v.st.loaded.Shard != "" {
		return v.st.loaded.Shard
	}
	return shardOf(v.w)
}

// doc is the current document the version makes.
func (v *pending) doc() *currentDoc {
	d := &currentDoc{ID: v.w.ID, Version: v.version, LastUpdated: v.at, Deleted: v.deleted, Shard: v.shard()}
	if v.deleted {
		d.Practice, d.Kept = v.practice, true
		return d
	}
	d.Hash, d.Practice, d.Body = v.w.Hash, v.w.Practice, v.body
	d.Compartments = slices.Compact(slices.Sorted(slices.Values(v.w.Compartments)))
	d.Idx, d.Rng = indexFields(v.w.Index)
	d.Srt, d.Rngx = sortFields(v.w.Index), rangeEntries(v.w.Index)
	return d
}

func (v *pending) historyDoc() *versionDoc {
	d := &versionDoc{Seq: v.seq, Type: v.w.Type, ID: v.w.ID, Version: v.version, LastUpdated: v.at, Deleted: v.deleted, Body: v.body, Shard: v.shard(),
		Practice: v.practice, Compartments: v.compartments}
	if v.deleted {
		d.Body = ""
	}
	return d
}

// indexFields lays out a version's search values (see currentDoc).
func indexFields(values []store.IndexValue) ([]string, bson.D) {
	var idx []string
	ranges := map[string]*rangeValues{}
	var params []string
	for _, v := range values {
		if v.Value != "" {
			idx = append(idx, v.Param+"="+v.Value)
			if v.System != "" {
				// A value qualified by its system is found by either form:
				// "code=1234-5" (any system) and "code=http://loinc.org|1234-5".
				idx = append(idx, v.Param+"="+v.System+"|"+v.Value)
			}
		}
		if v.Low == "" && v.High == "" {
			continue
		}
		f := fieldName(v.Param)
		r, ok := ranges[f]
		if !ok {
			r = &rangeValues{}
			ranges[f] = r
			params = append(params, f)
		}
		r.Lo = append(r.Lo, v.Low)
		r.Hi = append(r.Hi, v.High)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	slices.Sort(params)
	var rng bson.D
	for _, p := range params {
		rng = append(rng, bson.E{Key: p, Value: ranges[p]})
	}
	return idx, rng
}

// fieldName makes a search parameter code safe as a field name: no dots
// (path separators) and no leading $.
func fieldName(param string) string {
	if !strings.ContainsAny(param, ".%") && !strings.HasPrefix(param, "$") {
		return param
	}
	r := strings.NewReplacer("%", "%25", ".", "%2E")
	param = r.Replace(param)
	if strings.HasPrefix(param, "$") {
		param = "%24" + param[1:]
	}
	return param
}

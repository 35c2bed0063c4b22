package mongo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Reindex recomputes the index values and compartments of current
// documents (see store.Resources). Each batch is read in _id order and
// indexed; each document whose derived fields differ is then replaced by
// the one the same version would make now (pending.doc, which lays out
// every field a write derives), compare-and-set on the version read. A
// concurrent write's compare-and-set is on that version too, so its
// document stands whichever of the two comes first.
func (s *Store) Reindex(ctx context.Context, q store.ReindexQuery) (store.ReindexStats, error) {
	if err := s.enter(); err != nil {
		return store.ReindexStats{}, err
	}
	defer s.leave()
	types := func(ctx context.Context) ([]string, error) {
		types, err := s.resourceTypes(ctx)
		return types, s.fail(ctx, err)
	}
	return store.RunReindex(ctx, q, types, func(ctx context.Context, typ, after string, size int, stats *store.ReindexStats) (int, string, error) {
		if !validType(typ) {
			return 0, "", nil // no collection can hold it
		}
		docs, err := s.reindexPage(ctx, typ, after, size)
		if err != nil || len(docs) == 0 {
			return 0, "", s.fail(ctx, err)
		}
		if err := s.reindexBatch(ctx, typ, docs, q.Index, stats); err != nil {
			return 0, "", s.fail(ctx, err)
		}
		return len(docs), docs[len(docs)-1].ID, nil
	})
}

// reindexPage reads the next batch of live documents of typ after the id
// after, whole: the new document keeps every field but the derived ones.
func (s *Store) reindexPage(ctx context.Context, typ, after string, limit int) ([]*currentDoc, error) {
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}, {Key: "deleted", Value: false}}
	cur, err := s.db.Collection(typ).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	var docs []*currentDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// reindexBatch derives the new data of a batch, then writes the
// documents it changes, parallelWrites at a time, each on its own (as
// ApplyEach writes, on any server). Nothing is written when deriving fails.
func (s *Store) reindexBatch(ctx context.Context, typ string, docs []*currentDoc, index func(typ, id string, body []byte) (store.IndexUpdate, error), stats *store.ReindexStats) error {
	news := make([]*currentDoc, len(docs))
	errs := make([]error, len(docs))
	parallel(ctx, len(docs), runtime.GOMAXPROCS(0), func(i int) {
		news[i], errs[i] = reindexed(typ, docs[i], index)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var changed, skipped atomic.Int64
	parallel(ctx, len(docs), parallelWrites, func(i int) {
		if news[i] == nil {
			return
		}
		d := docs[i]
		done := s.serial(typ + "/" + d.ID)
		res, err := s.db.Collection(typ).ReplaceOne(ctx, casFilter(d), news[i])
		done()
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("reindex %s/%s: %w", typ, d.ID, err)
		case res.MatchedCount == 0:
			skipped.Add(1) // a concurrent write made a new version
		default:
			changed.Add(1)
		}
	})
	stats.Changed += int(changed.Load())
	stats.Skipped += int(skipped.Load())
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// reindexed returns the document d's version makes with the new derived
// data (same number, time, body, hash, practice and shard), nil when that
// is d as it is.
func reindexed(typ string, d *currentDoc, index func(typ, id string, body []byte) (store.IndexUpdate, error)) (*currentDoc, error) {
	u, err := index(typ, d.ID, []byte(d.Body))
	if err != nil {
		return nil, fmt.Errorf("reindex %s/%s: %w", typ, d.ID, err)
	}
	v := &pending{
		w: store.Write{
			Op: store.OpUpdate, Type: typ, ID: d.ID, Hash: d.Hash, Practice: d.Practice,
			Index: u.Index, Compartments: u.Compartments,
		},
		st:      &resState{typ: typ, id: d.ID, loaded: d},
		version: d.Version,
		at:      d.LastUpdated,
		body:    d.Body,
	}
	nd := v.doc()
	same, err := sameDoc(d, nd)
	if err != nil || same {
		return nil, err
	}
	return nd, nil
}

// parallel calls fn(0) … fn(n-1) from up to workers goroutines, and stops
// starting calls once ctx ends.
func parallel(ctx context.Context, n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// sameDoc reports whether two current documents store the same fields.
func sameDoc(a, b *currentDoc) (bool, error) {
	x, err := bson.Marshal(a)
	if err != nil {
		return false, err
	}
	y, err := bson.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(x, y), nil
}

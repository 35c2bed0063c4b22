package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"

	"github.com/fhirgraph/fhirgraph/store"
)

// Reindex recomputes the index values and compartments of current
// versions (see store.Resources). Each batch is read on a read connection
// and indexed before its write transaction begins; the transaction then
// looks each resource up again and rewrites only those still at the
// version read and whose entries differ, through the applier's own diff
// (flush), so a concurrent write's index is never overwritten.
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
		items, err := s.reindexPage(ctx, typ, after, size)
		if err != nil {
			return 0, "", s.fail(ctx, err)
		}
		if len(items) == 0 {
			return 0, "", nil
		}
		if err := deriveAll(ctx, typ, items, q.Index); err != nil {
			return 0, "", err
		}
		if err := s.rewriteIndex(ctx, typ, items, stats); err != nil {
			return 0, "", err
		}
		return len(items), items[len(items)-1].id, nil
	})
}

// resourceTypes lists the types that ever had a live resource.
func (s *Store) resourceTypes(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type FROM counts ORDER BY type`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	return types, rows.Err()
}

// reindexItem is one resource of a Reindex batch: as read, then with its
// new derived data.
type reindexItem struct {
	id      string
	version int64
	body    []byte
	update  store.IndexUpdate
}

// reindexPage reads the next batch of live resources of typ after the id
// after, in id order (the resources_key index).
func (s *Store) reindexPage(ctx context.Context, typ, after string, limit int) ([]reindexItem, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT r.id, r.version, v.body FROM resources r JOIN versions v ON v.seq = r.seq
		WHERE r.type = ? AND r.id > ? AND r.deleted = 0 ORDER BY r.id LIMIT ?`, typ, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]reindexItem, 0, limit)
	for rows.Next() {
		var it reindexItem
		if err := rows.Scan(&it.id, &it.version, &it.body); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// deriveAll calls index for every item, spread over the CPUs: deriving
// index values (evaluating every parameter's expression) is most of a
// Reindex's work.
func deriveAll(ctx context.Context, typ string, items []reindexItem, index func(typ, id string, body []byte) (store.IndexUpdate, error)) error {
	workers := min(runtime.GOMAXPROCS(0), len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(items); i += workers {
				if ctx.Err() != nil {
					return
				}
				items[i].update, errs[i] = index(typ, items[i].id, items[i].body)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("reindex %s/%s: %w", typ, items[i].id, err)
		}
	}
	return nil
}

// rewriteIndex writes the new derived data of a batch in one transaction.
// A resource no longer at the version read (updated or deleted since) is
// skipped: its writer stored its own index.
func (s *Store) rewriteIndex(ctx context.Context, typ string, items []reindexItem, stats *store.ReindexStats) error {
	var a *applier
	var changed, skipped int
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		a = newApplier(ctx, s, tx)
		changed, skipped = 0, 0
		for _, it := range items {
			st, err := a.lookup(typ, it.id)
			if err != nil {
				return err
			}
			if st == nil || st.deleted || st.version != it.version {
				skipped++
				continue
			}
			x, err := a.indexSet(store.Write{Type: typ, ID: it.id, Index: it.update.Index, Compartments: it.update.Compartments})
			if err != nil {
				return err
			}
			if bytes.Equal(encodeIndex(x), st.oldIdx) {
				continue
			}
			// The resource row is written back as it is, with the new
			// entries; flush diffs them against the old ones.
			st.index, st.written = x, true
			a.order = append(a.order, st)
			changed++
		}
		return a.flush()
	}, func() {
		for k, pid := range a.newParams {
			s.params[k] = pid
		}
	})
	if err != nil {
		return err
	}
	stats.Changed += changed
	stats.Skipped += skipped
	return nil
}

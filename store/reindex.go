package store

import (
	"context"
	"fmt"
)

// ReindexBatch reindexes one page of an engine's Reindex: the live
// resources of typ after the id after, in id order, at most size of them.
// It adds what it changed and skipped to stats and reports how many
// resources the page held and the last one's id; none means typ is done.
type ReindexBatch func(ctx context.Context, typ, after string, size int, stats *ReindexStats) (n int, last string, err error)

// RunReindex is the part of Reindex every engine shares: it checks q,
// takes the engine's types (allTypes) when q names none, and hands each
// type to batch a page at a time, calling q.Progress after each page.
// Errors of allTypes and batch are returned as they are.
func RunReindex(ctx context.Context, q ReindexQuery, allTypes func(context.Context) ([]string, error), batch ReindexBatch) (ReindexStats, error) {
	var stats ReindexStats
	if q.Index == nil {
		return stats, fmt.Errorf("%w: Reindex needs an Index function", ErrInvalid)
	}
	size := q.BatchSize
	if size <= 0 {
		size = DefaultReindexBatch
	}
	types := q.Types
	if len(types) == 0 {
		var err error
		if types, err = allTypes(ctx); err != nil {
			return stats, err
		}
	}
	for _, typ := range types {
		for after := ""; ; {
			n, last, err := batch(ctx, typ, after, size, &stats)
			if err != nil {
				return stats, err
			}
			if n == 0 {
				break
			}
			stats.Resources += n
			if q.Progress != nil {
				q.Progress(stats)
			}
			after = last
		}
	}
	return stats, nil
}

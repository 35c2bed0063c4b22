package mongo

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/fhirgraph/fhirgraph/store"
)

// parallelWrites is how many compare-and-sets of one ApplyEach round are in
// flight at once.
const parallelWrites = 8

// ApplyEach performs writes one by one, each atomic on its own (see
// store.Resources), on any server. It works in rounds in which each
// resource appears once (a resource written twice waits for the next
// round): one read per type, one increment of the sequence, the
// compare-and-sets of the current documents in parallel, one insertion into
// history. A write that loses a race with a concurrent writer is applied
// again on its own.
func (s *Store) ApplyEach(ctx context.Context, writes []store.Write) ([]store.Result, []error, error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.leave()
	results := make([]store.Result, len(writes))
	errs := make([]error, len(writes))
	var todo []int
	for i, w := range writes {
		if err := checkWrite(w); err != nil {
			errs[i] = &store.WriteError{Index: i, Write: w, Err: err}
			continue
		}
		if err := s.ensureType(ctx, w.Type); err != nil {
			return results, errs, s.fail(ctx, err)
		}
		todo = append(todo, i)
	}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			return results, errs, err
		}
		var round []int
		round, todo = nextRound(writes, todo)
		again, err := s.eachRound(ctx, writes, round, results, errs)
		if err != nil {
			return results, errs, s.fail(ctx, err)
		}
		for _, i := range again {
			res, err := s.apply(ctx, writes[i:i+1])
			var we *store.WriteError
			switch {
			case errors.As(err, &we):
				errs[i] = &store.WriteError{Index: i, Write: writes[i], Err: we.Err}
			case err != nil:
				return results, errs, s.fail(ctx, err)
			default:
				results[i] = res[0]
			}
		}
	}
	return results, errs, nil
}

// nextRound takes from todo the first write of each resource; the others
// stay, in order.
func nextRound(writes []store.Write, todo []int) (round, rest []int) {
	seen := map[resKey]bool{}
	for _, i := range todo {
		k := resKey{writes[i].Type, writes[i].ID}
		if seen[k] {
			rest = append(rest, i)
			continue
		}
		seen[k] = true
		round = append(round, i)
	}
	return round, rest
}

// eachRound applies writes (indexes into all) that touch distinct
// resources, filling results and errs; it returns the writes that lost a
// race, to be applied again.
func (s *Store) eachRound(ctx context.Context, all []store.Write, round []int, results []store.Result, errs []error) ([]int, error) {
	ws := make([]store.Write, len(round))
	for j, i := range round {
		ws[j] = all[i]
	}
	p, err := s.load(ctx, ws)
	if err != nil {
		return nil, err
	}
	stepOf := make([]int, len(round))
	for j, w := range ws {
		stepOf[j] = len(p.steps)
		if err := p.add(j, w); err != nil {
			errs[round[j]] = &store.WriteError{Index: round[j], Write: w, Err: err}
			stepOf[j] = -1
		}
	}
	if len(p.vers) > 0 {
		if err := s.number(ctx, p.vers); err != nil {
			return nil, err
		}
	}
	// A version that cannot be stamped is not written; with one write per
	// resource, its resource then has nothing to write.
	failed := map[*pending]bool{}
	for _, v := range p.vers {
		err := v.stamp(ctx)
		var we *store.WriteError
		if errors.As(err, &we) {
			errs[round[v.index]] = &store.WriteError{Index: round[v.index], Write: v.w, Err: we.Err}
			failed[v] = true
			continue
		}
		if err != nil {
			return nil, err
		}
	}

	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, parallelWrites)
		written []*pending
		again   []int
		callErr error
	)
	for _, st := range p.order {
		v := st.last
		if failed[v] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := s.writeCurrent(ctx, st.typ, []*resState{st})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				written = append(written, v)
			case errors.Is(err, errRace):
				again = append(again, round[v.index])
			case ctx.Err() != nil:
				callErr = ctx.Err()
			default:
				errs[round[v.index]] = &store.WriteError{Index: round[v.index], Write: v.w, Err: err}
			}
		}()
	}
	wg.Wait()
	if len(written) > 0 {
		// Sequence order, so that history is inserted as numbered.
		slices.SortFunc(written, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
		if err := s.insertHistory(ctx, ctx, written); err != nil {
			return nil, err
		}
	}
	if callErr != nil {
		return nil, callErr
	}
	done := map[*pending]bool{}
	for _, v := range written {
		done[v] = true
	}
	res := p.results()
	for j, i := range round {
		k := stepOf[j]
		if k < 0 {
			continue
		}
		if st := p.steps[k]; st.ver == nil || done[st.ver] {
			results[i] = res[k]
		}
	}
	slices.Sort(again)
	return again, nil
}

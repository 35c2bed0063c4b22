package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// paramKey names a search parameter of a resource type; params maps it to
// the pid that search rows carry.
type paramKey struct{ typ, param string }

// Apply performs writes in one transaction: all of them or none.
func (s *Store) Apply(ctx context.Context, writes []store.Write) ([]store.Result, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if len(writes) == 0 {
		return nil, nil
	}
	for i, w := range writes {
		if err := checkWrite(w); err != nil {
			return nil, &store.WriteError{Index: i, Write: w, Err: err}
		}
	}
	results := make([]store.Result, len(writes))
	var a *applier
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		a = newApplier(ctx, s, tx)
		if err := a.start(); err != nil {
			return err
		}
		for i, w := range writes {
			r, err := a.apply(w)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				return &store.WriteError{Index: i, Write: w, Err: err}
			}
			results[i] = r
		}
		return a.finish()
	}, func() {
		for k, pid := range a.newParams {
			s.params[k] = pid
		}
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func checkWrite(w store.Write) error {
	switch {
	case w.Type == "" || w.ID == "":
		return errors.New("write needs a type and an id")
	case w.Op != store.OpCreate && w.Op != store.OpUpdate && w.Op != store.OpDelete:
		return fmt.Errorf("unknown write operation %v", w.Op)
	case w.Op != store.OpDelete && w.Stamp == nil:
		return errors.New("write needs a Stamp function")
	}
	return nil
}

// applier carries one Apply transaction's state.
type applier struct {
	ctx context.Context
	s   *Store
	tx  *sql.Tx

	seq, rid int64 // last assigned
	lastTime int64 // last_updated of the newest version, Unix ms

	newParams map[paramKey]int64
	counts    map[string]int64

	current, body, insertVersion, insertResource, updateResource,
	clearSearch, clearCompartments, insertSearch, insertSearch8, insertCompartment,
	findParam, insertParam *sql.Stmt

	args []any // reused argument buffer for insertSearch8
}

func newApplier(ctx context.Context, s *Store, tx *sql.Tx) *applier {
	w := &s.ws
	bind := func(st *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, st) }
	return &applier{
		ctx: ctx, s: s, tx: tx,
		newParams:         map[paramKey]int64{},
		counts:            map[string]int64{},
		current:           bind(w.current),
		body:              bind(w.body),
		insertVersion:     bind(w.insertVersion),
		insertResource:    bind(w.insertResource),
		updateResource:    bind(w.updateResource),
		clearSearch:       bind(w.clearSearch),
		clearCompartments: bind(w.clearCompartments),
		insertSearch:      bind(w.insertSearch),
		insertSearch8:     bind(w.insertSearch8),
		insertCompartment: bind(w.insertCompartment),
		findParam:         bind(w.findParam),
		insertParam:       bind(w.insertParam),
		args:              make([]any, 0, 40),
	}
}

// start reads where the sequences stand. Values are assigned here rather
// than by SQLite so that a version and its resource row can point at each
// other without a second statement; the IMMEDIATE transaction makes this the
// only writer.
func (a *applier) start() error {
	return a.tx.StmtContext(a.ctx, a.s.ws.head).QueryRowContext(a.ctx).Scan(&a.seq, &a.lastTime, &a.rid)
}

func (a *applier) finish() error {
	st := a.tx.StmtContext(a.ctx, a.s.ws.addCount)
	for typ, n := range a.counts {
		if n == 0 {
			continue
		}
		if _, err := st.ExecContext(a.ctx, typ, n); err != nil {
			return err
		}
	}
	return nil
}

// cur is a resource's row in resources.
type cur struct {
	found    bool
	rid      int64
	version  int64
	lastMs   int64
	deleted  bool
	hash     string
	practice string
	seq      int64
}

func (a *applier) lookup(typ, id string) (cur, error) {
	var c cur
	err := a.current.QueryRowContext(a.ctx, typ, id).Scan(&c.rid, &c.version, &c.lastMs, &c.deleted, &c.hash, &c.practice, &c.seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return cur{}, nil
	case err != nil:
		return cur{}, err
	}
	c.found = true
	return c, nil
}

func (a *applier) apply(w store.Write) (store.Result, error) {
	c, err := a.lookup(w.Type, w.ID)
	if err != nil {
		return store.Result{}, err
	}
	if w.IfMatch != 0 && (!c.found || c.version != w.IfMatch) {
		if !c.found {
			return store.Result{}, fmt.Errorf("%w: %s/%s does not exist, expected version %d", store.ErrConflict, w.Type, w.ID, w.IfMatch)
		}
		return store.Result{}, fmt.Errorf("%w: %s/%s is at version %d, expected %d", store.ErrConflict, w.Type, w.ID, c.version, w.IfMatch)
	}
	switch w.Op {
	case store.OpCreate:
		if c.found {
			return store.Result{}, fmt.Errorf("%w: %s/%s", store.ErrExists, w.Type, w.ID)
		}
	case store.OpUpdate:
		if c.found && !c.deleted && w.IfChanged && w.Hash != "" && w.Hash == c.hash {
			return a.unchanged(w, c)
		}
	case store.OpDelete:
		if !c.found {
			return store.Result{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, w.Type, w.ID)
		}
		if c.deleted {
			return a.unchanged(w, c)
		}
	}

	// lastUpdated never goes back, neither for the resource nor across the
	// store, whatever the clock does, so that history order and _since agree.
	now := time.Now().UnixMilli()
	t := max(now, a.lastTime)
	if c.found {
		t = max(t, c.lastMs+1)
	}
	a.lastTime = t
	a.seq++
	version := c.version + 1
	lastUpdated := time.UnixMilli(t).UTC()
	deleted := w.Op == store.OpDelete

	var body []byte
	if !deleted {
		body, err = w.Stamp(version, lastUpdated)
		if err != nil {
			return store.Result{}, fmt.Errorf("stamp: %w", err)
		}
		if body == nil {
			body = []byte{}
		}
	}
	rid := c.rid
	if !c.found {
		a.rid++
		rid = a.rid
	}
	if _, err := a.insertVersion.ExecContext(a.ctx, a.seq, rid, w.Type, version, t, deleted, body); err != nil {
		return store.Result{}, err
	}
	hash, practice := w.Hash, w.Practice
	if deleted {
		hash, practice = "", c.practice
	}
	if c.found {
		_, err = a.updateResource.ExecContext(a.ctx, version, a.seq, t, deleted, hash, practice, rid)
	} else {
		_, err = a.insertResource.ExecContext(a.ctx, rid, w.Type, w.ID, version, a.seq, t, deleted, hash, practice)
	}
	if err != nil {
		return store.Result{}, err
	}
	if err := a.index(w, rid, c.found, deleted); err != nil {
		return store.Result{}, err
	}

	wasLive, isLive := c.found && !c.deleted, !deleted
	switch {
	case isLive && !wasLive:
		a.counts[w.Type]++
	case wasLive && !isLive:
		a.counts[w.Type]--
	}
	return store.Result{
		Resource: store.Resource{
			Type: w.Type, ID: w.ID, VersionID: version, LastUpdated: lastUpdated,
			Deleted: deleted, Body: body,
		},
		Created: !deleted && (!c.found || c.deleted),
	}, nil
}

// unchanged reports the current version of a resource a write left alone.
func (a *applier) unchanged(w store.Write, c cur) (store.Result, error) {
	r := store.Resource{
		Type: w.Type, ID: w.ID, VersionID: c.version,
		LastUpdated: time.UnixMilli(c.lastMs).UTC(), Deleted: c.deleted,
	}
	if !c.deleted {
		if err := a.body.QueryRowContext(a.ctx, c.seq).Scan((*[]byte)(&r.Body)); err != nil {
			return store.Result{}, err
		}
	}
	return store.Result{Resource: r, Unchanged: true}, nil
}

// index replaces the search values and compartments of a resource with those
// of its new version; a deleted resource has none.
func (a *applier) index(w store.Write, rid int64, existed, deleted bool) error {
	if existed {
		if _, err := a.clearSearch.ExecContext(a.ctx, rid); err != nil {
			return err
		}
		if _, err := a.clearCompartments.ExecContext(a.ctx, rid); err != nil {
			return err
		}
	}
	if deleted {
		return nil
	}
	vals := w.Index
	for len(vals) > 0 {
		n := min(len(vals), 8)
		st := a.insertSearch8
		if n < 8 {
			n, st = 1, a.insertSearch
		}
		a.args = a.args[:0]
		for _, v := range vals[:n] {
			pid, err := a.pid(w.Type, v.Param)
			if err != nil {
				return err
			}
			a.args = append(a.args, rid, pid, v.Value, v.Low, v.High)
		}
		if _, err := st.ExecContext(a.ctx, a.args...); err != nil {
			return err
		}
		vals = vals[n:]
	}
	for _, comp := range w.Compartments {
		if _, err := a.insertCompartment.ExecContext(a.ctx, rid, comp); err != nil {
			return err
		}
	}
	return nil
}

// pid returns the id of a (type, parameter) pair, creating it when new.
// Ids created here reach the store-wide map only once the transaction
// commits.
func (a *applier) pid(typ, param string) (int64, error) {
	k := paramKey{typ, param}
	if pid, ok := a.s.params[k]; ok {
		return pid, nil
	}
	if pid, ok := a.newParams[k]; ok {
		return pid, nil
	}
	var pid int64
	err := a.findParam.QueryRowContext(a.ctx, typ, param).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		var res sql.Result
		res, err = a.insertParam.ExecContext(a.ctx, typ, param)
		if err == nil {
			pid, err = res.LastInsertId()
		}
	}
	if err != nil {
		return 0, err
	}
	a.newParams[k] = pid
	return pid, nil
}

package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// paramKey names a search parameter of a resource type; params maps it to
// the pid that search rows carry.
type paramKey struct{ typ, param string }

// bulk holds the multi-row inserts of Apply.
type bulk struct {
	versions, resources, search, compartments, versionCompartments *bulkInsert
}

func newBulk() bulk {
	return bulk{
		versions:            newBulkInsert("INSERT INTO versions(seq, rid, type, version, last_updated, deleted, body, practice) VALUES ", 8),
		resources:           newBulkInsert("INSERT INTO resources(rid, type, id, version, seq, last_updated, deleted, hash, practice, idx) VALUES ", 10),
		search:              newBulkInsert("INSERT OR IGNORE INTO search(pid, value, system, low, high, rid) VALUES ", 6),
		compartments:        newBulkInsert("INSERT OR IGNORE INTO compartments(compartment, rid) VALUES ", 2),
		versionCompartments: newBulkInsert("INSERT OR IGNORE INTO version_compartments(compartment, type, seq) VALUES ", 3),
	}
}

func (b bulk) prepare(ctx context.Context, db *sql.DB) error {
	for _, bi := range []*bulkInsert{b.versions, b.resources, b.search, b.compartments, b.versionCompartments} {
		if err := bi.prepare(ctx, db); err != nil {
			return err
		}
	}
	return nil
}

func (b bulk) close() {
	b.versions.close()
	b.resources.close()
	b.search.close()
	b.compartments.close()
	b.versionCompartments.close()
}

// Apply performs writes in one transaction: all of them or none.
//
// It works in two phases: first every write is checked and stamped against
// the state as this Apply leaves it (so a batch may write one resource more
// than once), then all rows are written with multi-row statements, index
// entries in lookup order and only those that changed.
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
		if err := a.prefetch(writes); err != nil {
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
		return a.flush()
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

// ApplyEach performs writes in order, each succeeding or failing on its
// own, as if by its own Apply; the ones that succeed are committed together,
// in one transaction, which is what makes it fast. See store.Resources.
func (s *Store) ApplyEach(ctx context.Context, writes []store.Write) ([]store.Result, []error, error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.leave()
	results := make([]store.Result, len(writes))
	errs := make([]error, len(writes))
	if len(writes) == 0 {
		return results, errs, nil
	}
	var a *applier
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		a = newApplier(ctx, s, tx)
		if err := a.start(); err != nil {
			return err
		}
		if err := a.prefetch(writes); err != nil {
			return err
		}
		for i, w := range writes {
			err := checkWrite(w)
			if err == nil {
				results[i], err = a.apply(w)
			}
			switch {
			case err == nil:
			case ctx.Err() != nil || !isWriteFault(err):
				return err
			default:
				results[i], errs[i] = store.Result{}, &store.WriteError{Index: i, Write: w, Err: err}
			}
		}
		return a.flush()
	}, func() {
		for k, pid := range a.newParams {
			s.params[k] = pid
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return results, errs, nil
}

var _ store.Store = (*Store)(nil)

// errStamp marks the failure of a write's Stamp function.
var errStamp = errors.New("stamp")

// isWriteFault reports whether err is the fault of one write (its checks,
// its Stamp), which leaves the transaction usable, rather than of the
// database.
func isWriteFault(err error) bool {
	return errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, errStamp) || errors.Is(err, errInvalidWrite)
}

// errInvalidWrite marks a write that could never succeed.
var errInvalidWrite = errors.New("invalid write")

func checkWrite(w store.Write) error {
	switch {
	case w.Type == "" || w.ID == "":
		return fmt.Errorf("%w: no type or no id", errInvalidWrite)
	case w.Op != store.OpCreate && w.Op != store.OpUpdate && w.Op != store.OpDelete:
		return fmt.Errorf("%w: unknown operation %v", errInvalidWrite, w.Op)
	case w.Op != store.OpDelete && w.Stamp == nil:
		return fmt.Errorf("%w: no Stamp function", errInvalidWrite)
	}
	return nil
}

// resState is a resource as the Apply in progress sees it.
type resState struct {
	rid        int64
	typ, id    string
	existed    bool   // it had a row before this Apply
	oldDeleted bool   // it was deleted before this Apply
	oldIdx     []byte // its resources.idx before this Apply
	written    bool   // this Apply made a version of it
	version    int64
	seq        int64
	lastMs     int64
	deleted    bool
	hash       string
	practice   string
	body       []byte   // of the current version, when written here
	index      indexSet // of the current version, when written here
}

type resKey struct{ typ, id string }

// applier carries one Apply transaction.
type applier struct {
	ctx context.Context
	s   *Store
	tx  *sql.Tx

	seq, rid int64 // last assigned
	lastTime int64 // last_updated of the newest version, Unix ms

	state     map[resKey]*resState
	absent    map[resKey]bool // known not to exist (see prefetch)
	order     []*resState     // written resources, first write first
	versions  []any           // versions rows, flat
	vcomps    []any           // version_compartments rows, flat
	newParams map[paramKey]int64
}

func newApplier(ctx context.Context, s *Store, tx *sql.Tx) *applier {
	return &applier{
		ctx: ctx, s: s, tx: tx,
		state:     map[resKey]*resState{},
		absent:    map[resKey]bool{},
		newParams: map[paramKey]int64{},
	}
}

func (a *applier) stmt(st *sql.Stmt) *sql.Stmt { return a.tx.StmtContext(a.ctx, st) }

// start reads where the sequences stand. Values are assigned here rather
// than by SQLite so that rows can point at each other before they are
// written; the IMMEDIATE transaction makes this the only writer.
func (a *applier) start() error {
	return a.stmt(a.s.ws.head).QueryRowContext(a.ctx).Scan(&a.seq, &a.lastTime, &a.rid)
}

// lookup returns the state of a resource, nil if it does not exist.
func (a *applier) lookup(typ, id string) (*resState, error) {
	k := resKey{typ, id}
	if st, ok := a.state[k]; ok {
		return st, nil
	}
	if a.absent[k] {
		return nil, nil
	}
	st := &resState{typ: typ, id: id, existed: true}
	err := a.stmt(a.s.ws.current).QueryRowContext(a.ctx, typ, id).Scan(
		&st.rid, &st.version, &st.lastMs, &st.deleted, &st.hash, &st.practice, &st.seq, &st.oldIdx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st.oldDeleted = st.deleted
	a.state[k] = st
	return st, nil
}

// prefetchChunk is how many ids one prefetch query names.
const prefetchChunk = 100

// prefetch reads the state of the resources writes name, a chunk of ids of
// one type per query, so that applying them needs no query each: a batch
// of new resources costs a few queries instead of one per resource.
func (a *applier) prefetch(writes []store.Write) error {
	byType := map[string][]string{}
	for _, w := range writes {
		k := resKey{w.Type, w.ID}
		if _, ok := a.state[k]; ok || a.absent[k] || w.Type == "" || w.ID == "" {
			continue
		}
		a.absent[k] = true // until found below
		byType[w.Type] = append(byType[w.Type], w.ID)
	}
	for typ, ids := range byType {
		for len(ids) > 0 {
			chunk := ids[:min(prefetchChunk, len(ids))]
			ids = ids[len(chunk):]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, typ)
			for _, id := range chunk {
				args = append(args, id)
			}
			rows, err := a.tx.QueryContext(a.ctx, `SELECT id, rid, version, last_updated, deleted, hash, practice, seq, idx FROM resources WHERE type = ? AND id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				st := &resState{typ: typ, existed: true}
				if err := rows.Scan(&st.id, &st.rid, &st.version, &st.lastMs, &st.deleted, &st.hash, &st.practice, &st.seq, &st.oldIdx); err != nil {
					rows.Close()
					return err
				}
				st.oldDeleted = st.deleted
				k := resKey{typ, st.id}
				delete(a.absent, k)
				a.state[k] = st
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) apply(w store.Write) (store.Result, error) {
	st, err := a.lookup(w.Type, w.ID)
	if err != nil {
		return store.Result{}, err
	}
	if w.IfMatch != 0 && (st == nil || st.version != w.IfMatch) {
		if st == nil {
			return store.Result{}, fmt.Errorf("%w: %s/%s does not exist, expected version %d", store.ErrConflict, w.Type, w.ID, w.IfMatch)
		}
		return store.Result{}, fmt.Errorf("%w: %s/%s is at version %d, expected %d", store.ErrConflict, w.Type, w.ID, st.version, w.IfMatch)
	}
	switch w.Op {
	case store.OpCreate:
		if st != nil {
			return store.Result{}, fmt.Errorf("%w: %s/%s", store.ErrExists, w.Type, w.ID)
		}
	case store.OpUpdate:
		if st != nil && !st.deleted && w.IfChanged && w.Hash != "" && w.Hash == st.hash {
			return a.unchanged(st)
		}
	case store.OpDelete:
		if st == nil {
			return store.Result{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, w.Type, w.ID)
		}
		if st.deleted {
			return a.unchanged(st)
		}
	}

	// lastUpdated never goes back, neither for the resource nor across the
	// store, whatever the clock does, so that history order and _since agree.
	t := max(time.Now().UnixMilli(), a.lastTime)
	if st != nil {
		t = max(t, st.lastMs+1)
	}
	lastUpdated := time.UnixMilli(t).UTC()
	deleted := w.Op == store.OpDelete
	created := st == nil || st.deleted
	var version int64 = 1
	if st != nil {
		version = st.version + 1
	}

	var body []byte
	var index indexSet
	if !deleted {
		if body, err = w.Stamp(version, lastUpdated); err != nil {
			return store.Result{}, fmt.Errorf("%w: %w", errStamp, err)
		}
		if body == nil {
			body = []byte{}
		}
		if index, err = a.indexSet(w); err != nil {
			return store.Result{}, err
		}
	}

	// A deletion has the membership of the live version before it.
	practice, comps := w.Practice, index.compartments
	if deleted {
		practice = st.practice
		if comps, err = st.liveCompartments(); err != nil {
			return store.Result{}, fmt.Errorf("%s/%s: %w", w.Type, w.ID, err)
		}
	}

	if st == nil {
		a.rid++
		st = &resState{rid: a.rid, typ: w.Type, id: w.ID}
		a.state[resKey{w.Type, w.ID}] = st
	}
	if !st.written {
		st.written = true
		a.order = append(a.order, st)
	}
	a.lastTime = t
	a.seq++
	st.version, st.seq, st.lastMs, st.deleted, st.body, st.index = version, a.seq, t, deleted, body, index
	if deleted {
		st.hash = ""
	} else {
		st.hash, st.practice = w.Hash, w.Practice
	}
	a.versions = append(a.versions, a.seq, st.rid, w.Type, version, t, deleted, body, practice)
	for _, c := range comps {
		a.vcomps = append(a.vcomps, c, w.Type, a.seq)
	}

	return store.Result{
		Resource: store.Resource{
			Type: w.Type, ID: w.ID, VersionID: version, LastUpdated: lastUpdated,
			Deleted: deleted, Body: body,
		},
		Created: !deleted && created,
	}, nil
}

// liveCompartments are the patient compartments of the resource's live
// current version, as this Apply sees it.
func (st *resState) liveCompartments() ([]string, error) {
	if st.written {
		return st.index.compartments, nil
	}
	old, err := decodeIndex(st.oldIdx)
	return old.compartments, err
}

// unchanged reports the current version of a resource a write left alone.
func (a *applier) unchanged(st *resState) (store.Result, error) {
	r := store.Resource{
		Type: st.typ, ID: st.id, VersionID: st.version,
		LastUpdated: time.UnixMilli(st.lastMs).UTC(), Deleted: st.deleted,
	}
	switch {
	case st.deleted:
	case st.written:
		r.Body = st.body
	default:
		if err := a.stmt(a.s.ws.body).QueryRowContext(a.ctx, st.seq).Scan((*[]byte)(&r.Body)); err != nil {
			return store.Result{}, err
		}
	}
	return store.Result{Resource: r, Unchanged: true}, nil
}

// indexSet resolves a write's index values to search entries.
func (a *applier) indexSet(w store.Write) (indexSet, error) {
	x := indexSet{entries: make([]entry, 0, len(w.Index)), compartments: slices.Clone(w.Compartments)}
	for _, v := range w.Index {
		pid, err := a.pid(w.Type, v.Param)
		if err != nil {
			return indexSet{}, err
		}
		x.entries = append(x.entries, entry{pid: pid, value: v.Value, system: v.System, low: v.Low, high: v.High})
	}
	x.normalize()
	return x, nil
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
	err := a.stmt(a.s.ws.findParam).QueryRowContext(a.ctx, typ, param).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		var res sql.Result
		res, err = a.stmt(a.s.ws.insertParam).ExecContext(a.ctx, typ, param)
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

// searchRow and compartmentRow are index rows to insert or delete.
type searchRow struct {
	entry
	rid int64
}

type compartmentRow struct {
	compartment string
	rid         int64
}

// flush writes what the writes made: versions, resource rows, and the
// index entries that changed. Entries go in as the writes made them:
// sorting a batch's entries into key order first was measured to cost
// more (5% of an import) than it saved SQLite, whose page cache holds the
// pages one batch touches either way.
func (a *applier) flush() error {
	ctx, s := a.ctx, a.s
	if err := s.bulk.versions.exec(ctx, a.tx, a.versions); err != nil {
		return err
	}
	if err := s.bulk.versionCompartments.exec(ctx, a.tx, a.vcomps); err != nil {
		return err
	}

	var newRows []any
	var addSearch, delSearch []searchRow
	var addComp, delComp []compartmentRow
	counts := map[string]int64{}
	for _, st := range a.order {
		var old indexSet
		if st.existed {
			var err error
			if old, err = decodeIndex(st.oldIdx); err != nil {
				return fmt.Errorf("%s/%s: %w", st.typ, st.id, err)
			}
		}
		gone, added := diffSorted(old.entries, st.index.entries, compareEntry)
		for _, e := range gone {
			delSearch = append(delSearch, searchRow{e, st.rid})
		}
		for _, e := range added {
			addSearch = append(addSearch, searchRow{e, st.rid})
		}
		goneC, addedC := diffSorted(old.compartments, st.index.compartments, strings.Compare)
		for _, c := range goneC {
			delComp = append(delComp, compartmentRow{c, st.rid})
		}
		for _, c := range addedC {
			addComp = append(addComp, compartmentRow{c, st.rid})
		}

		idx := []byte{}
		if !st.deleted {
			idx = encodeIndex(st.index)
		}
		if st.existed {
			if _, err := a.stmt(s.ws.updateResource).ExecContext(ctx, st.version, st.seq, st.lastMs, st.deleted, st.hash, st.practice, idx, st.rid); err != nil {
				return err
			}
		} else {
			newRows = append(newRows, st.rid, st.typ, st.id, st.version, st.seq, st.lastMs, st.deleted, st.hash, st.practice, idx)
		}

		wasLive := st.existed && !st.oldDeleted
		switch {
		case !st.deleted && !wasLive:
			counts[st.typ]++
		case st.deleted && wasLive:
			counts[st.typ]--
		}
	}
	if err := s.bulk.resources.exec(ctx, a.tx, newRows); err != nil {
		return err
	}

	if len(delSearch) > 0 {
		del := a.stmt(s.ws.deleteSearch)
		for _, r := range delSearch {
			if _, err := del.ExecContext(ctx, r.pid, r.value, r.system, r.low, r.high, r.rid); err != nil {
				return err
			}
		}
	}
	if len(delComp) > 0 {
		del := a.stmt(s.ws.deleteCompartment)
		for _, r := range delComp {
			if _, err := del.ExecContext(ctx, r.compartment, r.rid); err != nil {
				return err
			}
		}
	}

	args := make([]any, 0, 5*len(addSearch))
	for _, r := range addSearch {
		args = append(args, r.pid, r.value, r.system, r.low, r.high, r.rid)
	}
	if err := s.bulk.search.exec(ctx, a.tx, args); err != nil {
		return err
	}
	slices.SortFunc(addComp, func(x, y compartmentRow) int {
		return cmp.Or(strings.Compare(x.compartment, y.compartment), cmp.Compare(x.rid, y.rid))
	})
	args = args[:0]
	for _, r := range addComp {
		args = append(args, r.compartment, r.rid)
	}
	if err := s.bulk.compartments.exec(ctx, a.tx, args); err != nil {
		return err
	}

	add := a.stmt(s.ws.addCount)
	for typ, n := range counts {
		if n == 0 {
			continue
		}
		if _, err := add.ExecContext(ctx, typ, n); err != nil {
			return err
		}
	}
	return nil
}

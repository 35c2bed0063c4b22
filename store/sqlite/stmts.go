package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// readStmts are the prepared statements of the hot read paths. database/sql
// prepares each once per pooled connection and reuses it.
type readStmts struct {
	read, vread, rid           *sql.Stmt
	count, countAll            *sql.Stmt
	lastSeq, seqFrom           *sql.Stmt
	historySystem, historyType *sql.Stmt
	historyInstance            *sql.Stmt
	recordGet, recordFind      *sql.Stmt
}

// writeStmts are prepared on the write connection; a transaction binds the
// ones it uses with tx.StmtContext, which reuses the prepared statement.
type writeStmts struct {
	head, current, body                             *sql.Stmt
	updateResource, deleteSearch, deleteCompartment *sql.Stmt
	findParam, insertParam, addCount                *sql.Stmt
}

type stmtDef struct {
	dst   **sql.Stmt
	query string
}

func prepareAll(ctx context.Context, db *sql.DB, defs []stmtDef) error {
	for _, d := range defs {
		st, err := db.PrepareContext(ctx, d.query)
		if err != nil {
			return fmt.Errorf("sqlite store: prepare %q: %w", d.query, err)
		}
		*d.dst = st
	}
	return nil
}

func closeAll(stmts ...*sql.Stmt) {
	for _, st := range stmts {
		if st != nil {
			st.Close()
		}
	}
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&r.read, `SELECT r.version, r.last_updated, r.deleted, r.practice, v.body FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?`},
		{&r.vread, `SELECT v.last_updated, v.deleted, v.body FROM resources r JOIN versions v ON v.rid = r.rid AND v.version = ? WHERE r.type = ? AND r.id = ?`},
		{&r.rid, `SELECT rid FROM resources WHERE type = ? AND id = ?`},
		{&r.count, `SELECT n FROM counts WHERE type = ?`},
		{&r.countAll, `SELECT coalesce(sum(n), 0) FROM counts`},
		{&r.lastSeq, `SELECT coalesce(max(seq), 0) FROM versions`},
		{&r.seqFrom, `SELECT seq, last_updated FROM versions WHERE seq >= ? ORDER BY seq LIMIT 1`},
		{&r.historySystem, `SELECT v.seq, r.type, r.id, v.version, v.last_updated, v.deleted, v.body FROM versions v JOIN resources r ON r.rid = v.rid WHERE v.seq < ? AND v.seq >= ? ORDER BY v.seq DESC LIMIT ?`},
		{&r.historyType, `SELECT v.seq, r.type, r.id, v.version, v.last_updated, v.deleted, v.body FROM versions v JOIN resources r ON r.rid = v.rid WHERE v.type = ? AND v.seq < ? AND v.seq >= ? ORDER BY v.seq DESC LIMIT ?`},
		{&r.historyInstance, `SELECT v.seq, r.type, r.id, v.version, v.last_updated, v.deleted, v.body FROM versions v JOIN resources r ON r.rid = v.rid WHERE v.rid = ? AND v.seq < ? AND v.seq >= ? ORDER BY v.version DESC LIMIT ?`},
		{&r.recordGet, `SELECT rev, expires_at, data FROM records WHERE coll = ? AND id = ? AND (expires_at = 0 OR expires_at > ?)`},
		{&r.recordFind, `SELECT r.id, r.rev, r.expires_at, r.data FROM record_keys k JOIN records r ON r.coll = k.coll AND r.id = k.id WHERE k.coll = ? AND k.key = ? AND k.value = ? AND (r.expires_at = 0 OR r.expires_at > ?) ORDER BY k.id`},
	})
}

func (r *readStmts) close() {
	closeAll(r.read, r.vread, r.rid, r.count, r.countAll, r.lastSeq, r.seqFrom, r.historySystem, r.historyType, r.historyInstance, r.recordGet, r.recordFind)
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&w.head, `SELECT coalesce(max(seq), 0), coalesce(max(last_updated), 0), (SELECT coalesce(max(rid), 0) FROM resources) FROM (SELECT seq, last_updated FROM versions ORDER BY seq DESC LIMIT 1)`},
		{&w.current, `SELECT rid, version, last_updated, deleted, hash, practice, seq, idx FROM resources WHERE type = ? AND id = ?`},
		{&w.body, `SELECT body FROM versions WHERE seq = ?`},
		{&w.updateResource, `UPDATE resources SET version = ?, seq = ?, last_updated = ?, deleted = ?, hash = ?, practice = ?, idx = ? WHERE rid = ?`},
		{&w.deleteSearch, `DELETE FROM search WHERE pid = ? AND value = ? AND system = ? AND low = ? AND high = ? AND rid = ?`},
		{&w.deleteCompartment, `DELETE FROM compartments WHERE compartment = ? AND rid = ?`},
		{&w.findParam, `SELECT pid FROM params WHERE type = ? AND param = ?`},
		{&w.insertParam, `INSERT INTO params(type, param) VALUES (?, ?)`},
		{&w.addCount, `INSERT INTO counts(type, n) VALUES (?, ?) ON CONFLICT(type) DO UPDATE SET n = n + excluded.n`},
	})
}

func (w *writeStmts) close() {
	closeAll(w.head, w.current, w.body, w.updateResource, w.deleteSearch, w.deleteCompartment, w.findParam, w.insertParam, w.addCount)
}

// searchStmts caches the prepared statements of searches by their text.
// Plans of one shape (the same parameters, matches and sort, any values)
// make the same text, so an application's few shapes are parsed once per
// read connection rather than on every search.
type searchStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxSearchStmts bounds the cache; shapes past it are prepared each time.
const maxSearchStmts = 256

// get returns the cached statement for text, preparing it on db when the
// cache has room; nil means "run the text unprepared".
func (c *searchStmts) get(ctx context.Context, db *sql.DB, text string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[text]; ok {
		return st, nil
	}
	if len(c.m) >= maxSearchStmts {
		return nil, nil
	}
	st, err := db.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[text] = st
	return st, nil
}

func (c *searchStmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

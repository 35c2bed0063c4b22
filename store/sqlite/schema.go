package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaVersion is stored in PRAGMA user_version. A database written by a
// newer schema is refused rather than misread.
const schemaVersion = 1

// schema is the whole database layout.
//
// Resources: one row per resource in resources (its current state), one row
// per version in versions, the current version's search index values in
// search and its patient compartments in compartments. search and
// compartments are clustered by what lookups ask for, and search has no
// second index: its key (pid, value, rid, …) both finds a clause's entries
// (pid, value) and checks another clause for one candidate resource
// (pid, value, rid) — dates and numbers have the empty value, so their
// checks seek too (see searchsql.go). A second index would cost every
// write a second B-tree insert per entry. A resource's own
// entries are found again through resources.idx, which holds them encoded
// (see encodeIndex), so an update deletes exactly the entries that changed.
// Rows name a resource by its integer rid and a
// (type, search parameter) pair by its integer pid, which keeps entries
// short: inserts land all over the lookup order, and the pages they dirty
// bound write throughput.
//
// versions.seq is the global commit order; history is listed by it, newest
// first. last_updated (Unix milliseconds) never decreases along seq, so a
// _since bound is a seq bound, found by binary search.
//
// Records: records holds every collection's documents, record_keys the values
// of their declared key fields.
const schema = `
CREATE TABLE resources (
	rid          INTEGER PRIMARY KEY,
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	seq          INTEGER NOT NULL,
	last_updated INTEGER NOT NULL,
	deleted      INTEGER NOT NULL,
	hash         TEXT    NOT NULL,
	practice     TEXT    NOT NULL,
	idx          BLOB    NOT NULL
);
CREATE UNIQUE INDEX resources_key ON resources(type, id);

CREATE TABLE versions (
	seq          INTEGER PRIMARY KEY,
	rid          INTEGER NOT NULL,
	type         TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	last_updated INTEGER NOT NULL,
	deleted      INTEGER NOT NULL,
	body         BLOB
);
CREATE UNIQUE INDEX versions_rid ON versions(rid, version);
CREATE INDEX versions_type ON versions(type, seq);

CREATE TABLE params (
	pid   INTEGER PRIMARY KEY,
	type  TEXT NOT NULL,
	param TEXT NOT NULL,
	UNIQUE (type, param)
);

CREATE TABLE search (
	pid   INTEGER NOT NULL,
	value  TEXT    NOT NULL,
	system TEXT    NOT NULL,
	low    TEXT    NOT NULL,
	high  TEXT    NOT NULL,
	rid   INTEGER NOT NULL,
	PRIMARY KEY (pid, value, rid, system, low, high)
) WITHOUT ROWID;

CREATE TABLE compartments (
	compartment TEXT    NOT NULL,
	rid         INTEGER NOT NULL,
	PRIMARY KEY (compartment, rid)
) WITHOUT ROWID;

CREATE TABLE counts (
	type TEXT PRIMARY KEY,
	n    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE collections (
	name TEXT PRIMARY KEY,
	keys TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE records (
	coll       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	rev        INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	PRIMARY KEY (coll, id)
) WITHOUT ROWID;
CREATE INDEX records_expiry ON records(expires_at) WHERE expires_at > 0;

CREATE TABLE record_keys (
	coll  TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	id    TEXT NOT NULL,
	PRIMARY KEY (coll, key, value, id)
) WITHOUT ROWID;
CREATE INDEX record_keys_id ON record_keys(coll, id);
`

// migrate creates the schema in a new database and refuses one it does not
// know. It runs in a write transaction, so two processes opening a new
// directory at once do not both create it.
func (s *Store) migrate(ctx context.Context) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		switch {
		case v == schemaVersion:
			return nil
		case v > schemaVersion:
			return fmt.Errorf("database schema version %d is newer than this program's %d", v, schemaVersion)
		case v != 0:
			return fmt.Errorf("database schema version %d has no upgrade path", v)
		}
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
		return err
	}, nil)
}

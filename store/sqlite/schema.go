package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaVersion is stored in PRAGMA user_version. A database written by a
// newer schema is refused rather than misread.
const schemaVersion = 3

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
// Each version also records its own membership, which filtered history
// lists by (store.HistoryQuery): versions.practice, and its patient
// compartments in version_compartments; a deletion has those of the live
// version before it. Both are keyed by what a filtered type history seeks
// (practice or compartment, then type), in seq order.
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
	body         BLOB,
	practice     TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX versions_rid ON versions(rid, version);
CREATE INDEX versions_type ON versions(type, seq);
` + membershipSchema + typeOrderSchema + `

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

// membershipSchema is what schema version 2 added to version 1, besides
// versions.practice.
const membershipSchema = `
CREATE INDEX versions_practice ON versions(practice, type, seq);
CREATE TABLE version_compartments (
	compartment TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	PRIMARY KEY (compartment, type, seq)
) WITHOUT ROWID;
`

// typeOrderSchema is what schema version 3 added: the resources of one
// type in rid order (an index on type holds the rowid after it), so that
// a search with no clause to start from — a whole type, as bulk export and
// paging through a type read it — pages by a range seek instead of
// sorting every resource of the type for each page.
const typeOrderSchema = `
CREATE INDEX IF NOT EXISTS resources_type ON resources(type);
`

// upgrade1 takes a version 1 database to version 2. Version 1 did not
// record past versions' membership: each version gets the one its
// resource has now (a deleted resource's practice, and no compartments).
const upgrade1 = `
ALTER TABLE versions ADD COLUMN practice TEXT NOT NULL DEFAULT '';
` + membershipSchema + `
UPDATE versions SET practice = (SELECT r.practice FROM resources r WHERE r.rid = versions.rid);
INSERT OR IGNORE INTO version_compartments(compartment, type, seq)
	SELECT c.compartment, v.type, v.seq FROM compartments c JOIN versions v ON v.rid = c.rid;
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
		case v == 1 || v == 2:
			if v == 1 {
				if _, err := tx.ExecContext(ctx, upgrade1); err != nil {
					return fmt.Errorf("upgrade schema from version 1: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, typeOrderSchema); err != nil {
				return fmt.Errorf("upgrade schema from version 2: %w", err)
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
			return err
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

package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Collection returns the handle of a platform-record collection. Handles
// are cached by name; a def whose keys differ from the cached one replaces
// it.
func (s *Store) Collection(def store.CollectionDef) store.Collection {
	keys := slices.Clone(def.Keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	s.collMu.Lock()
	defer s.collMu.Unlock()
	if c, ok := s.colls[def.Name]; ok && slices.Equal(c.keys, keys) {
		return c
	}
	c := &collection{s: s, name: def.Name, keys: keys}
	s.colls[def.Name] = c
	return c
}

type collection struct {
	s    *Store
	name string
	keys []string // sorted, unique

	// ready is set once the stored key list matches keys (record_keys then
	// holds the values of exactly these fields).
	mu    sync.Mutex
	ready bool
}

// prepare makes record_keys match the declared keys the first time the
// collection is used, re-extracting every record's key values when the
// declaration changed since the records were written.
func (c *collection) prepare(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	want, _ := json.Marshal(c.keys)
	var have string
	err := c.s.r.QueryRowContext(ctx, "SELECT keys FROM collections WHERE name = ?", c.name).Scan(&have)
	if err == nil && have == string(want) {
		c.ready = true
		return nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return c.s.fail(ctx, err)
	}
	err = c.s.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM record_keys WHERE coll = ?", c.name); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT id, data FROM records WHERE coll = ?", c.name)
		if err != nil {
			return err
		}
		type rec struct {
			id   string
			data []byte
		}
		var recs []rec
		for rows.Next() {
			var r rec
			if err := rows.Scan(&r.id, &r.data); err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range recs {
			if err := c.insertKeys(ctx, tx, r.id, keyValues(r.data, c.keys)); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO collections(name, keys) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET keys = excluded.keys", c.name, string(want))
		return err
	}, nil)
	if err != nil {
		return err
	}
	c.ready = true
	return nil
}

// begin is the common start of every collection call.
func (c *collection) begin(ctx context.Context) error {
	if err := c.s.enter(); err != nil {
		return err
	}
	if err := c.prepare(ctx); err != nil {
		c.s.leave()
		return err
	}
	return nil
}

// Get returns an unexpired record.
func (c *collection) Get(ctx context.Context, id string) (store.Record, error) {
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	r := store.Record{ID: id}
	var exp int64
	err := c.s.rs.recordGet.QueryRowContext(ctx, c.name, id, nowNano()).Scan(&r.Rev, &exp, &r.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, c.name, id)
	}
	if err != nil {
		return store.Record{}, c.s.fail(ctx, err)
	}
	r.ExpiresAt = fromNano(exp)
	return r, nil
}

// Find returns the unexpired records whose key field holds value.
func (c *collection) Find(ctx context.Context, key, value string) ([]store.Record, error) {
	if _, ok := slices.BinarySearch(c.keys, key); !ok {
		return nil, fmt.Errorf("sqlite store: %q is not a declared key of collection %q", key, c.name)
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.s.leave()
	rows, err := c.s.rs.recordFind.QueryContext(ctx, c.name, key, value, nowNano())
	if err != nil {
		return nil, c.s.fail(ctx, err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		var r store.Record
		var exp int64
		if err := rows.Scan(&r.ID, &r.Rev, &exp, &r.Data); err != nil {
			return nil, c.s.fail(ctx, err)
		}
		r.ExpiresAt = fromNano(exp)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, c.s.fail(ctx, err)
	}
	return out, nil
}

// Create stores a new record with Rev 1. An expired record with the same id
// is replaced.
func (c *collection) Create(ctx context.Context, r store.Record) (store.Record, error) {
	if err := checkRecord(r); err != nil {
		return store.Record{}, err
	}
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	r.Rev = 1
	err := c.s.writeTx(ctx, func(tx *sql.Tx) error {
		var exp int64
		err := tx.QueryRowContext(ctx, "SELECT expires_at FROM records WHERE coll = ? AND id = ?", c.name, r.ID).Scan(&exp)
		switch {
		case err == nil && !expired(exp, nowNano()):
			return fmt.Errorf("%w: %s/%s", store.ErrExists, c.name, r.ID)
		case err == nil:
			if err := c.remove(ctx, tx, r.ID); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		return c.put(ctx, tx, r, true)
	}, nil)
	if err != nil {
		return store.Record{}, err
	}
	return normalized(r), nil
}

// Update replaces a record whose stored Rev equals r.Rev.
func (c *collection) Update(ctx context.Context, r store.Record) (store.Record, error) {
	if err := checkRecord(r); err != nil {
		return store.Record{}, err
	}
	if err := c.begin(ctx); err != nil {
		return store.Record{}, err
	}
	defer c.s.leave()
	err := c.s.writeTx(ctx, func(tx *sql.Tx) error {
		rev, err := c.liveRev(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if rev != r.Rev {
			return fmt.Errorf("%w: %s/%s is at revision %d, expected %d", store.ErrConflict, c.name, r.ID, rev, r.Rev)
		}
		r.Rev = rev + 1
		if _, err := tx.ExecContext(ctx, "DELETE FROM record_keys WHERE coll = ? AND id = ?", c.name, r.ID); err != nil {
			return err
		}
		return c.put(ctx, tx, r, false)
	}, nil)
	if err != nil {
		return store.Record{}, err
	}
	return normalized(r), nil
}

// Delete removes a record, if rev is not 0 only at that revision.
func (c *collection) Delete(ctx context.Context, id string, rev int64) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.s.leave()
	return c.s.writeTx(ctx, func(tx *sql.Tx) error {
		cur, err := c.liveRev(ctx, tx, id)
		if err != nil {
			return err
		}
		if rev != 0 && cur != rev {
			return fmt.Errorf("%w: %s/%s is at revision %d, expected %d", store.ErrConflict, c.name, id, cur, rev)
		}
		return c.remove(ctx, tx, id)
	}, nil)
}

// liveRev returns the revision of an unexpired record, ErrNotFound if there
// is none.
func (c *collection) liveRev(ctx context.Context, tx *sql.Tx, id string) (int64, error) {
	var rev, exp int64
	err := tx.QueryRowContext(ctx, "SELECT rev, expires_at FROM records WHERE coll = ? AND id = ?", c.name, id).Scan(&rev, &exp)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && expired(exp, nowNano())) {
		return 0, fmt.Errorf("%w: %s/%s", store.ErrNotFound, c.name, id)
	}
	return rev, err
}

func (c *collection) put(ctx context.Context, tx *sql.Tx, r store.Record, insert bool) error {
	q := "UPDATE records SET rev = ?3, expires_at = ?4, data = ?5 WHERE coll = ?1 AND id = ?2"
	if insert {
		q = "INSERT INTO records(coll, id, rev, expires_at, data) VALUES (?1, ?2, ?3, ?4, ?5)"
	}
	if _, err := tx.ExecContext(ctx, q, c.name, r.ID, r.Rev, toNano(r.ExpiresAt), []byte(r.Data)); err != nil {
		return err
	}
	return c.insertKeys(ctx, tx, r.ID, keyValues(r.Data, c.keys))
}

func (c *collection) remove(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM record_keys WHERE coll = ? AND id = ?", c.name, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM records WHERE coll = ? AND id = ?", c.name, id)
	return err
}

func (c *collection) insertKeys(ctx context.Context, tx *sql.Tx, id string, kvs [][2]string) error {
	for _, kv := range kvs {
		if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO record_keys(coll, key, value, id) VALUES (?, ?, ?, ?)", c.name, kv[0], kv[1], id); err != nil {
			return err
		}
	}
	return nil
}

func checkRecord(r store.Record) error {
	if r.ID == "" {
		return errors.New("sqlite store: record needs an id")
	}
	if !isObject(r.Data) {
		return errors.New("sqlite store: record data must be a JSON object")
	}
	return nil
}

func isObject(data []byte) bool {
	d := bytes.TrimSpace(data)
	return len(d) > 0 && d[0] == '{' && json.Valid(d)
}

// keyValues extracts the (key, value) pairs of the declared key fields: a
// string field gives one value, an array field one per string element;
// other values are not keys.
func keyValues(data []byte, keys []string) [][2]string {
	if len(keys) == 0 {
		return nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out [][2]string
	for _, k := range keys {
		raw, ok := doc[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, [2]string{k, s})
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) != nil {
			continue
		}
		for _, el := range arr {
			if json.Unmarshal(el, &s) == nil {
				out = append(out, [2]string{k, s})
			}
		}
	}
	return out
}

// normalized is the record as a later Get returns it.
func normalized(r store.Record) store.Record {
	r.ExpiresAt = fromNano(toNano(r.ExpiresAt))
	r.Data = slices.Clone(r.Data)
	return r
}

// Expiry times are stored as Unix nanoseconds, 0 for none.
func toNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nowNano() int64 { return time.Now().UnixNano() }

func expired(exp, now int64) bool { return exp != 0 && exp <= now }

// sweep removes expired records every interval until Close.
func (s *Store) sweep(every time.Duration) {
	defer close(s.sweepDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
		}
		n, err := s.sweepOnce(context.Background())
		if err != nil {
			s.log.Warn("sqlite store: sweeping expired records", "err", err)
		} else if n > 0 {
			s.log.Debug("sqlite store: swept expired records", "count", n)
		}
	}
}

// sweepOnce deletes expired records in small transactions, so that writes
// waiting for the lock are not held up.
func (s *Store) sweepOnce(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		err := s.writeTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, "SELECT coll, id FROM records WHERE expires_at > 0 AND expires_at <= ? LIMIT 500", nowNano())
			if err != nil {
				return err
			}
			var ids [][2]string
			for rows.Next() {
				var k [2]string
				if err := rows.Scan(&k[0], &k[1]); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, k)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, k := range ids {
				if _, err := tx.ExecContext(ctx, "DELETE FROM record_keys WHERE coll = ? AND id = ?", k[0], k[1]); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "DELETE FROM records WHERE coll = ? AND id = ?", k[0], k[1]); err != nil {
					return err
				}
			}
			n = len(ids)
			return nil
		}, nil)
		total += n
		if err != nil || n < 500 {
			return total, err
		}
	}
}

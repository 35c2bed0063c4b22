package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Read returns the current version of a resource.
func (s *Store) Read(ctx context.Context, typ, id string) (store.Resource, error) {
	if err := s.enter(); err != nil {
		return store.Resource{}, err
	}
	defer s.leave()
	r := store.Resource{Type: typ, ID: id}
	var ms int64
	err := s.rs.read.QueryRowContext(ctx, typ, id).Scan(&r.VersionID, &ms, &r.Deleted, (*[]byte)(&r.Body))
	return s.resource(ctx, r, ms, err)
}

// VRead returns one version of a resource.
func (s *Store) VRead(ctx context.Context, typ, id string, version int64) (store.Resource, error) {
	if err := s.enter(); err != nil {
		return store.Resource{}, err
	}
	defer s.leave()
	r := store.Resource{Type: typ, ID: id, VersionID: version}
	var ms int64
	err := s.rs.vread.QueryRowContext(ctx, version, typ, id).Scan(&ms, &r.Deleted, (*[]byte)(&r.Body))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Resource{}, fmt.Errorf("%w: %s/%s/_history/%d", store.ErrNotFound, typ, id, version)
	}
	return s.resource(ctx, r, ms, err)
}

// resource finishes a read: not found, gone, or the resource.
func (s *Store) resource(ctx context.Context, r store.Resource, ms int64, err error) (store.Resource, error) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Resource{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, r.Type, r.ID)
	case err != nil:
		return store.Resource{}, s.fail(ctx, err)
	}
	r.LastUpdated = time.UnixMilli(ms).UTC()
	if r.Deleted {
		r.Body = nil
		return r, fmt.Errorf("%w: %s/%s", store.ErrGone, r.Type, r.ID)
	}
	return r, nil
}

// Count returns how many live resources of a type (or of all types) exist.
func (s *Store) Count(ctx context.Context, typ string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	var n int64
	var err error
	if typ == "" {
		err = s.rs.countAll.QueryRowContext(ctx).Scan(&n)
	} else {
		err = s.rs.count.QueryRowContext(ctx, typ).Scan(&n)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return int(n), s.fail(ctx, err)
}

// History lists versions newest first. The cursor is the commit sequence
// number of the last version of the previous page.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) (store.HistoryPage, error) {
	if err := s.enter(); err != nil {
		return store.HistoryPage{}, err
	}
	defer s.leave()
	if q.ID != "" && q.Type == "" {
		return store.HistoryPage{}, errors.New("sqlite store: history of an id needs a type")
	}
	before := int64(math.MaxInt64)
	if q.Cursor != "" {
		var err error
		if before, err = decodeCursor(q.Cursor); err != nil {
			return store.HistoryPage{}, err
		}
	}
	limit := store.PageSize(q.Count)

	var from int64
	if !q.Since.IsZero() {
		var err error
		if from, err = s.firstSeqSince(ctx, q.Since); err != nil {
			return store.HistoryPage{}, s.fail(ctx, err)
		}
		if from == 0 {
			return store.HistoryPage{}, nil
		}
	}

	var rows *sql.Rows
	var err error
	switch {
	case q.ID != "":
		var rid int64
		err = s.rs.rid.QueryRowContext(ctx, q.Type, q.ID).Scan(&rid)
		if errors.Is(err, sql.ErrNoRows) {
			return store.HistoryPage{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, q.Type, q.ID)
		}
		if err == nil {
			rows, err = s.rs.historyInstance.QueryContext(ctx, rid, before, from, limit+1)
		}
	case q.Type != "":
		rows, err = s.rs.historyType.QueryContext(ctx, q.Type, before, from, limit+1)
	default:
		rows, err = s.rs.historySystem.QueryContext(ctx, before, from, limit+1)
	}
	if err != nil {
		return store.HistoryPage{}, s.fail(ctx, err)
	}
	defer rows.Close()

	var page store.HistoryPage
	var last int64
	for rows.Next() {
		if len(page.Versions) == limit {
			page.Next = encodeCursor(last)
			break
		}
		var r store.Resource
		var ms int64
		if err := rows.Scan(&last, &r.Type, &r.ID, &r.VersionID, &ms, &r.Deleted, (*[]byte)(&r.Body)); err != nil {
			return store.HistoryPage{}, s.fail(ctx, err)
		}
		r.LastUpdated = time.UnixMilli(ms).UTC()
		if r.Deleted {
			r.Body = nil
		}
		page.Versions = append(page.Versions, r)
	}
	if err := rows.Err(); err != nil {
		return store.HistoryPage{}, s.fail(ctx, err)
	}
	return page, nil
}

// firstSeqSince returns the seq of the oldest version last updated at or
// after since, 0 if there is none. last_updated never decreases along seq,
// so a binary search over seq finds it in a few dozen index lookups, with no
// index on last_updated to maintain on every write.
func (s *Store) firstSeqSince(ctx context.Context, since time.Time) (int64, error) {
	bound := since.UnixMilli() + sinceRound(since)
	var hi int64
	if err := s.rs.lastSeq.QueryRowContext(ctx).Scan(&hi); err != nil {
		return 0, err
	}
	// Invariant: the answer, if any, is in [lo, hi].
	lo, found := int64(1), int64(0)
	for lo <= hi {
		mid := lo + (hi-lo)/2
		var seq, ms int64
		err := s.rs.seqFrom.QueryRowContext(ctx, mid).Scan(&seq, &ms)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			hi = mid - 1
		case err != nil:
			return 0, err
		case ms >= bound:
			found, hi = seq, mid-1
		default:
			lo = seq + 1
		}
	}
	return found, nil
}

// sinceRound makes a Since with a fraction of a millisecond exclude the
// versions stamped in that millisecond before it (times are stored in ms).
func sinceRound(t time.Time) int64 {
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return 1
	}
	return 0
}

const cursorPrefix = "h"

func encodeCursor(seq int64) string { return cursorPrefix + strconv.FormatInt(seq, 36) }

func decodeCursor(c string) (int64, error) {
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if ok {
		if seq, err := strconv.ParseInt(rest, 36, 64); err == nil && seq > 0 {
			return seq, nil
		}
	}
	return 0, fmt.Errorf("sqlite store: invalid history cursor %q", c)
}

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
	// A deletion leaves resources.practice as its last live version set it.
	err := s.rs.read.QueryRowContext(ctx, typ, id).Scan(&r.VersionID, &ms, &r.Deleted, &r.Practice, (*[]byte)(&r.Body))
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
	var rid int64
	if q.ID != "" {
		err = s.rs.rid.QueryRowContext(ctx, q.Type, q.ID).Scan(&rid)
		if errors.Is(err, sql.ErrNoRows) {
			return store.HistoryPage{}, fmt.Errorf("%w: %s/%s", store.ErrNotFound, q.Type, q.ID)
		}
		if err != nil {
			return store.HistoryPage{}, s.fail(ctx, err)
		}
	}
	switch {
	case len(q.Compartments) > 0 || len(q.Practices) > 0 || (q.ID == "" && q.Type == "" && len(q.ExceptTypes) > 0):
		text, args := filteredHistory(q, rid, before, from, limit+1)
		rows, err = s.r.QueryContext(ctx, text, args...)
	case q.ID != "":
		rows, err = s.rs.historyInstance.QueryContext(ctx, rid, before, from, limit+1)
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

// filteredHistory is the statement of a history listing confined to
// compartments and practices, judged on each version's own membership.
// Type and system history take, for each compartment (else each
// practice), the newest matching versions from version_compartments
// (versions_practice) in seq order, a page's worth each, and merge them:
// a page costs a few index seeks per filter value, however long the
// history. Instance history checks the resource's few versions.
func filteredHistory(q store.HistoryQuery, rid, before, from int64, limit int) (string, []any) {
	var b strings.Builder
	var args []any
	in := func(col string, vals []string) {
		b.WriteString(" AND " + col + " IN (?" + strings.Repeat(",?", len(vals)-1) + ")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	b.WriteString(`SELECT v.seq, r.type, r.id, v.version, v.last_updated, v.deleted, v.body FROM versions v JOIN resources r ON r.rid = v.rid WHERE v.seq < ? AND v.seq >= ?`)
	args = append(args, before, from)
	if q.ID != "" {
		b.WriteString(" AND v.rid = ?")
		args = append(args, rid)
		if len(q.Practices) > 0 {
			in("v.practice", q.Practices)
		}
		if len(q.Compartments) > 0 {
			b.WriteString(" AND EXISTS (SELECT 1 FROM version_compartments c WHERE c.type = v.type AND c.seq = v.seq")
			in("c.compartment", q.Compartments)
			b.WriteString(")")
		}
		b.WriteString(" ORDER BY v.version DESC LIMIT ?")
		return b.String(), append(args, limit)
	}
	except := q.Type == "" && len(q.ExceptTypes) > 0
	if len(q.Compartments) == 0 && len(q.Practices) == 0 {
		// Only types left out: newest first by seq, past them.
		b.WriteString(" AND v.type NOT IN (?" + strings.Repeat(",?", len(q.ExceptTypes)-1) + ") ORDER BY v.seq DESC LIMIT ?")
		for _, t := range q.ExceptTypes {
			args = append(args, t)
		}
		return b.String(), append(args, limit)
	}
	notIn := func(col string) {
		if except {
			b.WriteString(" AND " + col + " NOT IN (?" + strings.Repeat(",?", len(q.ExceptTypes)-1) + ")")
			for _, t := range q.ExceptTypes {
				args = append(args, t)
			}
		}
	}
	b.WriteString(" AND v.seq IN (")
	byCompartment := len(q.Compartments) > 0
	keys := q.Practices
	if byCompartment {
		keys = q.Compartments
	}
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" UNION ")
		}
		if byCompartment {
			b.WriteString("SELECT seq FROM (SELECT c.seq AS seq FROM version_compartments c")
			if len(q.Practices) > 0 {
				b.WriteString(" JOIN versions p ON p.seq = c.seq")
			}
			b.WriteString(" WHERE c.compartment = ? AND c.seq < ? AND c.seq >= ?")
			args = append(args, k, before, from)
			if q.Type != "" {
				b.WriteString(" AND c.type = ?")
				args = append(args, q.Type)
			}
			notIn("c.type")
			if len(q.Practices) > 0 {
				in("p.practice", q.Practices)
			}
			b.WriteString(" ORDER BY c.seq DESC LIMIT ?)")
		} else {
			b.WriteString("SELECT seq FROM (SELECT p.seq AS seq FROM versions p INDEXED BY versions_practice WHERE p.practice = ? AND p.seq < ? AND p.seq >= ?")
			args = append(args, k, before, from)
			if q.Type != "" {
				b.WriteString(" AND p.type = ?")
				args = append(args, q.Type)
			}
			notIn("p.type")
			b.WriteString(" ORDER BY p.seq DESC LIMIT ?)")
		}
		args = append(args, limit)
	}
	b.WriteString(") ORDER BY v.seq DESC LIMIT ?")
	return b.String(), append(args, limit)
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

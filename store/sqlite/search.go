package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
)

// Search runs a plan as one SQL statement (see searchsql.go), and a second
// one counting the matches when asked for a total. Pages continue by
// keyset: a cursor holds the sort values and rid of the row a page ended
// at (Next) or began at (Prev), and the page it asks for is the rows after
// (before) it, so rows written between two pages neither repeat nor shift
// the others.
func (s *Store) Search(ctx context.Context, q store.Query) (store.SearchPage, error) {
	if err := s.enter(); err != nil {
		return store.SearchPage{}, err
	}
	defer s.leave()
	if err := q.Validate(); err != nil {
		return store.SearchPage{}, fmt.Errorf("sqlite store: %w", err)
	}
	var after *searchCursor
	if q.Cursor != "" {
		c, err := decodeSearchCursor(q)
		if err != nil {
			return store.SearchPage{}, fmt.Errorf("sqlite store: %w", err)
		}
		after = &c
	}
	drive, err := s.chooseDriver(ctx, &q)
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	page := store.SearchPage{Total: -1}
	if q.Total || q.CountOnly {
		text, args := countSQL(&q, drive)
		rows, err := s.query(ctx, text, args)
		if err != nil {
			return store.SearchPage{}, s.fail(ctx, err)
		}
		if rows.Next() {
			err = rows.Scan(&page.Total)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return store.SearchPage{}, s.fail(ctx, err)
		}
	}
	if q.CountOnly {
		return page, nil
	}
	text, args := pageSQL(&q, after, drive)
	rows, err := s.query(ctx, text, args)
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	defer rows.Close()
	var found []pageRow
	for rows.Next() {
		r := pageRow{Resource: store.Resource{Type: q.Type}, keys: make([]any, len(q.Sort))}
		var ms int64
		dst := []any{&r.rid, &r.ID, &r.VersionID, &ms, (*[]byte)(&r.Body)}
		for i := range r.keys {
			dst = append(dst, &r.keys[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return store.SearchPage{}, s.fail(ctx, err)
		}
		r.LastUpdated = time.UnixMilli(ms).UTC()
		found = append(found, r)
	}
	if err := rows.Err(); err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	// pageSQL reads one row more than a page, to know whether there is a
	// page further on: after the page, or before it when reading back.
	back := after != nil && after.Back
	more := len(found) > q.Count
	switch {
	case more && back:
		found = found[1:]
	case more:
		found = found[:q.Count]
	}
	for _, r := range found {
		page.Resources = append(page.Resources, r.Resource)
	}
	if len(found) == 0 {
		return page, nil
	}
	// A page read backwards ends where the page it was asked from began,
	// so there is a next one; one read forwards from a cursor has one
	// before it.
	if more || back {
		last := found[len(found)-1]
		page.Next = encodeSearchCursor(q, last.rid, last.keys, false)
	}
	if more && back || !back && after != nil {
		page.Prev = encodeSearchCursor(q, found[0].rid, found[0].keys, true)
	}
	return page, nil
}

// probeLimit bounds what choosing a driver reads of each candidate clause.
const probeLimit = 1000

// chooseDriver picks the clause a search starts from when the kind of
// clause does not settle it: among several that can start it, and none a
// reference equality (which one patient or one practitioner bounds), the
// one yielding the fewest rids, counted up to probeLimit each. The kinds
// alone cannot tell gender=male (half the patients) from name=wal (a few):
// both read search by its key. -1 leaves the choice to the kinds.
func (s *Store) chooseDriver(ctx context.Context, q *store.Query) (int, error) {
	if len(q.IDs) > 0 || len(q.Compartments) > 0 {
		return -1, nil
	}
	var candidates []int
	for i, c := range q.Where {
		switch driverRank(c) {
		case driveRefEqual:
			return -1, nil
		case driveNone:
		default:
			candidates = append(candidates, i)
		}
	}
	if len(candidates) < 2 {
		return -1, nil
	}
	best, fewest := -1, probeLimit
	for _, i := range candidates {
		text, args := probeSQL(q.Type, q.Where[i], probeLimit)
		rows, err := s.query(ctx, text, args)
		if err != nil {
			return -1, err
		}
		var n int
		if rows.Next() {
			err = rows.Scan(&n)
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return -1, err
		}
		if n < fewest || (n == fewest && best >= 0 && driverRank(q.Where[i]) < driverRank(q.Where[best])) {
			best, fewest = i, n
		}
	}
	return best, nil
}

// pageRow is one row of pageSQL: the resource, its rid and sort values.
type pageRow struct {
	store.Resource
	rid  int64
	keys []any
}

// query runs a search statement, prepared once per shape.
func (s *Store) query(ctx context.Context, text string, args []any) (*sql.Rows, error) {
	st, err := s.ss.get(ctx, s.r, text)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return s.r.QueryContext(ctx, text, args...)
	}
	return st.QueryContext(ctx, args...)
}

// searchCursor is a decoded cursor: a row's sort values and rid, and
// whether the page after it (Next) or before it (Prev, Back) is wanted.
type searchCursor struct {
	cursor.Position
	RID int64
}

func encodeSearchCursor(q store.Query, rid int64, keys []any, back bool) string {
	pos := cursor.Position{Tie: strconv.FormatInt(rid, 10), Keys: make([]*string, len(keys)), Back: back}
	for i, k := range keys {
		var v string
		switch k := k.(type) {
		case nil:
			continue
		case int64:
			v = strconv.FormatInt(k, 10)
		case string:
			v = k
		case []byte:
			v = string(k)
		default:
			v = fmt.Sprint(k)
		}
		pos.Keys[i] = &v
	}
	return cursor.Encode(q, pos)
}

func decodeSearchCursor(q store.Query) (searchCursor, error) {
	pos, err := cursor.Decode(q, q.Cursor)
	if err != nil {
		return searchCursor{}, err
	}
	c := searchCursor{Position: pos}
	c.RID, err = strconv.ParseInt(pos.Tie, 10, 64)
	bad := err != nil || c.RID <= 0
	for i, k := range q.Sort {
		if k.Param == "_lastUpdated" || k.Param == "_id" {
			if pos.Keys[i] == nil {
				bad = true
				continue
			}
		}
		if k.Param == "_lastUpdated" {
			if _, err := strconv.ParseInt(*pos.Keys[i], 10, 64); err != nil {
				bad = true
			}
		}
	}
	if bad {
		return searchCursor{}, fmt.Errorf("%w: search cursor: bad position", store.ErrInvalid)
	}
	return c, nil
}

// bind is the value of sort key i to compare rows with, nil for none.
func (c *searchCursor) bind(keys []store.SortKey, i int) any {
	v := c.Keys[i]
	if v == nil {
		return nil
	}
	if keys[i].Param == "_lastUpdated" {
		n, _ := strconv.ParseInt(*v, 10, 64)
		return n
	}
	return *v
}

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
// keyset: the cursor holds the last row's sort values and rid, and the next
// page starts after them, so rows written between two pages neither repeat
// nor shift the others.
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
	page := store.SearchPage{Total: -1}
	if q.Total || q.CountOnly {
		text, args := countSQL(&q)
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
	text, args := pageSQL(&q, after)
	rows, err := s.query(ctx, text, args)
	if err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	defer rows.Close()
	keys := make([]any, len(q.Sort))
	var rid int64
	for rows.Next() {
		if len(page.Resources) == q.Count {
			page.Next = encodeSearchCursor(q, rid, keys)
			break
		}
		r := store.Resource{Type: q.Type}
		var ms int64
		dst := []any{&rid, &r.ID, &r.VersionID, &ms, (*[]byte)(&r.Body)}
		for i := range keys {
			dst = append(dst, &keys[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return store.SearchPage{}, s.fail(ctx, err)
		}
		r.LastUpdated = time.UnixMilli(ms).UTC()
		page.Resources = append(page.Resources, r)
	}
	if err := rows.Err(); err != nil {
		return store.SearchPage{}, s.fail(ctx, err)
	}
	return page, nil
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

// searchCursor is a decoded cursor: the last row's sort values and rid.
type searchCursor struct {
	cursor.Position
	RID int64
}

func encodeSearchCursor(q store.Query, rid int64, keys []any) string {
	pos := cursor.Position{Tie: strconv.FormatInt(rid, 10), Keys: make([]*string, len(keys))}
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

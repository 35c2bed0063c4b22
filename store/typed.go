package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Records is typed access to one collection whose records are JSON
// documents of T: what the platform's own records (sessions, codes,
// accounts, jobs) are read and written through.
type Records[T any] struct{ C Collection }

// maxRecordID bounds the ids Get looks up: longer ones are no record's.
const maxRecordID = 512

// Get returns the record's document and revision; ErrNotFound for an
// empty or overlong id, as for a missing or expired record.
func (r Records[T]) Get(ctx context.Context, id string) (T, int64, error) {
	var v T
	if id == "" || len(id) > maxRecordID {
		return v, 0, ErrNotFound
	}
	rec, err := r.C.Get(ctx, id)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(rec.Data, &v); err != nil {
		return v, 0, fmt.Errorf("record %s: %w", id, err)
	}
	return v, rec.Rev, nil
}

// Create stores a new record (ErrExists if the id is taken); expires may
// be zero.
func (r Records[T]) Create(ctx context.Context, id string, v T, expires time.Time) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = r.C.Create(ctx, Record{ID: id, Data: data, ExpiresAt: expires})
	return err
}

// Update replaces the record if it is still at rev (ErrConflict
// otherwise) and returns its new revision. The expiry is set as given.
func (r Records[T]) Update(ctx context.Context, id string, rev int64, v T, expires time.Time) (int64, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	rec, err := r.C.Update(ctx, Record{ID: id, Rev: rev, Data: data, ExpiresAt: expires})
	return rec.Rev, err
}

// Change reads the record, applies change and writes it back if it is
// unchanged since the read, again until it is (a few dozen times at most);
// change reports whether it changed anything (nothing is written when
// not). It returns the document as last read or written.
func (r Records[T]) Change(ctx context.Context, id string, expires time.Time, change func(*T) (bool, error)) (T, error) {
	var zero T
	for range 20 {
		v, rev, err := r.Get(ctx, id)
		if err != nil {
			return zero, err
		}
		changed, err := change(&v)
		if err != nil || !changed {
			return v, err
		}
		if _, err = r.Update(ctx, id, rev, v, expires); errors.Is(err, ErrConflict) {
			continue
		}
		return v, err
	}
	return zero, fmt.Errorf("record %s changed by others too often: %w", id, ErrConflict)
}

// Delete removes the record (at rev, when rev is not zero); ErrNotFound if
// absent, ErrConflict if at another revision.
func (r Records[T]) Delete(ctx context.Context, id string, rev int64) error {
	return r.C.Delete(ctx, id, rev)
}

// Find decodes the unexpired records whose key holds value, by id, and
// returns them with the records themselves (ids, revisions).
func (r Records[T]) Find(ctx context.Context, key, value string) ([]T, []Record, error) {
	recs, err := r.C.Find(ctx, key, value)
	if err != nil {
		return nil, nil, err
	}
	out := make([]T, len(recs))
	for i, rec := range recs {
		if err := json.Unmarshal(rec.Data, &out[i]); err != nil {
			return nil, nil, fmt.Errorf("record %s: %w", rec.ID, err)
		}
	}
	return out, recs, nil
}

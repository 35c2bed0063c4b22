package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// CollectionDef declares a platform-record collection: its name and the
// top-level fields of its documents that Find may look up. A key field holds
// a string or an array of strings (each element is then a key value).
type CollectionDef struct {
	Name string
	Keys []string
}

// Record is one platform record: a JSON object with an id, a revision for
// compare-and-set, and an optional expiry.
type Record struct {
	ID string
	// Rev is the revision: 0 before creation, then 1, 2, … Engines set it.
	Rev int64
	// Data is the document, a JSON object.
	Data json.RawMessage
	// ExpiresAt, when set, is when the record stops being visible; engines
	// remove expired records eventually.
	ExpiresAt time.Time
}

// Collection is a handle on one platform-record collection.
type Collection interface {
	// Get returns a record; ErrNotFound if it does not exist or has expired.
	Get(ctx context.Context, id string) (Record, error)
	// Find returns the unexpired records whose key field equals value (or,
	// for an array field, contains it), ordered by id. key must be one of
	// the collection's declared Keys.
	Find(ctx context.Context, key, value string) ([]Record, error)
	// Create stores a new record with Rev 1; ErrExists if the id is taken by
	// an unexpired record.
	Create(ctx context.Context, r Record) (Record, error)
	// Update replaces a record if its stored Rev equals r.Rev (compare and
	// set) and returns it with the next Rev; ErrConflict otherwise,
	// ErrNotFound when there is no such (unexpired) record.
	Update(ctx context.Context, r Record) (Record, error)
	// Delete removes a record. With rev non-zero it only does so when the
	// stored Rev equals rev (ErrConflict otherwise). ErrNotFound if absent.
	Delete(ctx context.Context, id string, rev int64) error
}

// HashContent is the digest Write.Hash carries: engines compare it to skip
// unchanged updates.
func HashContent(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:16])
}

package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// The portal's platform records. Secrets that travel (session cookies,
// link tokens) are never stored as given: a session's record id is the
// hash of its cookie, and a link carries an HMAC the store cannot forge
// without the key record.
var (
	// developersDef: developer accounts (see developer), id = email.
	developersDef = store.CollectionDef{Name: "portal_developers", Keys: []string{"record"}}
	// sessionsDef: browser sessions of developers and staff (see session).
	sessionsDef = store.CollectionDef{Name: "portal_sessions", Keys: []string{"subject"}}
	// linksDef: outstanding verification and reset links (see link), id =
	// the link's nonce; deleted when used.
	linksDef = store.CollectionDef{Name: "portal_links"}
	// keysDef: the HMAC key of links (one record, "links").
	keysDef = store.CollectionDef{Name: "portal_keys"}
	// outboxDef: mail written instead of sent (see Message).
	outboxDef = store.CollectionDef{Name: "portal_outbox", Keys: []string{"to"}}
	// applicationsDef: registration requests (see Application).
	applicationsDef = store.CollectionDef{Name: "portal_applications", Keys: []string{"record", "developer", "status", "org_name", "practices"}}
	// rolesDef: portal roles of staff users (see Roles), id = username.
	rolesDef = store.CollectionDef{Name: "portal_roles", Keys: []string{"record"}}
)

// records is a typed view of one collection.
type records[T any] struct{ c store.Collection }

func (r records[T]) get(ctx context.Context, id string) (T, int64, error) {
	var v T
	if id == "" || len(id) > 320 {
		return v, 0, store.ErrNotFound
	}
	rec, err := r.c.Get(ctx, id)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(rec.Data, &v); err != nil {
		return v, 0, fmt.Errorf("portal: record %s: %w", id, err)
	}
	return v, rec.Rev, nil
}

func (r records[T]) create(ctx context.Context, id string, v T, expires time.Time) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = r.c.Create(ctx, store.Record{ID: id, Data: data, ExpiresAt: expires})
	return err
}

// find decodes the records whose key holds value, by id; set, when
// given, receives each record's id.
func (r records[T]) find(ctx context.Context, key, value string, set ...func(*T, string)) ([]T, error) {
	recs, err := r.c.Find(ctx, key, value)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(recs))
	for i, rec := range recs {
		if err := json.Unmarshal(rec.Data, &out[i]); err != nil {
			return nil, fmt.Errorf("portal: record %s: %w", rec.ID, err)
		}
		for _, f := range set {
			f(&out[i], rec.ID)
		}
	}
	return out, nil
}

// update applies change until its compare-and-set succeeds; change
// reports whether it changed anything (nothing is written when not).
func (r records[T]) update(ctx context.Context, id string, expires time.Time, change func(*T) (bool, error)) (T, error) {
	var zero T
	for range 20 {
		v, rev, err := r.get(ctx, id)
		if err != nil {
			return zero, err
		}
		changed, err := change(&v)
		if err != nil || !changed {
			return v, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return zero, err
		}
		_, err = r.c.Update(ctx, store.Record{ID: id, Rev: rev, Data: data, ExpiresAt: expires})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return v, err
	}
	return zero, fmt.Errorf("portal: %s changed by others too often: %w", id, store.ErrConflict)
}

func (r records[T]) delete(ctx context.Context, id string, rev int64) error {
	return r.c.Delete(ctx, id, rev)
}

// hashID is the record id of a secret: hex SHA-256.
func hashID(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

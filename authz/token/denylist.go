package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// revokedDef is the collection of revoked token ids: one record per jti,
// {"exp": "2026-11-26T23:00:00Z"}, expiring with the token (plus
// retireSlack for the verifiers' leeway), when it needs no denying.
var revokedDef = store.CollectionDef{Name: "revoked_tokens"}

// DenylistOptions configure a Denylist. Zero values mean the defaults.
type DenylistOptions struct {
	// CacheTTL is how long "not revoked" answers are remembered: the
	// longest a revocation made on another replica takes to be seen here.
	// Default five seconds.
	CacheTTL time.Duration
	// MaxCached bounds the remembered answers; default 100 000.
	MaxCached int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Denylist records revoked tokens by jti, in the store so that every
// replica refuses them. Lookups are answered from memory: a revocation is
// final (remembered until the token expires), and "not revoked" is
// remembered for CacheTTL, so a token used on many requests costs one
// store read per CacheTTL. Revocations made through this Denylist are seen
// by it at once. A Denylist is safe for concurrent use.
type Denylist struct {
	coll store.Collection
	opts DenylistOptions

	mu    sync.Mutex
	known map[string]denyEntry
}

type denyEntry struct {
	revoked bool
	until   time.Time
}

// NewDenylist returns the denylist kept in s.
func NewDenylist(s store.Store, opts DenylistOptions) *Denylist {
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 5 * time.Second
	}
	if opts.MaxCached <= 0 {
		opts.MaxCached = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Denylist{coll: s.Collection(revokedDef), opts: opts, known: map[string]denyEntry{}}
}

// Revoke denies the token with id jti until exp, its expiry. Revoking a
// revoked token again is not an error.
func (d *Denylist) Revoke(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return errors.New("token denylist: empty jti")
	}
	data, err := json.Marshal(map[string]time.Time{"exp": exp.UTC()})
	if err != nil {
		return err
	}
	until := exp.Add(retireSlack)
	_, err = d.coll.Create(ctx, store.Record{ID: jti, Data: data, ExpiresAt: until})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("token denylist: %w", err)
	}
	d.remember(jti, denyEntry{revoked: true, until: until})
	return nil
}

// Revoked reports whether the token with id jti was revoked. Its error is
// a store failure, never a verdict.
func (d *Denylist) Revoked(ctx context.Context, jti string) (bool, error) {
	now := d.opts.Now()
	d.mu.Lock()
	e, ok := d.known[jti]
	d.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.revoked, nil
	}
	r, err := d.coll.Get(ctx, jti)
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.remember(jti, denyEntry{until: now.Add(d.opts.CacheTTL)})
		return false, nil
	case err != nil:
		return false, fmt.Errorf("token denylist: %w", err)
	}
	d.remember(jti, denyEntry{revoked: true, until: r.ExpiresAt})
	return true, nil
}

func (d *Denylist) remember(jti string, e denyEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.known) >= d.opts.MaxCached {
		now := d.opts.Now()
		for k, old := range d.known {
			if !now.Before(old.until) {
				delete(d.known, k)
			}
		}
		if len(d.known) >= d.opts.MaxCached {
			// Still full of live answers: start over; the store still has
			// every revocation.
			clear(d.known)
		}
	}
	d.known[jti] = e
}

package search

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/fhirgraph/fhirgraph/store"
)

// Paging links (REST) and connection cursors (GraphQL) carry the store's
// cursor with a MAC, so a client cannot forge or edit one: a tampered
// cursor is refused rather than answered with some other page. The key
// lives in the store, so every replica of the server shares it and cursors
// survive restarts, and both APIs accept each other's.

// ErrForeignCursor is what Open says of a cursor this server did not sign.
var ErrForeignCursor = errors.New("_cursor is not one this server issued (follow the links as given)")

var settings = store.CollectionDef{Name: "settings"}

const cursorKeyID = "search-cursor-key"

// CursorSigner signs and opens cursors; its zero value is ready to use.
type CursorSigner struct {
	mu  sync.Mutex
	key []byte
}

// keyFor returns the shared key, creating it on first use.
func (c *CursorSigner) keyFor(ctx context.Context, st store.Store) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != nil {
		return c.key, nil
	}
	coll := st.Collection(settings)
	for range 3 {
		rec, err := coll.Get(ctx, cursorKeyID)
		if err == nil {
			var doc struct{ Key []byte }
			if err := json.Unmarshal(rec.Data, &doc); err != nil || len(doc.Key) < 32 {
				return nil, errors.New("stored search cursor key is malformed")
			}
			c.key = doc.Key
			return c.key, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		key := make([]byte, 32)
		rand.Read(key)
		data, _ := json.Marshal(struct{ Key []byte }{key})
		if _, err := coll.Create(ctx, store.Record{ID: cursorKeyID, Data: data}); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, err
		}
		// Created here or by another replica at the same time: read it back.
	}
	return nil, errors.New("search cursor key could not be established")
}

func (c *CursorSigner) mac(key []byte, cursor string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cursor))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Sign returns the store's cursor as it goes into a link.
func (c *CursorSigner) Sign(ctx context.Context, st store.Store, cursor string) (string, error) {
	key, err := c.keyFor(ctx, st)
	if err != nil {
		return "", err
	}
	return cursor + "." + c.mac(key, cursor), nil
}

// Open checks a signed cursor and returns the store's cursor inside it,
// or ErrForeignCursor.
func (c *CursorSigner) Open(ctx context.Context, st store.Store, signed string) (string, error) {
	key, err := c.keyFor(ctx, st)
	if err != nil {
		return "", err
	}
	i := strings.LastIndexByte(signed, '.')
	if i < 0 || !hmac.Equal([]byte(signed[i+1:]), []byte(c.mac(key, signed[:i]))) {
		return "", ErrForeignCursor
	}
	return signed[:i], nil
}

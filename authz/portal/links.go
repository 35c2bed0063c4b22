package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// link is an outstanding verification or reset link, id = its nonce:
//
//	{"purpose": "verify", "email": "ada@example.org", "exp": "…"}
//
// The link a mail carries is nonce.signature, where the signature is an
// HMAC-SHA256 (key in the store) of the purpose, nonce, email and expiry:
// a link cannot be made up, nor one purpose's used for another. Using it
// deletes the record (compare-and-set), so it works once.
type link struct {
	Purpose string    `json:"purpose"`
	Email   string    `json:"email"`
	Exp     time.Time `json:"exp"`
}

const (
	purposeVerify = "verify"
	purposeReset  = "reset"

	verifyLifetime = 24 * time.Hour
	resetLifetime  = time.Hour
)

// linkKey is the HMAC key of links, shared by every server of the store.
type linkKey struct {
	Key []byte `json:"key"`
}

var keyMu sync.Mutex

// key returns the links' HMAC key, creating it on first use.
func (p *Portal) key(ctx context.Context) ([]byte, error) {
	keyMu.Lock()
	defer keyMu.Unlock()
	for range 3 {
		k, _, err := p.keys.Get(ctx, "links")
		if err == nil && len(k.Key) >= 32 {
			return k.Key, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		fresh := make([]byte, 32)
		rand.Read(fresh)
		if err := p.keys.Create(ctx, "links", linkKey{Key: fresh}, time.Time{}); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, err
		}
	}
	return nil, errors.New("portal: no link key")
}

func sign(key []byte, nonce string, l link) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(l.Purpose + "\n" + nonce + "\n" + l.Email + "\n" + strconv.FormatInt(l.Exp.Unix(), 10)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newLink records a link for email and returns its token.
func (p *Portal) newLink(ctx context.Context, purpose, email string, lifetime time.Duration) (string, error) {
	key, err := p.key(ctx)
	if err != nil {
		return "", err
	}
	nonce := randomText(18)
	l := link{Purpose: purpose, Email: email, Exp: p.cfg.Now().Add(lifetime).Truncate(time.Second)}
	if err := p.links.Create(ctx, nonce, l, l.Exp); err != nil {
		return "", err
	}
	return nonce + "." + sign(key, nonce, l), nil
}

// errBadLink: the link is malformed, forged, expired or used.
var errBadLink = errors.New("invalid or expired link")

// checkLink returns the email a token of purpose was made for, without
// using it up.
func (p *Portal) checkLink(ctx context.Context, purpose, token string) (string, string, int64, error) {
	nonce, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 200 {
		return "", "", 0, errBadLink
	}
	key, err := p.key(ctx)
	if err != nil {
		return "", "", 0, err
	}
	l, rev, err := p.links.Get(ctx, nonce)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", 0, errBadLink
	} else if err != nil {
		return "", "", 0, err
	}
	if l.Purpose != purpose || !hmac.Equal([]byte(sig), []byte(sign(key, nonce, l))) || !p.cfg.Now().Before(l.Exp) {
		return "", "", 0, errBadLink
	}
	return l.Email, nonce, rev, nil
}

// useLink checks a token and uses it up; errBadLink when it was already
// used, by this request's twin or anyone.
func (p *Portal) useLink(ctx context.Context, purpose, token string) (string, error) {
	email, nonce, rev, err := p.checkLink(ctx, purpose, token)
	if err != nil {
		return "", err
	}
	if err := p.links.Delete(ctx, nonce, rev); errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return "", errBadLink
	} else if err != nil {
		return "", err
	}
	return email, nil
}

package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// clientKeySets holds a keyfunc (github.com/MicahParks/keyfunc/v3) per
// client JWKS URL and per inline JWKS document, at most maxSets of each,
// the least recently used dropped first. jwkset fetches, parses and
// stores the sets and refetches one, rate-limited, when asked for a kid
// it lacks; what it leaves to its caller is done here:
//
//   - a set is used for maxAge, or less when its response's Cache-Control
//     says so, then fetched anew (jwkset's own refresh is a fixed-interval
//     goroutine per URL, which can neither follow Cache-Control nor be
//     stopped by evicting the set; none is started here, so an evicted
//     set is just garbage);
//   - the first fetch of a URL runs once, in its own goroutine bounded by
//     the fetch timeout, while every request needing it waits with its own
//     context (keyfunc's constructors fetch with the context that also
//     ends the refresh goroutine, so no request's context fits there);
//   - a failed fetch is answered from memory for failTTL, so that an
//     unreachable URL costs one timeout per failTTL rather than one per
//     request;
//   - an unknown kid refetches only while the rate limiter has a token, so
//     that within the gap it is refused at once (jwkset would wait for the
//     next token, and give the refetch what is left of the wait's
//     deadline), and a failed refetch is reported, not only logged.
type clientKeySets struct {
	cfg    fetchConfig
	client *http.Client

	mu     sync.Mutex
	remote map[string]*remoteSet
	inline map[[32]byte]*inlineSet
}

// remoteSet is the key set of one JWKS URL, as one fetch (and the
// unknown-kid refetches after it) made it.
type remoteSet struct {
	url    string
	loaded chan struct{} // closed when the fetch ends

	// Set before loaded is closed.
	refetching keyfunc.Keyfunc // refetches on an unknown kid
	cached     keyfunc.Keyfunc // reads the set as fetched
	refetches  *rate.Limiter   // the unknown-kid gap
	err        error           // of the fetch, if it failed

	// Guarded by clientKeySets.mu.
	fetched time.Time // or failed
	expires time.Time
	used    time.Time
}

type inlineSet struct {
	kf   keyfunc.Keyfunc
	err  error
	used time.Time
}

func newClientKeySets(cfg fetchConfig) *clientKeySets {
	return &clientKeySets{
		cfg: cfg, client: newFetchClient(cfg),
		remote: map[string]*remoteSet{}, inline: map[[32]byte]*inlineSet{},
	}
}

// key returns the key of the JWK Set at rawURL with the kid that fits
// alg. A kid not in the set makes it fetch the set again, at most once
// per kidGap. Every failure is an invalid_client *Error.
func (f *clientKeySets) key(ctx context.Context, rawURL, kid, alg string) (any, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, invalidClient("the client's JWKS URL is not a URL", nil)
	}
	if err := checkURL(u, f.cfg.dev); err != nil {
		return nil, err
	}
	rs := f.current(rawURL)
	select {
	case <-rs.loaded:
	case <-ctx.Done():
		return nil, invalidClient("timed out waiting for the client's JWKS", ctx.Err())
	}
	if rs.err != nil {
		return nil, rs.err
	}

	kf := rs.cached
	if rs.refetches.Tokens() >= 1 {
		kf = rs.refetching
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.timeout)
	defer cancel()
	note := new(fetchNote)
	key, err := kf.KeyfuncCtx(withNote(ctx, note))(lookupToken(kid, alg))
	if note.status == http.StatusOK && note.refetchErr == nil {
		f.mu.Lock()
		rs.fetched = f.cfg.now()
		rs.expires = rs.fetched.Add(cacheTTL(note.cacheControl, f.cfg.maxAge))
		f.mu.Unlock()
	}
	switch {
	case err == nil:
		return key, nil
	case AsError(err) != nil:
		return nil, AsError(err)
	case note.refetchErr != nil:
		desc := f.cfg.fetchError(note.refetchErr, note).Description
		return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the client's JWKS, and fetching it again failed: %s", alg, kid, desc), note.refetchErr)
	}
	return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the JWKS at %s", alg, kid, rawURL), nil)
}

// current returns the set of rawURL, starting a fetch when there is none
// or it has expired (or failed more than failTTL ago).
func (f *clientKeySets) current(rawURL string) *remoteSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.now()
	rs := f.remote[rawURL]
	if rs == nil || f.stale(rs, now) {
		if rs == nil && len(f.remote) >= f.cfg.maxSets {
			evictOldest(f.remote, func(s *remoteSet) time.Time { return s.used })
		}
		rs = &remoteSet{url: rawURL, loaded: make(chan struct{})}
		f.remote[rawURL] = rs
		go f.load(rs)
	}
	rs.used = now
	return rs
}

// stale reports whether rs is to be fetched again; f.mu is held.
func (f *clientKeySets) stale(rs *remoteSet, now time.Time) bool {
	select {
	case <-rs.loaded:
	default:
		return false // the fetch under way is the newest there is
	}
	if rs.err != nil {
		return now.Sub(rs.fetched) >= f.cfg.failTTL
	}
	return !now.Before(rs.expires)
}

// load fetches rs's set with jwkset and makes its keyfuncs.
func (f *clientKeySets) load(rs *remoteSet) {
	// jwkset fetches with this context before NewStorageFromHTTP returns,
	// and keeps it only for the refresh goroutine, which is not started
	// (no RefreshInterval): cancelling it afterwards leaves the storage
	// usable.
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.timeout)
	defer cancel()
	note := new(fetchNote)
	keys := newClientKeyStore()
	fetched, err := jwkset.NewStorageFromHTTP(rs.url, jwkset.HTTPClientStorageOptions{
		Client:              f.client,
		Ctx:                 withNote(ctx, note),
		HTTPTimeout:         f.cfg.timeout,
		RefreshErrorHandler: noteRefetchError,
		Storage:             keys,
	})
	if err == nil {
		rs.refetches = rate.NewLimiter(rate.Every(f.cfg.kidGap), 1)
		rs.refetches.Allow() // the gap runs from this fetch
		var client jwkset.Storage
		client, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			HTTPURLs:          map[string]jwkset.Storage{rs.url: fetched},
			RefreshUnknownKID: rs.refetches,
		})
		if err == nil {
			rs.refetching, err = keyfunc.New(keyfunc.Options{Storage: client})
		}
		if err == nil {
			rs.cached, err = keyfunc.New(keyfunc.Options{Storage: keys})
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	rs.fetched = f.cfg.now()
	if err != nil {
		rs.err = f.cfg.fetchError(err, note)
	} else {
		rs.expires = rs.fetched.Add(cacheTTL(note.cacheControl, f.cfg.maxAge))
	}
	close(rs.loaded)
}

// inlineKey is key for a JWK Set registered inline with the client.
func (f *clientKeySets) inlineKey(ctx context.Context, doc []byte, kid, alg string) (any, error) {
	sum := sha256.Sum256(doc)
	f.mu.Lock()
	is := f.inline[sum]
	if is == nil {
		if len(f.inline) >= f.cfg.maxSets {
			evictOldest(f.inline, func(s *inlineSet) time.Time { return s.used })
		}
		is = &inlineSet{}
		var keys clientKeyStore
		if keys, is.err = parseJWKS(doc); is.err == nil {
			is.kf, is.err = keyfunc.New(keyfunc.Options{Storage: keys})
		}
		f.inline[sum] = is
	}
	is.used = f.cfg.now()
	f.mu.Unlock()
	if is.err != nil {
		return nil, invalidClient("the client's registered JWKS is unusable: "+is.err.Error(), nil)
	}
	key, err := is.kf.KeyfuncCtx(ctx)(lookupToken(kid, alg))
	switch {
	case err == nil:
		return key, nil
	case AsError(err) != nil:
		return nil, AsError(err)
	case errors.Is(err, jwkset.ErrKeyNotFound):
		return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the client's registered JWKS", alg, kid), nil)
	}
	return nil, invalidClient("the client's registered JWKS is unusable", err)
}

// evictOldest drops the least recently used entry. The caches are small
// (maxSets), so a scan is cheap next to the fetch that follows.
func evictOldest[K comparable, V any](m map[K]V, used func(V) time.Time) {
	var oldest K
	var at time.Time
	first := true
	for k, v := range m {
		if t := used(v); first || t.Before(at) {
			oldest, at, first = k, t, false
		}
	}
	if !first {
		delete(m, oldest)
	}
}

package token

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A client's JWKS URL is a URL a stranger chose that the server fetches
// from inside its network. Outside development mode the fetch therefore
// takes https only, connects only to public addresses (checked on the
// resolved address of every connection, redirects included, so DNS cannot
// smuggle a private address past the check), uses no proxy, and is
// bounded in time and size.

// errAddrRefused: a connection to a non-public address outside dev mode.
var errAddrRefused = errors.New("address not allowed")

// nonPublic are prefixes that IsGlobalUnicast lets through but that do not
// reach the public internet.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// publicAddr reports whether a is a public unicast address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// checkURL refuses what the fetch never requests: other schemes than
// https (http too in dev mode), and URLs without a host or with
// credentials in them.
func checkURL(u *url.URL, dev bool) error {
	switch {
	case u.Scheme == "https", u.Scheme == "http" && dev:
	case u.Scheme == "http":
		return invalidClient("the JWKS URL must use https", nil)
	default:
		return invalidClient("the JWKS URL must be an https URL", nil)
	}
	if u.Host == "" || u.User != nil {
		return invalidClient("the JWKS URL must be an https URL with a host and no credentials", nil)
	}
	return nil
}

// fetchConfig is how JWKS URLs are fetched.
type fetchConfig struct {
	dev      bool
	timeout  time.Duration
	maxBytes int64
	maxAge   time.Duration // the longest a fetched set is used
	failTTL  time.Duration // how long a failed fetch is answered from memory
	kidGap   time.Duration // the least time between fetches for an unknown kid
	maxSets  int
	now      func() time.Time
	// Tests only: the TLS configuration (to trust a test server) and the
	// address check (to treat a loopback test server as public).
	tlsConfig   *tls.Config
	addrAllowed func(netip.AddrPort) bool
}

// jwksFetcher fetches and caches clients' JWK Sets: one cached set per
// URL (and per inline JWKS document), at most maxSets of each, the least
// recently used dropped first.
type jwksFetcher struct {
	cfg    fetchConfig
	client *http.Client

	mu     sync.Mutex
	remote map[string]*remoteSet
	inline map[[32]byte]*inlineSet
}

// remoteSet is the cached JWK Set of one URL. sem admits one fetch at a
// time; the fields below it are guarded by sem.
type remoteSet struct {
	sem     chan struct{}
	keys    clientKeySet
	fetched time.Time
	expires time.Time
	err     error // of the last fetch, if it failed
	failed  time.Time
	used    time.Time // guarded by jwksFetcher.mu
}

type inlineSet struct {
	keys clientKeySet
	err  error
	used time.Time
}

func newFetcher(cfg fetchConfig) *jwksFetcher {
	allowed := cfg.addrAllowed
	if allowed == nil {
		allowed = func(ap netip.AddrPort) bool { return cfg.dev || publicAddr(ap.Addr()) }
	}
	dialer := &net.Dialer{
		Timeout: cfg.timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !allowed(ap) {
				return errAddrRefused
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        cfg.tlsConfig,
		TLSHandshakeTimeout:    cfg.timeout,
		ResponseHeaderTimeout:  cfg.timeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           32,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   cfg.timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return invalidClient("the JWKS URL redirects more than 3 times", nil)
			}
			return checkURL(req.URL, cfg.dev)
		},
	}
	return &jwksFetcher{cfg: cfg, client: client, remote: map[string]*remoteSet{}, inline: map[[32]byte]*inlineSet{}}
}

// key returns the key of the JWK Set at rawURL with the kid that fits
// alg. A kid not in the cached set makes it fetch the set again, at most
// once per kidGap. Every failure is an invalid_client *Error.
func (f *jwksFetcher) key(ctx context.Context, rawURL, kid, alg string) (any, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, invalidClient("the client's JWKS URL is not a URL", nil)
	}
	if err := checkURL(u, f.cfg.dev); err != nil {
		return nil, err
	}
	rs := f.entry(rawURL)
	select {
	case rs.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, invalidClient("timed out waiting for the client's JWKS", ctx.Err())
	}
	defer func() { <-rs.sem }()

	now := f.cfg.now()
	fresh := false
	if !now.Before(rs.expires) {
		if rs.err != nil && now.Sub(rs.failed) < f.cfg.failTTL {
			return nil, rs.err
		}
		if err := f.refresh(ctx, rs, rawURL, now); err != nil {
			return nil, err
		}
		fresh = true
	}
	key, found, err := rs.keys.find(kid, alg)
	if err != nil || found {
		return key, err
	}
	if !fresh && now.Sub(rs.fetched) >= f.cfg.kidGap && (rs.err == nil || now.Sub(rs.failed) >= f.cfg.failTTL) {
		if err := f.refresh(ctx, rs, rawURL, now); err != nil {
			desc := "it failed"
			if e := AsError(err); e != nil {
				desc = e.Description
			}
			return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the client's JWKS, and fetching it again failed: %s", alg, kid, desc), err)
		}
		if key, found, err = rs.keys.find(kid, alg); err != nil || found {
			return key, err
		}
	}
	return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the JWKS at %s", alg, kid, rawURL), nil)
}

// inlineKey is key for a JWK Set registered inline with the client.
func (f *jwksFetcher) inlineKey(doc []byte, kid, alg string) (any, error) {
	sum := sha256.Sum256(doc)
	f.mu.Lock()
	is := f.inline[sum]
	if is == nil {
		if len(f.inline) >= f.cfg.maxSets {
			evictOldest(f.inline, func(s *inlineSet) time.Time { return s.used })
		}
		is = &inlineSet{}
		is.keys, is.err = parseJWKS(doc)
		f.inline[sum] = is
	}
	is.used = f.cfg.now()
	f.mu.Unlock()
	if is.err != nil {
		return nil, invalidClient("the client's registered JWKS is unusable: "+is.err.Error(), nil)
	}
	key, found, err := is.keys.find(kid, alg)
	if err != nil || found {
		return key, err
	}
	return nil, invalidClient(fmt.Sprintf("no %s key with kid %q in the client's registered JWKS", alg, kid), nil)
}

func (f *jwksFetcher) entry(rawURL string) *remoteSet {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.remote[rawURL]
	if rs == nil {
		if len(f.remote) >= f.cfg.maxSets {
			evictOldest(f.remote, func(s *remoteSet) time.Time { return s.used })
		}
		rs = &remoteSet{sem: make(chan struct{}, 1)}
		f.remote[rawURL] = rs
	}
	rs.used = f.cfg.now()
	return rs
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

// refresh fetches the set into rs. A failure is remembered, and answered
// from memory for failTTL, so that an unreachable URL costs one timeout
// per failTTL rather than one per request; the keys fetched before stay
// until they expire.
func (f *jwksFetcher) refresh(ctx context.Context, rs *remoteSet, rawURL string, now time.Time) error {
	keys, ttl, err := f.fetch(ctx, rawURL)
	if err != nil {
		rs.err, rs.failed = err, now
		return err
	}
	rs.keys, rs.fetched, rs.expires, rs.err = keys, now, now.Add(ttl), nil
	return nil
}

// fetch GETs and parses a JWK Set; its errors are invalid_client *Errors.
func (f *jwksFetcher) fetch(ctx context.Context, rawURL string) (clientKeySet, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, invalidClient("the client's JWKS URL is not a URL", nil)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, f.fetchError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, invalidClient(fmt.Sprintf("the client's JWKS URL answered HTTP %d", resp.StatusCode), nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.maxBytes+1))
	if err != nil {
		return nil, 0, f.fetchError(err)
	}
	if int64(len(body)) > f.cfg.maxBytes {
		return nil, 0, invalidClient(fmt.Sprintf("the client's JWKS is larger than %d bytes", f.cfg.maxBytes), nil)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, invalidClient("the client's JWKS is unusable: "+err.Error(), nil)
	}
	return keys, cacheTTL(resp.Header.Get("Cache-Control"), f.cfg.maxAge), nil
}

func (f *jwksFetcher) fetchError(err error) error {
	if e := AsError(err); e != nil {
		return e
	}
	var ne net.Error
	switch {
	case errors.Is(err, errAddrRefused):
		return invalidClient("the client's JWKS URL resolves to a loopback, private or otherwise non-public address", err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return invalidClient(fmt.Sprintf("fetching the client's JWKS URL timed out (%v)", f.cfg.timeout), err)
	}
	return invalidClient("the client's JWKS URL could not be fetched", err)
}

// cacheTTL is how long a fetched set may be used: maxAge, or less when
// the response's Cache-Control says so (SMART: never longer than the
// client's cache-control header indicates). no-store and no-cache mean
// only for the verification that fetched it.
func cacheTTL(cc string, maxAge time.Duration) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(strings.ToLower(d)), "=")
		switch name {
		case "no-store", "no-cache":
			return 0
		case "max-age":
			if s, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && s >= 0 {
				maxAge = min(maxAge, time.Duration(min(s, 1<<30))*time.Second)
			}
		}
	}
	return maxAge
}

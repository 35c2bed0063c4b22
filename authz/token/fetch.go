package token

import (
	"context"
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
	"syscall"
	"time"

	"github.com/MicahParks/jwkset"

	"github.com/fhirgraph/fhirgraph/authz/internal/addr"
)

// A client's JWKS URL is a URL a stranger chose that the server fetches
// from inside its network. jwkset fetches it with the *http.Client made
// here, which outside development mode takes https only, connects only to
// public addresses (checked on the resolved address of every connection,
// redirects included, so DNS cannot smuggle a private address past the
// check), uses no proxy, follows at most 3 redirects, and is bounded in
// time and size.

// errAddrRefused: a connection to a non-public address outside dev mode.
var errAddrRefused = errors.New("address not allowed")

// errTooLarge: a JWKS response body longer than the limit.
var errTooLarge = errors.New("JWKS response too large")

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

// fetchConfig is how JWKS URLs are fetched and cached.
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

// newFetchClient returns the guarded client jwkset fetches JWKS URLs with.
func newFetchClient(cfg fetchConfig) *http.Client {
	allowed := cfg.addrAllowed
	if allowed == nil {
		allowed = func(ap netip.AddrPort) bool { return cfg.dev || addr.PublicIP(ap.Addr()) }
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
	return &http.Client{
		Transport: &noteTransport{base: transport, maxBytes: cfg.maxBytes},
		Timeout:   cfg.timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return invalidClient("the JWKS URL redirects more than 3 times", nil)
			}
			return checkURL(req.URL, cfg.dev)
		},
	}
}

// fetchNote is what a fetch's caller learns beyond jwkset's answer: the
// last response's status and Cache-Control (jwkset reads neither), and
// the error of a refetch jwkset hands to its RefreshErrorHandler. The
// caller puts it in the context of the jwkset call; the fetch runs in the
// caller's goroutine.
type fetchNote struct {
	status       int
	cacheControl string
	refetchErr   error
}

type noteKey struct{}

func withNote(ctx context.Context, n *fetchNote) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

func noteOf(ctx context.Context) *fetchNote {
	n, _ := ctx.Value(noteKey{}).(*fetchNote)
	return n
}

// noteRefetchError is the RefreshErrorHandler of every client's jwkset
// storage.
func noteRefetchError(ctx context.Context, err error) {
	if n := noteOf(ctx); n != nil {
		n.refetchErr = err
	}
}

// noteTransport asks for a JWK Set, caps the response body at maxBytes
// and notes the response in the request's fetchNote.
type noteTransport struct {
	base     http.RoundTripper
	maxBytes int64
}

func (t *noteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if n := noteOf(req.Context()); n != nil {
		n.status, n.cacheControl = resp.StatusCode, resp.Header.Get("Cache-Control")
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: t.maxBytes}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (t *noteTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// cappedBody fails a read past the limit with errTooLarge.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

// fetchError turns a failed jwkset fetch of a JWKS URL into an
// invalid_client *Error.
func (cfg fetchConfig) fetchError(err error, note *fetchNote) *Error {
	if e := AsError(err); e != nil {
		return e
	}
	var ne net.Error
	switch {
	case errors.Is(err, errAddrRefused):
		return invalidClient("the client's JWKS URL resolves to a loopback, private or otherwise non-public address", err)
	case errors.Is(err, errTooLarge):
		return invalidClient(fmt.Sprintf("the client's JWKS is larger than %d bytes", cfg.maxBytes), err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return invalidClient(fmt.Sprintf("fetching the client's JWKS URL timed out (%v)", cfg.timeout), err)
	case errors.Is(err, jwkset.ErrInvalidHTTPStatusCode):
		return invalidClient(fmt.Sprintf("the client's JWKS URL answered HTTP %d", note.status), err)
	case errors.Is(err, errNoUsableKey):
		return invalidClient("the client's JWKS is unusable: "+errNoUsableKey.Error(), err)
	case note.status == http.StatusOK:
		return invalidClient("the client's JWKS is unusable: not a JWK Set, or a key in it is malformed", err)
	}
	return invalidClient("the client's JWKS URL could not be fetched", err)
}

// cacheTTL is how long a fetched set may be used: maxAge, or less when
// the response's Cache-Control says so (SMART: never longer than the
// client's cache-control header indicates; jwkset does not read it).
// no-store and no-cache mean only for the verification that fetched it.
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

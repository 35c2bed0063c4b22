package token

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCacheTTL(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"": 5 * time.Minute, "public, max-age=60": time.Minute, "max-age=3600": 5 * time.Minute,
		"no-store": 0, "max-age=60, no-cache": 0, "MAX-AGE=0": 0, "max-age=junk": 5 * time.Minute,
	} {
		if got := cacheTTL(cc, 5*time.Minute); got != want {
			t.Errorf("cacheTTL(%q) = %v, want %v", cc, got, want)
		}
	}
}

// trustingTLS is a TLS configuration that trusts httptest's certificate.
func trustingTLS(srv *httptest.Server) *tls.Config {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig
}

func TestJWKSURLGuards(t *testing.T) {
	rs, _ := clientSigners(t)
	ctx := context.Background()
	s := openSQLite(t)
	plain := newJWKSServer(t, false, jwksOf(rs))
	secure := newJWKSServer(t, true, jwksOf(rs))
	other := newJWKSServer(t, true, jwksOf(rs))
	securePort := netip.MustParseAddrPort(secure.Listener.Addr().String()).Port()
	// onlySecure treats the secure server as if it were a public address.
	onlySecure := func(ap netip.AddrPort) bool { return ap.Port() == securePort }

	verify := func(t *testing.T, opts AssertionOptions, url string) error {
		t.Helper()
		c := newClock()
		opts.Now = c.Now
		v := newVerifier(t, s, opts)
		_, err := v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: url}, rs.sign(t, c.Now(), nil))
		return err
	}

	t.Run("https to a public address is fetched", func(t *testing.T) {
		before := secure.hits.Load()
		if err := verify(t, AssertionOptions{tlsConfig: trustingTLS(secure.Server), addrAllowed: onlySecure}, secure.URL); err != nil {
			t.Fatal(err)
		}
		if secure.hits.Load() != before+1 {
			t.Error("the JWKS was not fetched")
		}
	})
	t.Run("http refused outside dev", func(t *testing.T) {
		refused(t, verify(t, AssertionOptions{}, plain.URL), "must use https")
		if n := plain.hits.Load(); n != 0 {
			t.Errorf("%d requests reached the server", n)
		}
	})
	t.Run("http and loopback allowed in dev", func(t *testing.T) {
		if err := verify(t, AssertionOptions{Dev: true}, plain.URL); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("loopback refused outside dev", func(t *testing.T) {
		before := secure.hits.Load()
		tlsConf := trustingTLS(secure.Server)
		refused(t, verify(t, AssertionOptions{tlsConfig: tlsConf}, secure.URL), "non-public address")
		port := secure.URL[strings.LastIndex(secure.URL, ":"):]
		refused(t, verify(t, AssertionOptions{tlsConfig: tlsConf}, "https://localhost"+port), "non-public address")
		if n := secure.hits.Load(); n != before {
			t.Errorf("%d requests reached the server", n-before)
		}
	})
	t.Run("redirect to a non-public address refused", func(t *testing.T) {
		before, redirects := other.hits.Load(), secure.hits.Load()
		secure.redirectTo(other.URL)
		defer secure.redirectTo("")
		refused(t, verify(t, AssertionOptions{tlsConfig: trustingTLS(secure.Server), addrAllowed: onlySecure}, secure.URL), "non-public address")
		if other.hits.Load() != before {
			t.Error("the redirect target was fetched")
		}
		if secure.hits.Load() != redirects+1 {
			t.Error("the redirecting server was not asked: the test proves nothing")
		}
	})
	t.Run("redirect to http refused", func(t *testing.T) {
		before := plain.hits.Load()
		secure.redirectTo(plain.URL)
		defer secure.redirectTo("")
		refused(t, verify(t, AssertionOptions{tlsConfig: trustingTLS(secure.Server), addrAllowed: onlySecure}, secure.URL), "must use https")
		if plain.hits.Load() != before {
			t.Error("the http redirect target was fetched")
		}
	})
	t.Run("not https at all", func(t *testing.T) {
		refused(t, verify(t, AssertionOptions{Dev: true}, "file:///etc/passwd"), "must be an https URL")
		refused(t, verify(t, AssertionOptions{Dev: true}, "https://user:pw@example.org/jwks"), "no credentials")
	})
}

func TestUnreachableJWKSURLFailsFast(t *testing.T) {
	rs, _ := clientSigners(t)
	ctx := context.Background()
	s := openSQLite(t)

	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String() + "/jwks"
		l.Close()
		c := newClock()
		v := newVerifier(t, s, AssertionOptions{Dev: true, Now: c.Now})
		start := time.Now()
		_, err = v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: url}, rs.sign(t, c.Now(), nil))
		refused(t, err, "could not be fetched")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})

	t.Run("server that never answers", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var accepted atomic.Int64
		go func() {
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				held = append(held, conn)
			}
		}()
		c := newClock()
		v := newVerifier(t, s, AssertionOptions{Dev: true, Now: c.Now, FetchTimeout: 300 * time.Millisecond})
		client := ClientKeys{ClientID: testClient, JWKSURL: "http://" + l.Addr().String() + "/jwks"}
		start := time.Now()
		_, err = v.Verify(ctx, client, rs.sign(t, c.Now(), nil))
		refused(t, err, "timed out")
		if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
			t.Errorf("took %v, want about the 300ms timeout", d)
		}
		// The failure is remembered: the next request does not wait again.
		start = time.Now()
		_, err = v.Verify(ctx, client, rs.sign(t, c.Now(), nil))
		refused(t, err, "timed out")
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("the second request took %v: the failure was not remembered", d)
		}
		if n := accepted.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
		// After FailureTTL it tries again.
		c.Add(6 * time.Second)
		_, err = v.Verify(ctx, client, rs.sign(t, c.Now(), nil))
		refused(t, err, "timed out")
		if n := accepted.Load(); n != 2 {
			t.Errorf("%d connections after FailureTTL, want 2", n)
		}
	})
}

func TestJWKSResponseLimits(t *testing.T) {
	rs, _ := clientSigners(t)
	ctx := context.Background()
	s := openSQLite(t)
	c := newClock()

	big := newJWKSServer(t, false, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", 70<<10)+`"}`))
	v := newVerifier(t, s, AssertionOptions{Dev: true, Now: c.Now})
	_, err := v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: big.URL}, rs.sign(t, c.Now(), nil))
	refused(t, err, "larger than 65536 bytes")

	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	_, err = v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: missing.URL}, rs.sign(t, c.Now(), nil))
	refused(t, err, "answered HTTP 404")

	notJWKS := newJWKSServer(t, false, []byte(`<html>`))
	_, err = v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: notJWKS.URL}, rs.sign(t, c.Now(), nil))
	refused(t, err, "JWKS is unusable")
}

func TestJWKSCacheIsBounded(t *testing.T) {
	rs, _ := clientSigners(t)
	ctx := context.Background()
	c := newClock()
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now, JWKSCacheSize: 2})
	var servers []*jwksServer
	for range 3 {
		srv := newJWKSServer(t, false, jwksOf(rs))
		servers = append(servers, srv)
		c.Add(time.Second)
		if _, err := v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: srv.URL}, rs.sign(t, c.Now(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	v.keys.mu.Lock()
	n := len(v.keys.remote)
	_, oldest := v.keys.remote[servers[0].URL]
	v.keys.mu.Unlock()
	if n != 2 || oldest {
		t.Errorf("%d cached sets (oldest kept: %v), want the 2 most recent", n, oldest)
	}
}

func TestFirstFetchWaitsWithTheRequestContext(t *testing.T) {
	rs, _ := clientSigners(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int64
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, conn)
		}
	}()
	c := newClock()
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now, FetchTimeout: time.Second})
	client := ClientKeys{ClientID: testClient, JWKSURL: "http://" + l.Addr().String() + "/jwks"}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = v.Verify(ctx, client, rs.sign(t, c.Now(), nil))
	refused(t, err, "timed out waiting for the client's JWKS")
	if d := time.Since(start); d >= time.Second {
		t.Errorf("took %v: the request waited for the fetch timeout, not its own deadline", d)
	}
	// The fetch goes on for the next request, which waits for it rather
	// than starting another.
	_, err = v.Verify(context.Background(), client, rs.sign(t, c.Now(), nil))
	refused(t, err, "fetching the client's JWKS URL timed out")
	if n := accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestJWKSCacheLeavesNoGoroutines(t *testing.T) {
	rs, _ := clientSigners(t)
	ctx := context.Background()
	c := newClock()
	v := newVerifier(t, openSQLite(t), AssertionOptions{Dev: true, Now: c.Now, JWKSCacheSize: 2})
	var servers []*jwksServer
	for range 6 {
		servers = append(servers, newJWKSServer(t, false, jwksOf(rs)))
	}
	before := runtime.NumGoroutine()
	for round := range 3 {
		for _, srv := range servers {
			c.Add(time.Minute) // every set expires, evicted or not
			if _, err := v.Verify(ctx, ClientKeys{ClientID: testClient, JWKSURL: srv.URL}, rs.sign(t, c.Now(), nil)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	v.Close() // the idle connections' goroutines
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after fetching 6 URLs 3 times, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

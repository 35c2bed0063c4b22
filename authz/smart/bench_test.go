package smart

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/token"
)

// BenchmarkTokenClientCredentials measures the token endpoint over HTTP
// for SMART Backend Services: a private_key_jwt (ES384) client assertion
// verified with the client's JWKS, cached after the first request; the
// jti recorded in the store; an RS256 access token signed. The client
// signs its assertions outside the timer. Reported as requests/s.
func BenchmarkTokenClientCredentials(b *testing.B) {
	e := newEnv(b)
	c := &http.Client{Timeout: 10 * time.Second}
	post := func(a string) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.rs"},
			"client_assertion_type": {token.AssertionType}, "client_assertion": {a}}
		resp, err := c.Post(e.srv.URL+"/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	post(e.assertion(nil)) // fetch and cache the JWKS
	const batch = 256
	var elapsed time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(batch, b.N-done)
		as := make([]string, n)
		for i := range as {
			as[i] = e.assertion(nil)
		}
		b.StartTimer()
		start := time.Now()
		for _, a := range as {
			post(a)
		}
		elapsed += time.Since(start)
		done += n
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
}

package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestShutdownFinishesInFlightRequests starts a create whose body is still
// arriving, asks the server to stop, then sends the rest: the create must
// succeed, and the data must be there after a restart.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		body := patient("InFlight", `,"id":"ignored"`)
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", s.base+"/Patient", pr)
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		type result struct {
			status int
			loc    string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			resp.Body.Close()
			done <- result{status: resp.StatusCode, loc: resp.Header.Get("Location")}
		}()
		half := len(body) / 2
		if _, err := pw.Write([]byte(body[:half])); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // let the server start reading the body
		stopped := make(chan struct{})
		go func() { s.stop(); close(stopped) }()
		select {
		case <-stopped:
			t.Fatal("server stopped while a request was still in flight")
		case <-time.After(200 * time.Millisecond):
		}
		pw.Write([]byte(body[half:]))
		pw.Close()
		r := <-done
		if r.err != nil || r.status != http.StatusCreated {
			t.Fatalf("in-flight create: status %d, err %v", r.status, r.err)
		}
		<-stopped

		s2 := e.start(t, dir)
		expect(t, s2.do("GET", strings.TrimPrefix(r.loc, s.base+"/"), nil), http.StatusOK)
	})
}

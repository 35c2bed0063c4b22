// Package test holds end-to-end tests: they start the real fhirgraph program
// in-process through run(), on an embedded store in a temporary folder or
// on the MongoDB engine (against an embedded FerretDB; see forEachEngine),
// and talk to it over HTTP like any client.
package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	fhirgraph "github.com/fhirgraph/fhirgraph/cmd/fhirgraph/app"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// server is a running fhirgraph serve.
type server struct {
	t      testing.TB
	base   string // FHIR base, e.g. http://127.0.0.1:PORT/fhir
	root   string
	dir    string
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
	// token is the bearer token do sends ("" for none): by default one
	// minted at start for testPractice with system/*.cruds.
	token string
	// getenv is the environment of the store (for minting tokens).
	getenv func(string) string
}

// testPractice owns what the default token writes; every started store
// has it.
const testPractice = "E2ETEST"

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var baseLine = regexp.MustCompile(`FHIR base: (http://\S+)/fhir`)

// start runs `fhirgraph serve` on the embedded store in dir (a new temp dir
// when "") and waits until /healthz answers. The server stops when the test
// ends. engine.start does the same on any engine.
func start(t testing.TB, dir string, args ...string) *server {
	t.Helper()
	return embedded.start(t, dir, args...)
}

// startEnv runs `fhirgraph serve --data dir` with the environment getenv.
func startEnv(t testing.TB, dir string, getenv func(string) string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, dir: dir, cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}, getenv: getenv}
	argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "error"}, args...)
	go func() { s.done <- fhirgraph.Run(ctx, argv, getenv, s.out, s.out) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := baseLine.FindStringSubmatch(s.out.String()); m != nil {
			s.root = m[1]
			s.base = m[1] + "/fhir"
			break
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited before listening: %v\n%s", err, s.out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", s.out.String())
		}
	}
	for {
		resp, err := http.Get(s.root + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() { s.stop() })
	// A second create on a restarted store finds the practice there.
	if out, err := cliEnv(t, getenv, "practice", "create", "--data", dir, "--name", "End-to-end tests", "--pin", testPractice); err != nil && !strings.Contains(out+err.Error(), "exists") {
		t.Fatalf("practice create: %v\n%s", err, out)
	}
	s.token = s.mint("--scope", "system/*.cruds", "--practice", testPractice)
	return s
}

// mint runs `fhirgraph token` for this server's FHIR base on its store with
// the flags given, and returns the token.
func (s *server) mint(flags ...string) string {
	s.t.Helper()
	args := append([]string{"token", "--data", s.dir, "--log-level", "error", "--base-url", s.root}, flags...)
	out, err := cliEnv(s.t, s.getenv, args...)
	if err != nil {
		s.t.Fatalf("fhirgraph token %q: %v\n%s", flags, err, out)
	}
	return strings.TrimSpace(out)
}

// openStore opens the server's store in the test process, beside the
// server (both engines allow it), to check what the API does not show.
func (s *server) openStore(t testing.TB) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if uri := s.getenv("MONGODB_URI"); uri != "" {
		st, err = mongo.Open(context.Background(), uri, mongo.Options{})
	} else {
		st, err = sqlite.Open(s.dir, sqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// as returns the server with do sending tok as its bearer token ("" sends
// none).
func (s *server) as(tok string) *server {
	c := *s
	c.token = tok
	return &c
}

// stop shuts the server down gracefully and fails the test if run returned
// an error. It may be called more than once.
func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("server returned an error on shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Errorf("server did not stop")
	}
}

func noEnv(string) string { return "" }

// reply is an HTTP response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %v\n%s", r.status, err, r.body)
	}
	return m
}

// do sends a request to the FHIR base (path relative to it, or absolute
// URL) with optional headers as "Name: value" strings.
func (s *server) do(method, path string, body any, headers ...string) reply {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = s.base + "/" + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		if strings.EqualFold(strings.TrimSpace(name), "Authorization") {
			req.Header.Del("Authorization")
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

// expect fails the test unless the reply has the status.
func expect(t *testing.T, r reply, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(t)
}

// expectOutcome fails unless the reply is an OperationOutcome with the status.
func expectOutcome(t *testing.T, r reply, status int) map[string]any {
	t.Helper()
	m := expect(t, r, status)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("status %d body is not an OperationOutcome: %s", status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("OperationOutcome Content-Type = %q", ct)
	}
	return m
}

// cli runs a fhirgraph subcommand to completion and returns its output.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return cliEnv(t, noEnv, args...)
}

func cliEnv(t testing.TB, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out syncBuffer
	err := fhirgraph.Run(context.Background(), args, getenv, &out, &out)
	return out.String(), err
}

// sharedDir locates ../shared relative to the repository, or skips.
func sharedDir(t *testing.T, sub string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "shared", sub))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("%s not present", dir)
	}
	return dir
}

func patient(family string, extra ...string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q,"given":["Ada"]}],"gender":"female","birthDate":"1970-03-04"%s}`, family, strings.Join(extra, ""))
}

func str(v any) string { s, _ := v.(string); return s }

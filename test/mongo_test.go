package test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	fhirgraph "github.com/fhirgraph/fhirgraph/cmd/fhirgraph/app"
)

// mongoEngine is the MongoDB engine on the test FerretDB.
func mongoEngine() engine {
	e := ferretEngine
	e.mongo = ferret
	return e
}

// TestTwoServersShareOneMongoDB runs two servers on one database, as
// servers behind a load balancer do: what one writes, the other serves,
// and optimistic locking holds across them.
func TestTwoServersShareOneMongoDB(t *testing.T) {
	e := mongoEngine()
	dir := t.TempDir()
	a, b := e.start(t, dir), e.start(t, dir)
	if a.base == b.base {
		t.Fatal("the servers share a listener")
	}

	created := expect(t, a.do("POST", "Patient", patient("Shared")), http.StatusCreated)
	id := str(created["id"])
	got := expect(t, b.do("GET", "Patient/"+id, nil), http.StatusOK)
	if got["name"].([]any)[0].(map[string]any)["family"] != "Shared" || got["meta"].(map[string]any)["versionId"] != "1" {
		t.Errorf("read through the other server: %v", got)
	}

	expect(t, b.do("PUT", "Patient/"+id, patient("Second", `,"id":"`+id+`"`), `If-Match: W/"1"`), http.StatusOK)
	expectOutcome(t, a.do("PUT", "Patient/"+id, patient("Stale", `,"id":"`+id+`"`), `If-Match: W/"1"`), http.StatusPreconditionFailed)
	v2 := expect(t, a.do("GET", "Patient/"+id, nil), http.StatusOK)
	if v2["name"].([]any)[0].(map[string]any)["family"] != "Second" {
		t.Errorf("after an update through the other server: %v", v2)
	}
	expect(t, a.do("GET", "Patient/"+id+"/_history/1", nil), http.StatusOK)

	if r := b.do("DELETE", "Patient/"+id, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	expectOutcome(t, a.do("GET", "Patient/"+id, nil), http.StatusGone)
	if n := systemVersions(t, a); n != 3 {
		t.Errorf("system history through the other server has %d entries, want 3", n)
	}
	for _, s := range []*server{a, b} {
		if r := s.do("GET", s.root+"/readyz", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "mongodb") {
			t.Errorf("/readyz: %d %s", r.status, r.body)
		}
	}
}

func TestMongoIndexesCommand(t *testing.T) {
	e := mongoEngine()
	dir := t.TempDir()
	out, err := cli(t, "mongo", "indexes")
	if err != nil || !strings.Contains(out, "history") || !strings.Contains(out, "{type: 1, id: 1, version: 1} unique") || !strings.Contains(out, "rec_<name>") {
		t.Fatalf("mongo indexes: %v\n%s", err, out)
	}
	if _, err := cli(t, "mongo", "indexes", "--check"); err == nil || !strings.Contains(err.Error(), "MONGODB_URI") {
		t.Errorf("--check without MONGODB_URI: %v", err)
	}
	out, err = cliEnv(t, e.getenv(dir), "mongo", "indexes", "--check")
	if err == nil || !strings.Contains(out, "history {type: 1, id: 1, version: 1} unique: missing") {
		t.Errorf("--check on an empty database must report missing indexes: %v\n%s", err, out)
	}
	s := e.start(t, dir)
	expect(t, s.do("PUT", "Patient/p1", patient("Indexed", `,"id":"p1"`)), http.StatusCreated)
	out, err = cliEnv(t, e.getenv(dir), "mongo", "indexes", "--check")
	if err != nil || !strings.Contains(out, "no index missing") {
		t.Errorf("--check after a server started: %v\n%s", err, out)
	}
}

// TestMongoStartupErrors: a server that cannot use its MongoDB says so at
// once instead of starting.
func TestMongoStartupErrors(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"mongodb://127.0.0.1:1/db", "cannot reach MongoDB"},
		{"http://example.org", "invalid MongoDB URI"},
	} {
		env := func(k string) string {
			if k == "MONGODB_URI" {
				return tc.uri
			}
			return ""
		}
		start := time.Now()
		var out syncBuffer
		err := fhirgraph.Run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--mongo-connect-timeout", "1s"}, env, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve with MONGODB_URI=%s: %v, want an error saying %q", tc.uri, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("serve took %v to give up", d)
		}
	}
}

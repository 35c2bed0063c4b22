package token

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/mongo/mongotest"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// ferret is the FerretDB server the MongoDB engine's tests run against.
var ferret *mongotest.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fhirgraph-token-ferretdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if ferret, err = mongotest.Start(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	ferret.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// engines are the store engines the tests that use the store run on.
var engines = []struct {
	name string
	open func(t testing.TB) store.Store
}{
	{"sqlite", openSQLite},
	{"mongo", openMongo},
}

func openSQLite(t testing.TB) store.Store {
	t.Helper()
	s, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openMongo(t testing.TB) store.Store {
	t.Helper()
	s, err := mongo.Open(context.Background(), ferret.URI(ferret.NewDatabase()), mongo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachEngine runs f on a fresh store of every engine.
func eachEngine(t *testing.T, f func(t *testing.T, s store.Store)) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e.open(t)) })
	}
}

// clock is a settable clock. It starts at the wall clock's time, because
// the store expires records by the wall clock: a record the keyring
// dates must not look expired to the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

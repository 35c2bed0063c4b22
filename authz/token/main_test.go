package token

import (
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/enginetest"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// eachEngine runs f on a fresh store of every engine.
func eachEngine(t *testing.T, f func(t *testing.T, s store.Store)) { enginetest.Each(t, f) }

// openSQLite opens a fresh embedded store.
func openSQLite(t testing.TB) store.Store { return enginetest.SQLite(t) }

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

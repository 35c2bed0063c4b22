package test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/fhirgraph/fhirgraph/store/mongo/mongotest"
)

// ferret is the MongoDB-compatible server (FerretDB over SQLite) that the
// end-to-end tests run the MongoDB engine against, one per test binary.
var ferret *mongotest.Server

func TestMain(m *testing.M) { mongotest.Main(m, &ferret) }

// engine is a store engine the program runs on in a test. A test names its
// store with dir: the data folder of the embedded engine, or, for MongoDB,
// a database named after that folder; servers and subcommands given the
// same dir share the store.
type engine struct {
	name string
	// transactions: Apply takes several writes (transaction Bundles work).
	transactions bool
	mongo        *mongotest.Server
}

var (
	embedded = engine{name: "sqlite", transactions: true}
	// FerretDB is a standalone server: no multi-document transactions.
	ferretEngine = engine{name: "mongodb", transactions: false}
)

// forEachEngine runs a test on each engine, as subtests named after them.
// The MongoDB engine runs on FerretDB, which scans: keep data small there.
func forEachEngine(t *testing.T, test func(t *testing.T, e engine)) {
	t.Helper()
	for _, e := range []engine{embedded, ferretEngine} {
		if e.name == "mongodb" {
			e.mongo = ferret
		}
		t.Run(e.name, func(t *testing.T) { test(t, e) })
	}
}

// getenv is the environment the program sees for the store named dir.
func (e engine) getenv(dir string) func(string) string {
	if e.mongo == nil {
		return noEnv
	}
	sum := sha256.Sum256([]byte(dir))
	uri := e.mongo.URI("e2e" + hex.EncodeToString(sum[:8]))
	return func(key string) string {
		if key == "MONGODB_URI" {
			return uri
		}
		return ""
	}
}

// start runs `fhirgraph serve` on the store named dir (a new one when "").
func (e engine) start(t testing.TB, dir string, args ...string) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return startEnv(t, dir, e.getenv(dir), args...)
}

// cli runs `fhirgraph <command> --data dir args…` on the store named dir.
func (e engine) cli(t *testing.T, dir, command string, args ...string) (string, error) {
	t.Helper()
	return cliEnv(t, e.getenv(dir), append([]string{command, "--data", dir}, args...)...)
}

package mongo

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo/mongotest"
	"github.com/fhirgraph/fhirgraph/store/storetest"
)

// ferret is the FerretDB server of this test binary.
var ferret *mongotest.Server

func TestMain(m *testing.M) { mongotest.Main(m, &ferret) }

// openTest opens the engine on a new database of the test FerretDB.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	return openURI(t, ferret.URI(ferret.NewDatabase()), opts)
}

func openURI(t testing.TB, uri string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), uri, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// needTransactions are conformance tests that race inside Applies of
// several writes; on a server without transactions they are skipped. (The
// suite skips its other tests of atomic Applies there by itself, and gives
// the setup writes of the rest one Apply each.)
var needTransactions = map[string]bool{
	"Concurrency/ParallelCreates": true,
}

// conform runs the conformance suite on stores from open.
func conform(t *testing.T, open func(t *testing.T) *Store) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := open(t)
		if _, name, _ := strings.Cut(t.Name(), "/"); !s.Transactions() && needTransactions[name] {
			t.Skip("needs multi-document transactions, which this server lacks")
		}
		return s
	})
}

// TestConformance runs the store conformance suite against FerretDB.
func TestConformance(t *testing.T) {
	conform(t, func(t *testing.T) *Store { return openTest(t, Options{SweepInterval: 20 * time.Millisecond}) })
}

// TestConformanceOnMongoDB runs the suite against a real MongoDB, all of it
// when that is a replica set, if FHIRGRAPH_TEST_MONGODB_URI names one
// (each test uses a database of its own and drops it).
func TestConformanceOnMongoDB(t *testing.T) {
	uri := os.Getenv("FHIRGRAPH_TEST_MONGODB_URI")
	if uri == "" {
		t.Skip("FHIRGRAPH_TEST_MONGODB_URI is not set")
	}
	run := time.Now().UnixNano()
	n := 0
	conform(t, func(t *testing.T) *Store {
		n++
		s := openURI(t, uri, Options{Database: fmt.Sprintf("fhirgraph_test_%d_%d", run, n), SweepInterval: 20 * time.Millisecond})
		t.Cleanup(func() { s.db.Drop(context.Background()) })
		return s
	})
}

// Package enginetest runs the tests of packages built on the store on
// every engine: the embedded SQLite engine in a temporary folder, and the
// MongoDB engine on a FerretDB shared by the test binary. Only tests
// import it.
package enginetest

import (
	"context"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/mongo/mongotest"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// ferret is the binary's FerretDB, started by Main.
var ferret *mongotest.Server

// Main is the TestMain of a package whose tests call Each.
func Main(m *testing.M) { mongotest.Main(m, &ferret) }

// Each runs test as a subtest per engine ("sqlite", "mongodb"), each on a
// new, empty store closed when the subtest ends.
func Each(t *testing.T, test func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, SQLite(t)) })
	t.Run("mongodb", func(t *testing.T) { test(t, MongoDB(t)) })
}

// SQLite opens a new embedded store in a temporary folder.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// MongoDB opens the MongoDB engine on a new database of the binary's
// FerretDB; Main must be the package's TestMain.
func MongoDB(t testing.TB) store.Store {
	t.Helper()
	if ferret == nil {
		t.Fatal("enginetest: MongoDB needs enginetest.Main as the package's TestMain")
	}
	st, err := mongo.Open(context.Background(), ferret.URI(ferret.NewDatabase()), mongo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

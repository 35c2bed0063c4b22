// Package mongotest runs an embedded FerretDB v1 server (the MongoDB wire
// protocol over SQLite files) for tests of the MongoDB engine and for the
// end-to-end tests that run on it. Only tests import it, so FerretDB never
// reaches the fhirgraph binary.
//
// FerretDB has no transactions and no TTL indexes, and evaluates most
// filters by scanning: keep test data small.
package mongotest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is a running FerretDB.
type Server struct {
	uri    string // mongodb://127.0.0.1:PORT/
	cancel context.CancelFunc
	done   chan struct{}
	dbs    atomic.Int64
}

// Start runs FerretDB on a free loopback port, with its SQLite files
// under dir.
func Start(dir string) (*Server, error) {
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:  "sqlite",
		// Test data need not survive a power loss: no fsync per write.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(OFF)",
		// It warns on every client disconnect.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return nil, fmt.Errorf("ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		f.Run(ctx)
	}()
	s.uri = f.MongoDBURI()
	return s, nil
}

// New starts a server for one test, in a temporary folder, stopped when
// the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// URI is the connection string of database db.
func (s *Server) URI(db string) string { return strings.TrimSuffix(s.uri, "/") + "/" + db }

// NewDatabase returns the name of a database no one has used yet.
func (s *Server) NewDatabase() string { return fmt.Sprintf("t%d", s.dbs.Add(1)) }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// Main is a TestMain: it starts one server, in a temporary folder, for all
// the tests of the binary, points *srv at it while they run, and exits
// with their result.
func Main(m *testing.M, srv **Server) {
	dir, err := os.MkdirTemp("", "fhirgraph-ferretdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*srv = s
	code := m.Run()
	s.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

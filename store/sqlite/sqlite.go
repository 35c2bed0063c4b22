// Package sqlite is the embedded storage engine: SQLite in-process, through
// the pure-Go driver modernc.org/sqlite, with all data in one database file
// (plus its WAL) under a directory.
//
// Writes go through a single connection, one IMMEDIATE transaction at a time,
// so they are serialized within a process and, through SQLite's own file
// locks and busy timeout, with any other process that opens the same
// directory (a CLI subcommand run while the server runs waits for the lock
// instead of failing). Reads use a pool of query-only connections and never
// wait for writes (WAL mode). With synchronous=NORMAL a committed write
// survives a crash of the process; a power loss may lose the last commits
// but never corrupts the database.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/gate"
	sqlitedrv "modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// FileName is the name of the database file inside the data directory.
const FileName = "fhirgraph.db"

// Options tune an engine. The zero value is ready to use.
type Options struct {
	// Logger receives background events (sweeps, checkpoints); nil discards.
	Logger *slog.Logger
	// BusyTimeout is how long a write waits for another process holding the
	// write lock before failing; 0 means 30 seconds.
	BusyTimeout time.Duration
	// ReadConns caps the pool of read connections; 0 means 4 per CPU (at
	// least 8).
	ReadConns int
	// SweepInterval is how often expired platform records are removed;
	// 0 means one minute. Expired records are invisible at once either way.
	SweepInterval time.Duration
	// CacheMiB is the page cache of the write connection in MiB; 0 means 64.
	// Each read connection gets a quarter of it.
	CacheMiB int
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("sqlite store: closed")

// Store is an open embedded engine. It implements store.Store and is safe for
// concurrent use.
type Store struct {
	log  *slog.Logger
	path string
	w    *sql.DB // one connection: every write goes through it
	r    *sql.DB // query-only pool

	// life lets operations in while the store is open; Close waits for
	// those in flight.
	life gate.Gate

	// wmu serializes write transactions of this process and guards the
	// state below, which only a write transaction may change.
	wmu    sync.Mutex
	params map[paramKey]int64 // committed (type, param) → pid

	rs   readStmts
	ss   searchStmts
	ws   writeStmts
	bulk bulk // guarded by wmu

	collMu sync.Mutex
	colls  map[string]*collection

	busyTimeout time.Duration

	stopSweep chan struct{}
	sweepDone chan struct{}

	ckpt     *sql.DB // one connection for background checkpoints
	ckptKick chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating when needed) the database under dir, brings its schema
// up to date and starts the background sweeper of expired records.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, FileName))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	opts = opts.withDefaults()
	s := &Store{
		log:       opts.Logger,
		path:      abs,
		params:    map[paramKey]int64{},
		bulk:      newBulk(),
		colls:     map[string]*collection{},
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),
		ckptKick:  make(chan struct{}, 1),
		ckptStop:  make(chan struct{}),
		ckptDone:  make(chan struct{}),
	}
	if err := s.open(opts); err != nil {
		s.closeDBs()
		return nil, err
	}
	go s.sweep(opts.SweepInterval)
	go s.checkpointLoop(s.ckpt)
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 30 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.CacheMiB <= 0 {
		o.CacheMiB = 64
	}
	return o
}

func (s *Store) open(opts Options) error {
	s.busyTimeout = opts.BusyTimeout
	base := "file:" + (&url.URL{Path: s.path}).EscapedPath() +
		"?_pragma=synchronous(NORMAL)&_pragma=foreign_keys(0)&_pragma=temp_store(MEMORY)"
	var err error
	// The writer's own busy timeout is short: begin retries it, polling the
	// lock often, so that a process waiting for another one that writes
	// continuously gets in between two of its transactions rather than
	// after SQLite's backoff has grown to 100 ms sleeps. The journal mode is
	// persistent; the writer sets it, readers find it in the file.
	s.w, err = sql.Open("sqlite", base+fmt.Sprintf("&_pragma=busy_timeout(%d)&_txlock=immediate&_pragma=page_size(%d)&_journal_mode=WAL&_pragma=cache_size(%d)&_pragma=wal_autocheckpoint(%d)",
		writerBusyMs, pageSize, -opts.CacheMiB*1024, backstopWALBytes/pageSize))
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
		return err
	}

	s.r, err = sql.Open("sqlite", base+fmt.Sprintf("&_pragma=busy_timeout(%d)&_pragma=query_only(1)&_pragma=cache_size(%d)",
		opts.BusyTimeout.Milliseconds(), -opts.CacheMiB*256))
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	s.r.SetMaxOpenConns(opts.ReadConns)
	s.r.SetMaxIdleConns(opts.ReadConns)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	s.ckpt, err = sql.Open("sqlite", base+"&_pragma=busy_timeout(1000)")
	if err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	s.ckpt.SetMaxOpenConns(1)
	s.ckpt.SetMaxIdleConns(1)
	s.ckpt.SetConnMaxLifetime(0)
	s.ckpt.SetConnMaxIdleTime(0)
	if err := s.rs.prepare(ctx, s.r); err != nil {
		return err
	}
	if err := s.ws.prepare(ctx, s.w); err != nil {
		return err
	}
	if err := s.bulk.prepare(ctx, s.w); err != nil {
		return err
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Ping reports whether the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

// Close waits for operations in flight, stops the sweeper, checkpoints the
// WAL into the database file and closes every connection. Calls after Close
// return ErrClosed; closing twice is harmless.
func (s *Store) Close() error {
	if !s.life.Close() {
		return nil
	}

	close(s.stopSweep)
	<-s.sweepDone
	close(s.ckptStop)
	<-s.ckptDone

	var errs []error
	// A passive checkpoint never waits for another process using the
	// database; when this is the last connection, SQLite checkpoints the
	// rest and removes the WAL as it closes.
	if _, err := s.w.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		s.log.Warn("sqlite store: checkpoint on close", "err", err)
	}
	s.rs.close()
	s.ss.close()
	s.ws.close()
	s.bulk.close()
	errs = append(errs, s.closeDBs())
	return errors.Join(errs...)
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// enter marks an operation in flight; leave ends it.
func (s *Store) enter() error {
	return s.life.Enter(ErrClosed)
}

func (s *Store) leave() { s.life.Leave() }

// fail turns a driver error into the one callers see: the context's error
// when the context ended (the driver reports interrupted statements and
// rolled-back transactions in its own words), the error itself otherwise.
func (s *Store) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlite store: %w (%v)", cerr, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || isStoreError(err) {
		return err
	}
	return fmt.Errorf("sqlite store: %w", err)
}

func isStoreError(err error) bool {
	var we *store.WriteError
	return errors.As(err, &we) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) ||
		errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrExists) || errors.Is(err, ErrClosed)
}

// writeTx runs fn in an IMMEDIATE transaction on the write connection and
// commits it when fn returns nil; committed, if not nil, then runs before
// the next write may start. Writes of this process queue on wmu; writes of
// other processes make BEGIN wait up to the busy timeout.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error, committed func()) (err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return s.fail(ctx, err)
	}
	done := false
	defer func() {
		if !done { // fn panicked: never leave the write connection in a transaction
			tx.Rollback()
		}
	}()
	err = fn(tx)
	done = true
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			s.log.Warn("sqlite store: rollback", "err", rerr)
		}
		return s.fail(ctx, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, err)
	}
	if committed != nil {
		committed()
	}
	s.kickCheckpoint()
	return nil
}

// pageSize is the page size of a new database. Larger pages win on small
// databases but lose once index pages outnumber what a batch touches: each
// random index insert then dirties (and writes to the WAL) a whole page.
const pageSize = 4096

// writerBusyMs is the write connection's busy_timeout in milliseconds.
const writerBusyMs = 10

// begin starts an IMMEDIATE transaction, retrying while another process
// holds the write lock, until the busy timeout or ctx ends.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	deadline := time.Now().Add(s.busyTimeout)
	for {
		tx, err := s.w.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return tx, err
		}
		wait := time.NewTimer(time.Duration(500+rand.IntN(1500)) * time.Microsecond)
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil, ctx.Err()
		case <-wait.C:
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked" (by another
// connection or process).
func isBusy(err error) bool {
	var e *sqlitedrv.Error
	if !errors.As(err, &e) {
		return false
	}
	code := e.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

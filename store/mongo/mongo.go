// Package mongo is the scale-out storage engine: MongoDB through the official
// Go driver (go.mongodb.org/mongo-driver/v2; the v1 driver is in
// maintenance), for deployments where several stateless API servers share
// one replica set or sharded cluster.
//
// Layout of a database:
//
//   - one collection per resource type, named after it (Patient,
//     Observation, …), holding the current version of each resource: _id is
//     the resource id; the body is the resource JSON as a string; search
//     index values are flat arrays (see currentDoc);
//   - history: every version of every resource, _id a store-wide sequence
//     number, so that type and system history are one ordered index scan;
//   - counters: the sequence and the clock that order versions;
//   - rec_<name>: one collection per platform-record collection;
//   - meta: the declared keys of record collections, for index checks.
//
// The engine works on any MongoDB 4.4+ server and on FerretDB v1 (which the
// tests run against), using only what both support in its tested paths:
// no $elemMatch, no aggregation beyond counting, no partial indexes. Where
// the server reports more it uses it: multi-document transactions on a
// replica set or sharded cluster (an Apply of several writes needs one and
// fails with store.ErrUnsupported without; ApplyEach takes independent
// writes anywhere), TTL indexes for expired records (otherwise a background
// sweeper deletes them; either way they are invisible as soon as they
// expire), and a wildcard index on range values. On FerretDB,
// compare-and-set holds within one process only (see serial).
package mongo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/gate"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// DefaultDatabase is the database used when neither Options.Database nor the
// URI names one.
const DefaultDatabase = "fhirgraph"

// Options tune an engine. The zero value is ready to use; settings given in
// the URI (maxPoolSize, serverSelectionTimeoutMS, connectTimeoutMS) win over
// the defaults but not over values set here.
type Options struct {
	// Database overrides the database named in the URI path.
	Database string
	// MaxPoolSize caps the connections to each server; 0 means the URI's
	// maxPoolSize, else 100.
	MaxPoolSize uint64
	// ConnectTimeout bounds how long Open waits to reach the server (server
	// selection, connection and the first ping); 0 means the URI's
	// serverSelectionTimeoutMS, else 5 seconds.
	ConnectTimeout time.Duration
	// OpTimeout bounds every operation on the server; 0 means 30 seconds.
	OpTimeout time.Duration
	// SweepInterval is how often expired platform records are deleted on
	// servers without TTL indexes; 0 means one minute.
	SweepInterval time.Duration
	// Logger receives background events; nil discards them.
	Logger *slog.Logger
	// MaxChainIDs bounds the ids a chained or reverse-chained search
	// parameter may resolve to (they become one $in list); past it Search
	// fails with store.ErrInvalid. 0 means 1000.
	MaxChainIDs int
}

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("mongo store: closed")

// errTransactions is what an Apply of several writes meets on a server
// without multi-document transactions.
var errTransactions = fmt.Errorf("%w: transaction Bundles need a MongoDB replica set or sharded cluster (this server is standalone and has no multi-document transactions)", store.ErrUnsupported)

// Store is an open MongoDB engine. It implements store.Store and
// store.Store and is safe for concurrent use.
type Store struct {
	log    *slog.Logger
	client *mongo.Client
	db     *mongo.Database
	name   string

	// What the server is and has, found at Open.
	txn    bool // multi-document transactions
	ferret bool // FerretDB: see serial
	locks  [64]sync.Mutex

	history  *mongo.Collection
	counters *mongo.Collection
	meta     *mongo.Collection

	// life lets operations in while the store is open; Close waits for
	// those in flight.
	life gate.Gate

	typesMu sync.Mutex
	types   map[string]bool // resource collections whose indexes exist

	maxChainIDs int

	// collMu guards colls and whether the server has TTL indexes, which
	// the first record collection to be prepared finds out.
	collMu    sync.Mutex
	colls     map[string]*collection
	ttlProbed bool
	ttl       bool

	sweepMu    sync.Mutex
	sweepColls map[string]*mongo.Collection
	stopSweep  chan struct{}
	sweepDone  chan struct{}
}

var (
	_ store.Store = (*Store)(nil)
)

func (o Options) withDefaults(cs *connstring.ConnString) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
		if cs.ServerSelectionTimeoutSet && cs.ServerSelectionTimeout > 0 {
			o.ConnectTimeout = cs.ServerSelectionTimeout
		}
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 30 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.MaxChainIDs <= 0 {
		o.MaxChainIDs = 1000
	}
	if o.Database == "" {
		o.Database = cs.Database
	}
	if o.Database == "" {
		o.Database = DefaultDatabase
	}
	return o
}

// Open connects to the server at uri, checks within Options.ConnectTimeout
// that it answers and accepts the credentials, finds what it supports and
// creates the indexes the engine needs. A wrong URI, an unreachable server
// or refused credentials are reported here, not at the first request.
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	client, cs, opts, err := connect(ctx, uri, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		log:    opts.Logger,
		client: client,
		// Whatever the URI says: a client must read its own writes, and
		// compare-and-set must start from the current version.
		db:          client.Database(opts.Database, options.Database().SetReadPreference(readpref.Primary())),
		name:        opts.Database,
		maxChainIDs: opts.MaxChainIDs,
		types:       map[string]bool{},
		colls:       map[string]*collection{},
		stopSweep:   make(chan struct{}),
		sweepDone:   make(chan struct{}),
	}
	s.history = s.db.Collection(historyCollection)
	s.counters = s.db.Collection(countersCollection)
	s.meta = s.db.Collection(metaCollection)
	if err := s.start(ctx, opts.ConnectTimeout); err != nil {
		client.Disconnect(context.Background())
		return nil, fmt.Errorf("mongo store at %s: %w", strings.Join(cs.Hosts, ","), err)
	}
	go s.sweep(opts.SweepInterval)
	return s, nil
}

// connect makes a client and pings the primary.
func connect(ctx context.Context, uri string, opts Options) (*mongo.Client, *connstring.ConnString, Options, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		// The driver's message may quote the URI, credentials included.
		return nil, nil, opts, fmt.Errorf("invalid MongoDB URI: %s", redact(err.Error(), uri))
	}
	opts = opts.withDefaults(cs)
	co := options.Client().ApplyURI(uri).SetTimeout(opts.OpTimeout).SetServerSelectionTimeout(opts.ConnectTimeout)
	if !cs.ConnectTimeoutSet {
		co.SetConnectTimeout(opts.ConnectTimeout)
	}
	switch {
	case opts.MaxPoolSize > 0:
		co.SetMaxPoolSize(opts.MaxPoolSize)
	case !cs.MaxPoolSizeSet:
		co.SetMaxPoolSize(100)
	}
	if co.AppName == nil {
		co.SetAppName("fhirgraph")
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, nil, opts, fmt.Errorf("mongo store: %s", redact(err.Error(), uri))
	}
	pingCtx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		client.Disconnect(context.Background())
		return nil, nil, opts, fmt.Errorf("cannot reach MongoDB at %s within %s: %w", strings.Join(cs.Hosts, ","), opts.ConnectTimeout, err)
	}
	return client, cs, opts, nil
}

// redact removes the URI's password from a message.
func redact(msg, uri string) string {
	if cs, err := connstring.Parse(uri); err == nil && cs.Password != "" {
		msg = strings.ReplaceAll(msg, cs.Password, "xxxxx")
	}
	return msg
}

// start finds the server's capabilities and creates the indexes of the
// collections that exist.
func (s *Store) start(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 30*time.Second))
	defer cancel()
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
		// Sessions are a prerequisite of transactions.
		LogicalSessionTimeoutMinutes *int64 `bson:"logicalSessionTimeoutMinutes"`
	}
	err := s.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello)
	if isCode(err, codeCommandNotFound) {
		err = s.db.RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&hello)
	}
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	s.txn = (hello.SetName != "" || hello.Msg == "isdbgrid") && hello.LogicalSessionTimeoutMinutes != nil
	var build struct {
		Version         string   `bson:"version"`
		FerretDBFeats   bson.Raw `bson:"ferretdbFeatures"`
		FerretDBVersion string   `bson:"ferretdbVersion"`
	}
	if err := s.db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return fmt.Errorf("buildInfo: %w", err)
	}
	s.ferret = build.FerretDBFeats != nil || build.FerretDBVersion != ""
	s.log.Info("mongo store: connected", "database", s.name, "version", build.Version, "ferretdb", s.ferret, "transactions", s.txn)
	_, err = s.counters.UpdateOne(ctx, bson.D{{Key: "_id", Value: counterID}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "n", Value: int64(0)}, {Key: "t", Value: int64(0)}}}},
		options.UpdateOne().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return fmt.Errorf("version counter: %w", err)
	}
	return s.ensureStartIndexes(ctx)
}

// serial makes the compare-and-set or increment on key (a document) that
// follows atomic within this process, and returns the function that ends
// it. MongoDB applies a filtered update or delete to one document
// atomically, so on MongoDB serial does nothing. FerretDB v1 evaluates the
// filter before, and outside, the transaction that writes, so that two
// concurrent compare-and-sets on one document can both succeed; there,
// writers of one process take turns per document. Writers in different
// processes sharing a FerretDB can still race: FerretDB is for tests and
// development, not for servers that scale out.
func (s *Store) serial(key string) func() {
	if !s.ferret {
		return func() {}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Transactions reports whether the server runs multi-document
// transactions, and so whether Apply takes more than one write.
func (s *Store) Transactions() bool { return s.txn }

// Database is the name of the database the engine uses.
func (s *Store) Database() string { return s.name }

// Ping reports whether the primary answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.fail(ctx, s.client.Ping(ctx, readpref.Primary()))
}

// Close waits for operations in flight, stops the sweeper and disconnects.
// Calls after Close return ErrClosed; closing twice is harmless.
func (s *Store) Close() error {
	if !s.life.Close() {
		return nil
	}
	close(s.stopSweep)
	<-s.sweepDone
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

func (s *Store) enter() error {
	return s.life.Enter(ErrClosed)
}

func (s *Store) leave() { s.life.Leave() }

// fail turns a driver error into the one callers see: the context's error
// when the context ended, store errors as they are, anything else prefixed.
func (s *Store) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("mongo store: %w (%v)", cerr, err)
	}
	var we *store.WriteError
	if errors.As(err, &we) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrUnsupported) || errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("mongo store: %w", err)
}

// Server error codes the engine reacts to.
const (
	codeCommandNotFound = 59
	codeNotImplemented  = 238
)

func isCode(err error, code int32) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code == code
	}
	return false
}

// isNotImplemented reports whether the server said it lacks a feature
// (FerretDB does so for TTL and partial index options).
func isNotImplemented(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && (ce.Code == codeNotImplemented || ce.Name == "NotImplemented")
}

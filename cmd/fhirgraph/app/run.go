// Package app is the fhirgraph program: its subcommands, flags and wiring.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/mongo"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// version is set at build time with
// -ldflags "-X github.com/fhirgraph/fhirgraph/cmd/fhirgraph/app.version=…".
var version = "dev"

// command is one subcommand: its name, a one-line summary and its body.
type command struct {
	name, summary string
	run           func(ctx context.Context, env *env, args []string) error
}

var commands = []command{
	{"serve", "run the FHIR server", serve},
	{"import", "load NDJSON files, Bundles or folders of them into the store", importCmd},
	{"seed", "generate synthetic oncology-practice data", seed},
	{"reindex", "recompute search index values of stored resources: reindex [--type T]…", reindex},
	{"mongo", "MongoDB operations: mongo indexes [--check]", mongoCmd},
	{"client", "OAuth clients (SMART apps, backend services): client create|list|suspend|activate", clientCmd},
	{"user", "users who log in (patients, practitioners, staff): user create|list|suspend|activate", userCmd},
	{"practice", "practices and their PINs: practice create|list", practiceCmd},
	{"group", "cohorts of patients from a search, to export: group create --name N --query 'Type?params'", groupCmd},
	{"token", "mint an access token for development: token --scope S --base-url URL [--patient ID] [--practice PIN]…", tokenCmd},
}

// env is what every subcommand gets from run: the process's environment and
// output streams.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// Run is the whole program: main only supplies the process's arguments,
// environment and streams, so tests start the real server in-process.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fhirgraph <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun fhirgraph <command> -h for its flags.")
}

// storeFlags are the flags every subcommand that opens the store takes.
type storeFlags struct {
	data     string
	logLevel string

	// MongoDB engine, used when MONGODB_URI is set.
	mongoDB             string
	mongoPool           uint64
	mongoConnectTimeout time.Duration
	mongoTimeout        time.Duration
	envErr              error // a malformed environment variable
}

func (sf *storeFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&sf.data, "data", envOr(e, "FHIRGRAPH_DATA", "./data"), "data folder of the embedded store (env FHIRGRAPH_DATA)")
	fs.StringVar(&sf.logLevel, "log-level", envOr(e, "FHIRGRAPH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env FHIRGRAPH_LOG_LEVEL)")
	fs.StringVar(&sf.mongoDB, "mongo-db", e.getenv("FHIRGRAPH_MONGO_DB"), "MongoDB database (env FHIRGRAPH_MONGO_DB; default: the one in MONGODB_URI, else "+mongo.DefaultDatabase+")")
	fs.Uint64Var(&sf.mongoPool, "mongo-pool", sf.envUint(e, "FHIRGRAPH_MONGO_POOL", 0), "MongoDB connections per server (env FHIRGRAPH_MONGO_POOL; default: maxPoolSize in MONGODB_URI, else 100)")
	fs.DurationVar(&sf.mongoConnectTimeout, "mongo-connect-timeout", sf.envDuration(e, "FHIRGRAPH_MONGO_CONNECT_TIMEOUT", 0), "how long start-up waits to reach MongoDB (env FHIRGRAPH_MONGO_CONNECT_TIMEOUT; default: serverSelectionTimeoutMS in MONGODB_URI, else 5s)")
	fs.DurationVar(&sf.mongoTimeout, "mongo-timeout", sf.envDuration(e, "FHIRGRAPH_MONGO_TIMEOUT", 30*time.Second), "longest a MongoDB operation may take (env FHIRGRAPH_MONGO_TIMEOUT)")
}

func (sf *storeFlags) envUint(e *env, key string, def uint64) uint64 {
	v := strings.TrimSpace(e.getenv(key))
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		sf.envErr = fmt.Errorf("invalid %s %q: want a number", key, v)
		return def
	}
	return n
}

func (sf *storeFlags) envDuration(e *env, key string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.getenv(key))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		sf.envErr = fmt.Errorf("invalid %s %q: want a duration such as 10s", key, v)
		return def
	}
	return d
}

func (sf *storeFlags) logger(e *env) (*slog.Logger, error) {
	if sf.envErr != nil {
		return nil, sf.envErr
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(sf.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", sf.logLevel)
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})), nil
}

// Store kinds, as /readyz reports them.
const (
	kindSQLite  = "sqlite"
	kindMongoDB = "mongodb"
)

// kind is the engine open picks.
func (sf *storeFlags) kind(e *env) string {
	if e.getenv("MONGODB_URI") != "" {
		return kindMongoDB
	}
	return kindSQLite
}

// open opens the store the environment selects: MongoDB when MONGODB_URI is
// set, otherwise the embedded engine under --data.
// openWithLog reads the log level and opens the store, as every
// subcommand that uses the store does first.
func (sf *storeFlags) openWithLog(ctx context.Context, e *env) (store.Store, *slog.Logger, error) {
	log, err := sf.logger(e)
	if err != nil {
		return nil, nil, err
	}
	st, err := sf.open(ctx, e, log)
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return st, log, nil
}

func (sf *storeFlags) open(ctx context.Context, e *env, log *slog.Logger) (store.Store, error) {
	if sf.kind(e) == kindMongoDB {
		return mongo.Open(ctx, e.getenv("MONGODB_URI"), sf.mongoOptions(log))
	}
	return sqlite.Open(sf.data, sqlite.Options{Logger: log})
}

func (sf *storeFlags) mongoOptions(log *slog.Logger) mongo.Options {
	return mongo.Options{
		Database:       sf.mongoDB,
		MaxPoolSize:    sf.mongoPool,
		ConnectTimeout: sf.mongoConnectTimeout,
		OpTimeout:      sf.mongoTimeout,
		Logger:         log,
	}
}

func envOr(e *env, key, def string) string {
	if v := strings.TrimSpace(e.getenv(key)); v != "" {
		return v
	}
	return def
}

// newFlagSet makes a subcommand's flag set that reports errors instead of
// exiting, writing help to stderr.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("fhirgraph "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// Package app is the fhirgraph program: its subcommands, flags and wiring.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/fhirgraph/fhirgraph/store"
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
}

func (sf *storeFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&sf.data, "data", envOr(e, "FHIRGRAPH_DATA", "./data"), "data folder of the embedded store (env FHIRGRAPH_DATA)")
	fs.StringVar(&sf.logLevel, "log-level", envOr(e, "FHIRGRAPH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env FHIRGRAPH_LOG_LEVEL)")
}

func (sf *storeFlags) logger(e *env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(sf.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", sf.logLevel)
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})), nil
}

// open opens the store the environment selects: MongoDB when MONGODB_URI is
// set, otherwise the embedded engine under --data.
func (sf *storeFlags) open(ctx context.Context, e *env, log *slog.Logger) (store.Store, error) {
	if uri := e.getenv("MONGODB_URI"); uri != "" {
		return nil, errors.New("MONGODB_URI is set, but this build has no MongoDB engine; unset it to use the embedded store")
	}
	return sqlite.Open(sf.data, sqlite.Options{Logger: log})
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

package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/fhirgraph/fhirgraph/store/mongo"
)

// mongoCmd is `fhirgraph mongo indexes [--check]`: what an operator
// preparing a MongoDB deployment needs to know.
func mongoCmd(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "indexes" {
		fmt.Fprintln(e.stderr, "usage: fhirgraph mongo indexes [--check]")
		return errors.New("unknown or missing mongo subcommand; try: fhirgraph mongo indexes")
	}
	fs := newFlagSet("mongo indexes", e)
	var sf storeFlags
	sf.register(fs, e)
	check := fs.Bool("check", false, "connect to MONGODB_URI and report missing indexes (exit status non-zero if any)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: fhirgraph mongo indexes [--check] [flags]\n\nPrints the indexes each collection of the MongoDB engine needs; servers create them at start-up\n(record collections: on first use). With --check, compares them with the database of MONGODB_URI.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("mongo indexes takes no arguments, got %q", fs.Args())
	}
	log, err := sf.logger(e)
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, c := range mongo.IndexPlan() {
		fmt.Fprintf(tw, "%s\t%s\n", c.Collection, c.About)
		for _, ix := range c.Indexes {
			fmt.Fprintf(tw, "  %s\t%s\n", ix, ix.Why)
		}
	}
	tw.Flush()
	if !*check {
		return nil
	}

	uri := e.getenv("MONGODB_URI")
	if uri == "" {
		return errors.New("--check needs MONGODB_URI")
	}
	findings, err := mongo.CheckIndexes(ctx, uri, sf.mongoOptions(log))
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	missing := 0
	for _, f := range findings {
		fmt.Fprintln(e.stdout, f)
		if strings.HasPrefix(f.Problem, "missing") {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%d indexes missing (start a server on this database, or create them as listed)", missing)
	}
	fmt.Fprintln(e.stdout, "no index missing")
	return nil
}

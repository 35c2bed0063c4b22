package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// reindex recomputes the search index values and patient compartments of
// every stored resource (or of the --type ones) with this program's
// search-parameter registry, after the registry changed. It makes no new
// versions; it may run while a server uses the same store.
func reindex(ctx context.Context, e *env, args []string) error {
	defer bulkGC(e)()
	fs := newFlagSet("reindex", e)
	var sf storeFlags
	sf.register(fs, e)
	var types typeList
	fs.Var(&types, "type", "resource type to reindex (repeatable, or comma-separated); default every type in the store")
	batch := fs.Int("batch", store.DefaultReindexBatch, "resources per store transaction")
	baseURL := baseURLFlag(fs, e, "public URL of the server (env FHIRGRAPH_BASE_URL): absolute references under it are searched as relative ones")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: fhirgraph reindex [--type TYPE]… [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("reindex takes no arguments, got %q", fs.Args())
	}
	if *batch < 1 || *batch > maxReindexBatch {
		return fmt.Errorf("--batch must be between 1 and %d", maxReindexBatch)
	}
	st, _, err := sf.openWithLog(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()

	bar := newProgress(e, "reindexing")
	start := time.Now()
	stats, err := st.Reindex(ctx, store.ReindexQuery{
		Types: types,
		Index: func(typ, id string, body []byte) (store.IndexUpdate, error) {
			return resource.Derive(typ, id, body, fhirBase(*baseURL))
		},
		BatchSize: *batch,
		Progress:  func(s store.ReindexStats) { bar.update(ingest.Stats{Read: s.Resources}) },
	})
	bar.finish()
	elapsed := time.Since(start)
	fmt.Fprintf(e.stdout, "reindexed %d resources: %d changed, %d skipped (updated meanwhile) in %s (%.0f resources/s)\n",
		stats.Resources, stats.Changed, stats.Skipped, elapsed.Round(time.Millisecond), perSecond(stats.Resources, elapsed))
	if errors.Is(err, context.Canceled) {
		return errors.New("reindex interrupted: resources not reached keep their old index values; run it again to finish")
	}
	return err
}

// maxReindexBatch bounds --batch: a batch is one write transaction, which
// must stay short while a server shares the store.
const maxReindexBatch = 10000

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// typeList is a repeatable flag of resource types, checked as it is read.
type typeList []string

func (l *typeList) String() string { return strings.Join(*l, ",") }

func (l *typeList) Set(v string) error {
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if !validate.IsResourceType(t) {
			return fmt.Errorf("unknown resource type %q", t)
		}
		if !slices.Contains(*l, t) {
			*l = append(*l, t)
		}
	}
	return nil
}

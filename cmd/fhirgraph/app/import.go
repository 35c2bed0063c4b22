package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/fhirgraph/fhirgraph/fhir/ingest"
)

func importCmd(ctx context.Context, e *env, args []string) error {
	defer bulkGC(e)()
	fs := newFlagSet("import", e)
	var sf storeFlags
	sf.register(fs, e)
	strict := fs.Bool("strict", false, "stop at the first invalid resource instead of reporting and skipping it")
	batch := fs.Int("batch", 500, "resources per store transaction")
	practice := fs.String("practice", "", "PIN of the practice that owns the resources imported (must exist; default none: shared data)")
	baseURL := baseURLFlag(fs, e, "public URL of the server the data is for (env FHIRGRAPH_BASE_URL): absolute references under it are searched as relative ones")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: fhirgraph import [flags] PATH…  (NDJSON files, JSON resources or Bundles, or folders of them)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import needs at least one PATH")
	}
	st, _, err := sf.openWithLog(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	pin, err := practicePIN(ctx, st, *practice)
	if err != nil {
		return err
	}
	bar := newProgress(e, "importing")
	stats, err := ingest.Load(ctx, st, ingest.Files(fs.Args()), ingest.Options{
		BatchSize: *batch,
		Strict:    *strict,
		Base:      fhirBase(*baseURL),
		Practice:  pin,
		Progress:  bar.update,
		Reject: func(r ingest.Rejection) {
			bar.clear()
			fmt.Fprintln(e.stderr, "rejected:", r)
		},
	})
	bar.finish()
	fmt.Fprintln(e.stdout, "imported", stats)
	if err != nil {
		return err
	}
	if stats.Rejected > 0 {
		return fmt.Errorf("%d resources rejected", stats.Rejected)
	}
	return nil
}

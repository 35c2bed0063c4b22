package app

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
)

func seed(ctx context.Context, e *env, args []string) error {
	defer bulkGC(e)()
	fs := newFlagSet("seed", e)
	var sf storeFlags
	sf.register(fs, e)
	patients := fs.Int("patients", 100, "number of patients")
	seedN := fs.Int64("seed", 1, "random seed: the same seed gives the same data")
	practice := fs.String("practice", "", "PIN of the practice that owns the resources seeded (must exist; default none: shared data)")
	out := fs.String("out", "", "write NDJSON files (one per resource type) to this folder instead of the store")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *patients < 1 {
		return fmt.Errorf("--patients must be at least 1")
	}
	opts := synth.Options{Patients: *patients, Seed: *seedN}
	if *out != "" {
		n, err := writeNDJSON(*out, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %d resources to %s\n", n, *out)
		return nil
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
	bar := newProgress(e, "seeding")
	stats, err := ingest.Load(ctx, st, synthItems(opts), ingest.Options{Strict: true, Progress: bar.update, Practice: pin})
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "seeded", stats)
	return nil
}

// synthItems feeds generated resources to ingest.Load.
func synthItems(opts synth.Options) func(emit func(ingest.Item) error) error {
	return func(emit func(ingest.Item) error) error {
		n := 0
		return synth.Generate(opts, func(obj *fhirjson.Object) error {
			n++
			return emit(ingest.Item{Where: "seed", Line: n, Obj: obj})
		})
	}
}

// writeNDJSON writes generated data as one NDJSON file per resource type.
func writeNDJSON(dir string, opts synth.Options) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	files := map[string]*bufio.Writer{}
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	n := 0
	err := synth.Generate(opts, func(obj *fhirjson.Object) error {
		typ := obj.String("resourceType")
		w, ok := files[typ]
		if !ok {
			f, err := os.Create(filepath.Join(dir, typ+".ndjson"))
			if err != nil {
				return err
			}
			closers = append(closers, f)
			w = bufio.NewWriterSize(f, 1<<20)
			files[typ] = w
		}
		n++
		w.Write(fhirjson.Marshal(obj))
		return w.WriteByte('\n')
	})
	if err != nil {
		return n, err
	}
	for typ, w := range files {
		if err := w.Flush(); err != nil {
			return n, fmt.Errorf("%s: %w", typ, err)
		}
	}
	for _, f := range closers {
		if err := f.Close(); err != nil {
			return n, err
		}
	}
	closers = nil
	return n, nil
}

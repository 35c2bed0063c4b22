// Package ingest loads many resources into the store through the same
// validation and versioning as the REST API: parsing and validation run on
// every core, writes go to the store in batches, one atomic Apply each, and
// memory stays bounded whatever the input size.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/google/uuid"
)

// Item is one resource to load: raw JSON (Raw) or an already built tree
// (Obj). Where and Line say where it came from, for error reports.
type Item struct {
	Where string
	Line  int
	Raw   []byte
	Obj   *fhirjson.Object
	// Err, when set, is a problem the reader found (a line that is not
	// JSON, an unreadable Bundle entry); the item is rejected with it.
	Err error
}

// Rejection reports an item that was not loaded.
type Rejection struct {
	Where  string
	Line   int
	Reason string
}

func (r Rejection) String() string {
	if r.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", r.Where, r.Line, r.Reason)
	}
	return fmt.Sprintf("%s: %s", r.Where, r.Reason)
}

// Stats counts what a load did.
type Stats struct {
	Read, Created, Updated, Unchanged, Rejected int
	Elapsed                                     time.Duration
}

// PerSecond is the load's throughput in resources read per second.
func (s Stats) PerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Read) / s.Elapsed.Seconds()
}

func (s Stats) String() string {
	return fmt.Sprintf("%d resources: %d created, %d updated, %d unchanged, %d rejected in %s (%.0f resources/s)",
		s.Read, s.Created, s.Updated, s.Unchanged, s.Rejected, s.Elapsed.Round(time.Millisecond), s.PerSecond())
}

// Options tune a load.
type Options struct {
	// BatchSize is the number of resources per store transaction (default 500).
	BatchSize int
	// Workers parse and validate in parallel (default GOMAXPROCS).
	Workers int
	// Strict stops the load at the first rejected item: a batch holding an
	// invalid resource is not written; otherwise rejected items are
	// reported and skipped.
	Strict bool
	// Progress, if set, is called after each batch is written.
	Progress func(Stats)
	// Reject, if set, is called for each rejected item.
	Reject func(Rejection)
	// Base is the FHIR base URL of the server the data is loaded for:
	// absolute references under it are indexed as the relative ones they
	// stand for. Empty when unknown.
	Base string
	// Practice, when set, is the PIN of the practice that owns every
	// resource written (store.Write.Practice); empty writes resources no
	// practice owns (shared data every practice's tokens may see). An
	// unchanged resource keeps the practice it had (no version is made).
	Practice string
}

// ErrRejected is returned by a Strict load that met an invalid item.
var ErrRejected = errors.New("invalid resource")

type batch struct {
	seq      int
	items    []Item
	writes   []store.Write
	rejected []Rejection
}

// Load reads items from produce and stores them. Every resource is stored as
// an update of its own id, so loading the same data again makes no new
// versions; a resource without an id gets one derived from its content.
func Load(ctx context.Context, st store.Store, produce func(emit func(Item) error) error, opts Options) (Stats, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	raw := make(chan *batch, opts.Workers)
	done := make(chan *batch, opts.Workers)
	var produceErr error // written before produced is closed
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		defer close(raw)
		seq := 0
		cur := &batch{}
		err := produce(func(it Item) error {
			cur.items = append(cur.items, it)
			if len(cur.items) < opts.BatchSize {
				return nil
			}
			cur.seq, seq = seq, seq+1
			select {
			case raw <- cur:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			cur = &batch{}
			return nil
		})
		if err == nil && len(cur.items) > 0 {
			cur.seq = seq
			select {
			case raw <- cur:
			case <-ctx.Done():
			}
		}
		if err != nil {
			produceErr = err
			cancel(err)
		}
	}()
	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range raw {
				prepare(b, opts.Base, opts.Practice)
				select {
				case done <- b:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	var stats Stats
	err := writeInOrder(ctx, st, done, opts, &stats, start)
	if err != nil {
		cancel(err)
	}
	// Drain so producer and workers finish before returning.
	for range done {
	}
	<-produced
	if err == nil {
		err = produceErr
	}
	if err == nil {
		err = parent.Err()
	}
	stats.Elapsed = time.Since(start)
	return stats, err
}

// writeInOrder applies prepared batches in the order they were read, so a
// resource that appears twice ends at its last content.
func writeInOrder(ctx context.Context, st store.Store, done <-chan *batch, opts Options, stats *Stats, start time.Time) error {
	pending := map[int]*batch{}
	next := 0
	for b := range done {
		pending[b.seq] = b
		for {
			b, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			stats.Read += len(b.items)
			for _, rj := range b.rejected {
				stats.Rejected++
				if opts.Reject != nil {
					opts.Reject(rj)
				}
			}
			if opts.Strict && len(b.rejected) > 0 {
				return fmt.Errorf("%w: %s", ErrRejected, b.rejected[0])
			}
			if err := apply(ctx, st, b, opts, stats); err != nil {
				return err
			}
			if opts.Progress != nil {
				stats.Elapsed = time.Since(start)
				opts.Progress(*stats)
			}
		}
	}
	return nil
}

// apply writes one batch. Its writes are independent, so each is applied
// on its own (store.Resources.ApplyEach): one the store refuses is
// reported and the rest are written.
func apply(ctx context.Context, st store.Store, b *batch, opts Options, stats *Stats) error {
	if len(b.writes) == 0 {
		return nil
	}
	results, errs, err := st.ApplyEach(ctx, b.writes)
	if err != nil {
		return err
	}
	for i, res := range results {
		if errs[i] != nil {
			rj := Rejection{Where: b.writes[i].Type + "/" + b.writes[i].ID, Reason: errs[i].Error()}
			stats.Rejected++
			if opts.Reject != nil {
				opts.Reject(rj)
			}
			if opts.Strict {
				return fmt.Errorf("%w: %s", ErrRejected, rj)
			}
			continue
		}
		switch {
		case res.Unchanged:
			stats.Unchanged++
		case res.Created:
			stats.Created++
		default:
			stats.Updated++
		}
	}
	return nil
}

// prepare parses and validates a batch's items into writes.
func prepare(b *batch, base, practice string) {
	b.writes = make([]store.Write, 0, len(b.items))
	for _, it := range b.items {
		w, reason := prepareItem(it, base)
		if reason != "" {
			b.rejected = append(b.rejected, Rejection{Where: it.Where, Line: it.Line, Reason: reason})
			continue
		}
		w.Practice = practice
		b.writes = append(b.writes, w)
	}
	b.items = b.items[:len(b.items):len(b.items)]
}

func prepareItem(it Item, base string) (store.Write, string) {
	if it.Err != nil {
		return store.Write{}, it.Err.Error()
	}
	obj := it.Obj
	if obj == nil {
		var err error
		if obj, err = fhirjson.Parse(it.Raw); err != nil {
			return store.Write{}, err.Error()
		}
	}
	typ := obj.String("resourceType")
	if !validate.IsResourceType(typ) {
		return store.Write{}, fmt.Sprintf("unknown resourceType %q", typ)
	}
	id := obj.String("id")
	if id == "" {
		sum := sha256.Sum256(fhirjson.Marshal(obj))
		id = uuid.NewSHA1(uuid.NameSpaceOID, sum[:]).String()
	} else if !resource.ValidID(id) {
		return store.Write{}, fmt.Sprintf("invalid id %q", id)
	}
	w, issues := resource.Prepare(store.OpUpdate, typ, id, obj, base)
	if issues != nil {
		is := issues[0]
		more := ""
		if len(issues) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(issues)-1)
		}
		return store.Write{}, fmt.Sprintf("%s/%s: %s: %s%s", typ, id, is.Path, is.Message, more)
	}
	w.IfChanged = true
	return w, ""
}

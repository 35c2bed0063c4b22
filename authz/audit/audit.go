// Package audit records every FHIR access as an R4 AuditEvent in the
// store, off the request path: Record only queues the event, and one
// goroutine writes queued events in batches (one store.ApplyEach per
// batch). Staff read the trail through the FHIR API like any resource
// (AuditEvent?patient=…, ?agent=…, ?subtype=read); no one writes it there.
//
// When the queue is full Record drops the event and counts it (Stats,
// and a warning in the log) rather than wait: a store slow enough to fill
// the queue would otherwise stall every request behind it, turning a slow
// audit write into an outage of the API. Size the queue for the bursts
// the store cannot absorb at once.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/google/uuid"
)

// Defaults of Options' zero fields.
const (
	DefaultBatchSize     = 200
	DefaultFlushInterval = time.Second
	DefaultQueueSize     = 16384
)

// Options tune a Recorder; zero fields take the defaults.
type Options struct {
	// BatchSize is the most events one ApplyEach writes; a full batch is
	// written at once.
	BatchSize int
	// FlushInterval is the longest a queued event waits to be written.
	FlushInterval time.Duration
	// QueueSize bounds the events waiting to be written; Record drops
	// what does not fit.
	QueueSize int
	Logger    *slog.Logger
	// BaseURL is the FHIR base, as resource.Prepare takes it.
	BaseURL string
}

// Stats counts what a Recorder did with the events it was given.
type Stats struct {
	// Written events are in the store.
	Written uint64
	// Dropped events found the queue full (or the Recorder closed).
	Dropped uint64
	// Failed events could not be written (the store refused them).
	Failed uint64
}

// Recorder writes Events to the store in batches. Record is safe for
// concurrent use; Close it once, after the last Record.
type Recorder struct {
	st    store.Store
	opt   Options
	log   *slog.Logger
	queue chan Event

	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	// ctx bounds the writer's store calls; Close cancels it when its own
	// context ends before the queue is written.
	ctx    context.Context
	cancel context.CancelFunc

	written, dropped, failed atomic.Uint64
	// reported is the dropped count last logged.
	reported uint64
}

// New starts a Recorder writing to st.
func New(st store.Store, opt Options) *Recorder {
	if opt.BatchSize <= 0 {
		opt.BatchSize = DefaultBatchSize
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = DefaultFlushInterval
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = DefaultQueueSize
	}
	r := &Recorder{st: st, opt: opt, log: opt.Logger, queue: make(chan Event, opt.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r
}

// Record queues e to be written and returns at once: it never waits for
// the store. An event that finds the queue full, or the Recorder closed,
// is dropped and counted.
func (r *Recorder) Record(e Event) {
	if r.closed.Load() {
		r.dropped.Add(1)
		return
	}
	select {
	case r.queue <- e:
	default:
		r.dropped.Add(1)
	}
}

// Stats returns the counts so far.
func (r *Recorder) Stats() Stats {
	return Stats{Written: r.written.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load()}
}

// Close stops accepting events and writes those queued. When ctx ends
// first, the writes in progress are canceled, what is left is lost and
// ctx's error is returned. The store may be closed once Close returns.
func (r *Recorder) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	defer r.cancel()
	tick := time.NewTicker(r.opt.FlushInterval)
	defer tick.Stop()
	batch := make([]Event, 0, r.opt.BatchSize)
	flush := func() {
		if len(batch) > 0 {
			r.write(batch)
			batch = batch[:0]
		}
		r.reportDrops()
	}
	for {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
			if len(batch) >= r.opt.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		case <-r.stop:
			// Record no longer queues (bar one racing the flag): drain.
			for {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
					if len(batch) >= r.opt.BatchSize {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}

// reportDrops logs the events dropped since it last did, once per flush.
func (r *Recorder) reportDrops() {
	if d := r.dropped.Load(); d != r.reported {
		r.log.Warn("audit: events dropped: the queue was full", "dropped", d-r.reported, "dropped_total", d, "queue", r.opt.QueueSize)
		r.reported = d
	}
}

// write stores one batch with one ApplyEach.
func (r *Recorder) write(batch []Event) {
	if r.ctx.Err() != nil {
		r.failed.Add(uint64(len(batch)))
		return
	}
	writes := make([]store.Write, 0, len(batch))
	for _, e := range batch {
		wr, err := r.prepare(e)
		if err != nil {
			r.failed.Add(1)
			r.log.Error("audit: event not recorded", "interaction", e.Interaction, "type", e.Type, "err", err)
			continue
		}
		writes = append(writes, wr)
	}
	if len(writes) == 0 {
		return
	}
	_, errs, err := r.st.ApplyEach(r.ctx, writes)
	if err != nil {
		// Some writes may have taken effect; count them all as failed.
		r.failed.Add(uint64(len(writes)))
		r.log.Error("audit: batch not written", "events", len(writes), "err", err)
		return
	}
	for _, e := range errs {
		if e != nil {
			r.failed.Add(1)
			r.log.Error("audit: event not written", "err", e)
		} else {
			r.written.Add(1)
		}
	}
}

// errInvalid reports an AuditEvent the validator refused: a defect here.
var errInvalid = errors.New("invalid AuditEvent")

// prepare turns e into a store write of a new AuditEvent with a
// server-assigned id, owned by the token's practice when it has exactly
// one (staff of that practice then see it; one with none or several is
// unowned, seen by staff of every practice).
func (r *Recorder) prepare(e Event) (store.Write, error) {
	obj, err := e.Resource(r.patientsOf(e)...)
	if err != nil {
		return store.Write{}, err
	}
	wr, issues := resource.Prepare(store.OpCreate, "AuditEvent", uuid.NewString(), obj, r.opt.BaseURL)
	if len(issues) > 0 {
		return store.Write{}, fmt.Errorf("%w: %s: %s", errInvalid, issues[0].Path, issues[0].Message)
	}
	if len(e.Practices) == 1 {
		wr.Practice = e.Practices[0]
	}
	return wr, nil
}

// patientsOf finds the patient compartments of the resources a successful
// read or write named, so an access to a patient's data names the patient
// whoever made it. It reads the store, here in the writer, not on the
// request path; a resource it cannot read (deleted since) names none.
func (r *Recorder) patientsOf(e Event) []string {
	if e.Status >= 400 || len(e.IDs) == 0 || e.Type == "" || e.Type == "Patient" {
		return nil
	}
	if res := schema.Search().Resource(e.Type); res == nil || len(res.PatientCompartment) == 0 {
		return nil
	}
	var out []string
	for _, id := range e.IDs {
		cur, err := r.st.Read(r.ctx, e.Type, id)
		if err != nil {
			continue
		}
		d, err := resource.Derive(e.Type, id, cur.Body, r.opt.BaseURL)
		if err != nil {
			continue
		}
		out = append(out, d.Compartments...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

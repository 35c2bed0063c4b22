// Package bulk runs FHIR Bulk Data Access 2.0.0 exports ($export): export
// jobs kept as platform records in the store, a pool of workers that any
// number of server processes run against the same store, and the NDJSON
// output they write to the store's file area (store.Files).
//
// A job is claimed by one worker at a time under a lease (owner and
// deadline, set by compare-and-set on the job record) that the worker
// renews while it works. Output is written in parts; after each part is
// stored whole, the job records where the export stands (checkpoint), so a
// worker that takes over a job whose lease expired resumes after the last
// stored part: the output has neither gaps nor repeats.
//
// Package fhir serves the HTTP side (kick-off, status, cancel, download);
// this package validates what a kick-off asks (Spec), authorizes every
// query it runs through package authz, and never speaks HTTP.
package bulk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// Job states.
const (
	Queued    = "queued"
	Running   = "running"
	Completed = "completed"
	Failed    = "failed"
	// Canceled is a job its client deleted while it ran: the worker that
	// holds it (or the sweeper, once its lease ran out) removes it.
	Canceled = "canceled"
)

// Export levels (the kick-off endpoint).
const (
	SystemLevel  = "system"
	PatientLevel = "patient"
	GroupLevel   = "group"
)

// jobsDef is the collection of export jobs: looked up by state (workers
// and the sweeper) and by client (the per-client limit).
var jobsDef = store.CollectionDef{Name: "bulk_jobs", Keys: []string{"state", "client"}}

// Job is one export, as stored.
type Job struct {
	ID     string `json:"-"`
	Rev    int64  `json:"-"`
	State  string `json:"state"`
	Client string `json:"client"`
	// Subject is the token's sub: with Client, who may poll, cancel and
	// download.
	Subject string `json:"subject"`
	// Claims are the claims of the token that started the export; the
	// worker authorizes every query as that token would be.
	Claims token.AccessClaims `json:"claims"`
	Spec   Spec               `json:"spec"`
	// TransactionTime is the kick-off time: the export shows the data as
	// it was then.
	TransactionTime time.Time `json:"transactionTime"`
	// Request is the kick-off URL as the client sent it.
	Request string `json:"request"`
	// Notes are the parameters a lenient kick-off ignored; they end up in
	// the manifest's error file.
	Notes   []string  `json:"notes,omitempty"`
	Created time.Time `json:"created"`

	// Progress, written at each checkpoint.
	Pos    Position `json:"pos"`
	Output []File   `json:"output,omitempty"`
	Errors []File   `json:"errors,omitempty"`
	// Exported counts the resources in stored parts.
	Exported int `json:"exported"`
	// Epoch counts claims; part files carry it, so that a part written by
	// a worker that lost its lease never collides with the one the
	// taker-over writes.
	Epoch int `json:"epoch"`

	Owner string    `json:"owner,omitempty"`
	Until time.Time `json:"until,omitempty"`

	// Expires is when a finished job's output is removed.
	Expires time.Time `json:"expires,omitempty"`
	// Failure says why a failed job failed.
	Failure string `json:"failure,omitempty"`
}

// Position is where an export stands: the next page to read.
type Position struct {
	// Type indexes Spec.Types.
	Type int `json:"type"`
	// Chunk indexes the chunks of Spec.Patients (patient lists are queried
	// a chunk at a time).
	Chunk int `json:"chunk"`
	// Phase is 0 for the resources whose current version predates the
	// transaction time, 1 for those changed since (see snapshot).
	Phase int `json:"phase"`
	// Cursor continues the current query.
	Cursor string `json:"cursor,omitempty"`
	// Part numbers the next output part.
	Part int `json:"part"`
}

// File is one output (or error) file of a job.
type File struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Active reports whether the job still counts against its client's limit.
func (j *Job) Active() bool { return j.State == Queued || j.State == Running }

// HasFile reports whether name is one of the job's output or error files.
func (j *Job) HasFile(name string) (File, bool) {
	for _, f := range append(append([]File(nil), j.Output...), j.Errors...) {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// dir is the prefix of a job's files in the store's file area.
func dir(id string) string { return "export/" + id + "/" }

// jobs wraps the collection.
type jobs struct{ c store.Collection }

func (js jobs) get(ctx context.Context, id string) (*Job, error) {
	r, err := js.c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return decode(r)
}

func decode(r store.Record) (*Job, error) {
	var j Job
	if err := json.Unmarshal(r.Data, &j); err != nil {
		return nil, fmt.Errorf("bulk job %s: %w", r.ID, err)
	}
	j.ID, j.Rev = r.ID, r.Rev
	return &j, nil
}

func (js jobs) find(ctx context.Context, key, value string) ([]*Job, error) {
	rs, err := js.c.Find(ctx, key, value)
	if err != nil {
		return nil, err
	}
	out := make([]*Job, 0, len(rs))
	for _, r := range rs {
		j, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// recordExpiry keeps a finished job's record a while past its output, as
// a backstop for when no sweeper runs; the sweeper removes it first.
const recordExpiry = time.Hour

func (js jobs) record(j *Job) (store.Record, error) {
	data, err := json.Marshal(j)
	if err != nil {
		return store.Record{}, err
	}
	r := store.Record{ID: j.ID, Rev: j.Rev, Data: data}
	if !j.Expires.IsZero() {
		r.ExpiresAt = j.Expires.Add(recordExpiry)
	}
	return r, nil
}

func (js jobs) create(ctx context.Context, j *Job) error {
	r, err := js.record(j)
	if err != nil {
		return err
	}
	r, err = js.c.Create(ctx, r)
	if err != nil {
		return err
	}
	j.Rev = r.Rev
	return nil
}

// update stores j if its record is still at j.Rev (ErrConflict
// otherwise), and advances j.Rev.
func (js jobs) update(ctx context.Context, j *Job) error {
	r, err := js.record(j)
	if err != nil {
		return err
	}
	r, err = js.c.Update(ctx, r)
	if err != nil {
		return err
	}
	j.Rev = r.Rev
	return nil
}

// change applies fn to the stored job and stores it, retrying on
// concurrent changes; fn returning false leaves the job as it is.
func (js jobs) change(ctx context.Context, id string, fn func(*Job) (bool, error)) (*Job, error) {
	for {
		j, err := js.get(ctx, id)
		if err != nil {
			return nil, err
		}
		ok, err := fn(j)
		if err != nil || !ok {
			return j, err
		}
		err = js.update(ctx, j)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return j, err
	}
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

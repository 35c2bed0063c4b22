// Package store defines what the rest of Fhirgraph may ask of storage.
//
// Two kinds of data sit behind it: FHIR resources (current version, full
// history and precomputed search index values per version) and platform
// records (small JSON documents with lookups on declared keys,
// compare-and-set updates and expiry). Engines live in sub-packages
// (store/sqlite, store/mongo); store/storetest is the conformance suite every
// engine passes.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Errors returned by every engine. Callers test them with errors.Is; engines
// may wrap them with detail.
var (
	// ErrNotFound: no such resource, version or record (or the record expired).
	ErrNotFound = errors.New("not found")
	// ErrGone: the resource exists but its current version is a deletion.
	ErrGone = errors.New("deleted")
	// ErrConflict: the expected version (If-Match) or record revision did not
	// match the stored one.
	ErrConflict = errors.New("conflict")
	// ErrExists: a create met an existing resource or record with that id.
	ErrExists = errors.New("already exists")
	// ErrUnsupported: the engine cannot do this with the guarantees asked
	// (for example an atomic multi-document write on a standalone server).
	ErrUnsupported = errors.New("unsupported by this store engine")
	// ErrInvalid: the request can never succeed as given (for example a
	// search plan with an unknown Match, a page size out of range or a
	// cursor the engine did not issue).
	ErrInvalid = errors.New("invalid request")
)

// Store is one open storage engine.
type Store interface {
	Resources
	// Collection returns the platform-record collection described by def.
	// Engines create what the declared keys need (indexes) on first use;
	// calling it again with the same def is cheap.
	Collection(def CollectionDef) Collection
	// Files returns the engine's file area, where bulk exports keep their
	// output files (see Files).
	Files() Files
	// Ping reports whether the engine can serve requests.
	Ping(ctx context.Context) error
	// Close waits for in-flight writes and releases the engine.
	Close() error
}

// Resources holds FHIR resources with versions and history.
type Resources interface {
	// Read returns the current version of a resource. It returns ErrNotFound
	// when the resource never existed, and the deleted version together with
	// ErrGone when its current version is a deletion.
	Read(ctx context.Context, typ, id string) (Resource, error)
	// VRead returns one version of a resource, ErrNotFound if there is no
	// such version. A deletion version is returned with ErrGone.
	VRead(ctx context.Context, typ, id string, version int64) (Resource, error)
	// Apply performs writes atomically: either all of them take effect, in
	// order, or none does. A failing write is reported as a *WriteError
	// naming its position. Results are in the order of writes.
	Apply(ctx context.Context, writes []Write) ([]Result, error)
	// ApplyEach performs writes in order, each as if by its own one-write
	// Apply: each is atomic and checked on its own (If-Match, IfChanged,
	// create on a taken id), and one that fails leaves the others in
	// effect. Bulk loaders use it: their writes are independent, and it
	// works where Apply of several writes cannot (MongoDB without
	// multi-document transactions). errs[i], a *WriteError, reports why
	// write i failed; otherwise results[i] is what it did. err reports a
	// failure of the call itself (a canceled context, an unreachable
	// server), after which some of the writes may have taken effect.
	ApplyEach(ctx context.Context, writes []Write) (results []Result, errs []error, err error)
	// History lists versions newest first (instance, type or system level,
	// depending on which of Type and ID are set), one page at a time.
	History(ctx context.Context, q HistoryQuery) (HistoryPage, error)
	// Count returns how many resources of a type (all types when typ is "")
	// currently exist, not counting deleted ones.
	Count(ctx context.Context, typ string) (int, error)
	// Search runs a search plan (see Query) over the current, not deleted
	// versions of q.Type and returns one page of matches in order. An
	// invalid plan (an unknown Match, Bound or sort key, a Count out of
	// range, a Cursor this engine did not issue for this plan) is an error
	// wrapping ErrInvalid; a valid plan the engine cannot run with the
	// guarantees of Query is an error wrapping ErrUnsupported.
	Search(ctx context.Context, q Query) (SearchPage, error)
	// Reindex recomputes, with q.Index, the data derived from the content of
	// the current version of each resource of q.Types (index values and
	// patient compartments), after the rules that derive them changed. It
	// rewrites only that data: no version is made, versionId, lastUpdated,
	// the body and history stay as they are. Deleted resources have none
	// and are passed over.
	//
	// Resources are visited type by type, in order of id, a batch at a
	// time: each batch is read, indexed outside any transaction, then
	// rewritten, in one short transaction where the engine writes batches
	// so (each resource atomically on its own otherwise). Memory stays
	// flat, concurrent writers wait at most one batch, and an interrupted
	// Reindex leaves each resource with its old or its new data and can
	// simply run again. A
	// resource that a concurrent write changed between its read and its
	// rewrite keeps what that write stored (ReindexStats.Skipped). An error
	// from q.Index stops Reindex before its batch is written, naming the
	// resource; batches written before stay written. A nil q.Index is an
	// error wrapping ErrInvalid.
	Reindex(ctx context.Context, q ReindexQuery) (ReindexStats, error)
}

// ReindexQuery says what Reindex visits and how it derives the new data.
type ReindexQuery struct {
	// Types are the resource types to visit; empty means every type the
	// store holds. A type the store holds nothing of is visited in no time.
	Types []string
	// Index computes the derived data of one resource from its stored body
	// (Resource.Body: meta.versionId and meta.lastUpdated set). It is
	// called outside any transaction, possibly from several goroutines at
	// once, and may itself use the store.
	Index func(typ, id string, body []byte) (IndexUpdate, error)
	// Progress, if set, is called after each batch is written, with the
	// totals so far.
	Progress func(ReindexStats)
	// BatchSize is the number of resources per read and per transaction;
	// 0 means DefaultReindexBatch.
	BatchSize int
}

// DefaultReindexBatch is the batch size of a Reindex that names none.
const DefaultReindexBatch = 500

// IndexUpdate is the derived data of one resource version, as a Write
// carries it (Write.Index, Write.Compartments).
type IndexUpdate struct {
	Index        []IndexValue
	Compartments []string
}

// ReindexStats counts what a Reindex did.
type ReindexStats struct {
	// Resources is the number of resources visited.
	Resources int
	// Changed is how many of them had derived data other than the new,
	// and were rewritten.
	Changed int
	// Skipped is how many of them a concurrent write changed (or deleted)
	// between their read and their rewrite: they keep that write's data.
	Skipped int
}

// Resource is one stored version of a FHIR resource.
type Resource struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time
	// Deleted marks a deletion version; Body is then nil.
	Deleted bool
	// Body is the resource JSON as stored, with meta.versionId and
	// meta.lastUpdated set to VersionID and LastUpdated.
	Body json.RawMessage
	// Practice is the practice that owns the resource (Write.Practice),
	// "" for none. Only Read sets it; for a deleted resource it is the
	// practice of its last live version (the version before the deletion),
	// so that authorization can decide who may learn of the deletion
	// without showing the resource. It is UnknownPractice when the engine
	// did not record it (MongoDB deletions written before it kept the
	// practice). Every other method leaves it empty: callers may not read
	// "" there as "unowned".
	Practice string
}

// UnknownPractice is the Resource.Practice of a deletion whose owning
// practice was not recorded. It is no practice's PIN, so a filter that
// names practices never admits it.
const UnknownPractice = "!unknown"

// Op is the kind of a write.
type Op int

// Write operations.
const (
	// OpCreate creates a resource with a new id; ErrExists if the id is taken.
	OpCreate Op = iota + 1
	// OpUpdate creates the next version, or the first one when the resource
	// does not exist yet (update as create), or revives a deleted one.
	OpUpdate
	// OpDelete records a deletion version. Deleting a deleted resource
	// changes nothing; deleting one that never existed is ErrNotFound.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Write is one change to one resource.
type Write struct {
	Op   Op
	Type string
	ID   string
	// IfMatch, when non-zero, is the version the current one must be
	// (optimistic locking); otherwise the write fails with ErrConflict.
	IfMatch int64
	// IfChanged skips an update whose Content equals the current version's
	// (by Hash): the result then reports Unchanged and no version is made.
	IfChanged bool
	// Content is the canonical resource JSON without meta.versionId and
	// meta.lastUpdated. Hash is its digest (see HashContent), compared by
	// IfChanged.
	Content []byte
	Hash    string
	// Stamp returns the bytes to store once the engine knows the version and
	// time: Content with meta.versionId and meta.lastUpdated set. Required
	// for creates and updates.
	Stamp func(versionID int64, lastUpdated time.Time) ([]byte, error)
	// Practice is the practice (tenant) that owns the resource, if any.
	Practice string
	// Compartments lists the patient compartments the resource belongs to,
	// as "Patient/<id>".
	Compartments []string
	// Index holds the search index values of this version.
	Index []IndexValue
}

// IndexValue is one precomputed, normalized search value of a resource
// version. Its shape is the search engine's; engines store and query it.
type IndexValue struct {
	// Param is the search parameter code.
	Param string
	// Value is the normalized key searches match by equality or prefix:
	// a token's code, a reference's "Type/id", a folded string, a URI.
	Value string
	// System qualifies Value: a token's or quantity's system, or a string
	// exactly as written (for :exact). Engines index it after Value, so a
	// search on Value alone and one on both are served by one index.
	System string
	// Low and High bound date and number values as order-preserving
	// strings; empty when the value is not a range.
	Low, High string
}

// Result reports what one write did.
type Result struct {
	Resource
	// Created is true when the write made version 1 (or revived a deleted
	// resource through update).
	Created bool
	// Unchanged is true when an IfChanged update found equal content and
	// made no new version; Resource is then the current version.
	Unchanged bool
}

// WriteError tells which write of an Apply failed.
type WriteError struct {
	Index int
	Write Write
	Err   error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("%s %s/%s: %v", e.Write.Op, e.Write.Type, e.Write.ID, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// HistoryQuery selects versions for a history listing. With Type and ID set
// it is instance history, with only Type type history, with neither system
// history.
type HistoryQuery struct {
	Type, ID string
	// Since, when set, keeps versions last updated at or after it.
	Since time.Time
	// Compartments and Practices, when non-empty, keep only versions in at
	// least one of these patient compartments and owned by one of these
	// practices, as Query's do for searches ("" standing for no practice);
	// authorization uses them. Each version is judged by its own
	// membership, as derived when it was written (Write.Compartments,
	// Write.Practice; Reindex does not change it, not even the current
	// version's, which searches then see anew); a
	// deletion version has the membership of the live version before it.
	// Versions written before engines recorded membership have the
	// membership their resource had when the engine was upgraded (SQLite)
	// or none, and are kept by no practice filter (MongoDB).
	Compartments []string
	Practices    []string
	// ExceptTypes, in system history, leaves out versions of these types
	// (the types authorization denies the caller).
	ExceptTypes []string
	// Count is the page size (engines cap it; 0 means a default).
	Count int
	// Cursor continues from a previous page's Next.
	Cursor string
}

// HistoryPage is one page of versions, newest first.
type HistoryPage struct {
	Versions []Resource
	// Next continues the listing; empty on the last page.
	Next string
}

// DefaultPageSize and MaxPageSize bound history pages.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// PageSize applies the default and the cap to a requested page size.
func PageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

package bulk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// patientChunk is how many patient compartments one query names (a
// variable for tests).
var patientChunk = 500

// typePlan is how one type is exported: the query every page starts from
// (authorization, _typeFilter, _since and the patients applied), and what
// an earlier version (see asOf) must satisfy to stand for the resource.
type typePlan struct {
	typ    string
	skip   bool
	query  store.Query
	subset *search.Subset
	// exact: the filter is all in compartments, practices, ids and time
	// bounds, which asOf can check on an earlier version; under a clause
	// (granular scope, _typeFilter) it cannot, and such resources are left
	// out.
	exact bool
	// patients are the compartments a resource must be in (one of); nil
	// when not confined, empty with anyPatient when any patient's will do.
	patients   []string
	anyPatient bool
	// chunkOf gives the chunk of each of patients, once a type's export
	// needs more than one: a resource in the compartments of patients of
	// two chunks is written with the first.
	chunkOf map[string]int
}

// export runs the job held by l from its checkpoint to the end.
//
// Snapshot: each live resource is read once, in the store's stable order
// (keyset pages), and written as it was at the transaction time T: its
// current version when that predates T, else the version that was current
// at T, read from its history (none when it did not exist or was deleted
// then). Resources deleted since T, which no search finds, are then found
// in the type's history since T (phase 1) and written as they were at T.
// Filters are evaluated on the current version; an earlier version stands
// in for it only when it passes the same compartment, practice, id and
// time checks, and never under a granular scope or _typeFilter, whose
// clauses only the store evaluates (such resources, changed since T, are
// left out: a later export with _since=T has them).
func (s *Service) export(ctx context.Context, l *lease) error {
	j := *l.job
	p, err := s.cfg.Guard.Principal(&j.Claims)
	if err != nil {
		return failf("the export's access token can no longer be used: %v", err)
	}
	if err := s.checkClient(ctx, &j); err != nil {
		return err
	}
	pos := j.Pos
	plans := map[int]*typePlan{}
	var part *partWriter
	defer func() {
		if part != nil {
			part.abort(errors.New("export stopped"))
		}
	}()
	pages := 0
	for pos.Type < len(j.Spec.Types) {
		if err := ctx.Err(); err != nil {
			return err
		}
		pl := plans[pos.Type]
		if pl == nil {
			if pl, err = s.plan(p, &j, j.Spec.Types[pos.Type]); err != nil {
				return err
			}
			plans = map[int]*typePlan{pos.Type: pl}
		}
		next := pos
		if pl.skip {
			next = Position{Type: pos.Type + 1, Part: pos.Part}
		} else {
			count := min(store.MaxPageSize, s.cfg.PartSize-part.size())
			res, cursor, err := s.page(ctx, pl, &j, pos, count)
			if err != nil {
				return err
			}
			for _, r := range res {
				if part == nil {
					part = s.openPart(ctx, &j, pl.typ, pos.Part)
				}
				if err := part.write(pl.subset.Apply(r.Type, r.Body)); err != nil {
					return err
				}
			}
			pages++
			if s.cfg.AfterPage != nil && s.cfg.AfterPage(j.ID, pages) {
				part.abort(errKilled)
				part = nil
				return errKilled
			}
			next.Cursor = cursor
			if cursor == "" {
				next = advance(pos, len(pl.patients))
			}
		}
		typeDone := next.Type != pos.Type
		pos = next
		if part != nil && (part.size() >= s.cfg.PartSize || typeDone) {
			f, err := part.close()
			part = nil
			if err != nil {
				return err
			}
			pos.Part++
			if err := s.checkClient(ctx, &j); err != nil {
				return err
			}
			at := pos
			if err := l.store(ctx, func(j *Job) {
				j.Pos = at
				j.Output = append(j.Output, f)
				j.Exported += f.Count
			}); err != nil {
				return err
			}
		}
	}
	var errs []File
	if len(j.Notes) > 0 {
		f, err := s.writeNotes(ctx, &j, pos.Part)
		if err != nil {
			return err
		}
		errs = append(errs, f)
	}
	return l.store(ctx, func(j *Job) {
		j.Pos = pos
		j.Errors = errs
		j.State, j.Owner, j.Until = Completed, "", time.Time{}
		j.Expires = s.now().Add(s.cfg.Expiry)
	})
}

// advance is the position after the last page of pos's query: the next
// patient chunk, the next phase, or the next type.
func advance(pos Position, patients int) Position {
	chunks := max((patients+patientChunk-1)/patientChunk, 1)
	switch {
	case pos.Phase == 0 && pos.Chunk+1 < chunks:
		return Position{Type: pos.Type, Chunk: pos.Chunk + 1, Part: pos.Part}
	case pos.Phase == 0:
		return Position{Type: pos.Type, Phase: 1, Part: pos.Part}
	}
	return Position{Type: pos.Type + 1, Part: pos.Part}
}

// checkClient fails the export when its client is no longer active, or
// a practice whose data the job reaches no longer consents to it (as the
// guard narrows the client's tokens from then on): what it wrote stays
// unpublished.
func (s *Service) checkClient(ctx context.Context, j *Job) error {
	c, err := s.reg.GetClient(ctx, j.Client)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return failf("client %s is no longer registered", j.Client)
	case err != nil:
		return err
	case c.Status != registry.StatusActive:
		return failf("client %s is %s", j.Client, c.Status)
	}
	for _, p := range j.Claims.Practices {
		if !slices.Contains(c.Practices, p) {
			return failf("practice %s no longer consents to client %s", p, j.Client)
		}
	}
	switch revoked, err := s.cfg.Guard.Revoked(ctx, &j.Claims); {
	case err != nil:
		return err
	case revoked:
		return failf("the export's access token was revoked")
	}
	return nil
}

// plan decides and compiles the export of typ for principal p.
func (s *Service) plan(p *authz.Principal, j *Job, typ string) (*typePlan, error) {
	spec := &j.Spec
	pl := &typePlan{typ: typ, subset: spec.subset(typ), exact: true}
	if spec.Level != SystemLevel && !InPatientCompartment(typ) {
		pl.skip = true
		return pl, nil
	}
	a, err := s.cfg.Guard.Decide(p, policy.SearchType, typ)
	if err != nil {
		return nil, err
	}
	if !a.Allowed {
		return nil, failf("the export's access token may no longer search %s: %s", typ, a.Reason)
	}
	q := store.Query{Type: typ, Since: spec.Since}
	fp, err := compileFilters(typ, spec.TypeFilters[typ], spec.Base)
	if len(spec.TypeFilters[typ]) > 0 {
		if err != nil {
			return nil, failf("%v", err)
		}
		q.Where, q.IDs = fp.where, fp.ids
		if fp.since > q.Since {
			q.Since = fp.since
		}
		q.Before = fp.before
		if ad, err := s.cfg.Guard.ScopeNested(p, q.Where); err != nil {
			return nil, err
		} else if !ad.Allowed {
			return nil, failf("_typeFilter of %s: %s", typ, ad.Reason)
		}
	}
	own := 0
	switch {
	case spec.AllPatients:
		if c := anyPatient(typ); c != nil {
			q.Where = append(q.Where, c)
			own = 1
		}
		pl.anyPatient = true
	case spec.Level != SystemLevel:
		pl.patients = make([]string, len(spec.Patients))
		for i, id := range spec.Patients {
			pl.patients[i] = "Patient/" + id
		}
		if len(pl.patients) == 0 {
			pl.skip = true
			return pl, nil
		}
	}
	a.Filter.Apply(&q)
	// Our own clause (any patient) is checked on earlier versions by
	// their compartments; any other is not.
	pl.exact = len(q.Where) == own
	pl.query = q
	return pl, nil
}

// page reads one page at pos and returns the resources to write, as they
// were at the transaction time, and the cursor of the next page ("" after
// the last).
func (s *Service) page(ctx context.Context, pl *typePlan, j *Job, pos Position, count int) ([]store.Resource, string, error) {
	t := j.TransactionTime
	if pos.Phase == 1 {
		return s.deletedSince(ctx, pl, j, pos.Cursor, count)
	}
	q := pl.query
	q.Count, q.Cursor = count, pos.Cursor
	if pl.patients != nil {
		lo := pos.Chunk * patientChunk
		chunk := pl.patients[lo:min(lo+patientChunk, len(pl.patients))]
		// The filter's compartments (a patient-confined token) narrow the
		// chunk, as authz.Filter.Apply does.
		if len(q.Compartments) > 0 {
			var both []string
			for _, c := range chunk {
				if slices.Contains(q.Compartments, c) {
					both = append(both, c)
				}
			}
			if both == nil {
				return nil, "", nil
			}
			chunk = both
		}
		q.Compartments = chunk
	}
	pg, err := s.st.Search(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out := pg.Resources[:0:0]
	for _, r := range pg.Resources {
		if pos.Chunk > 0 {
			earlier, err := s.inEarlierChunk(pl, j, r, pos.Chunk)
			if err != nil {
				return nil, "", err
			}
			if earlier {
				continue
			}
		}
		if r.LastUpdated.Before(t) {
			out = append(out, r)
			continue
		}
		if !pl.exact {
			continue
		}
		old, ok, err := s.versionAt(ctx, pl, j, &q, r, t)
		if err != nil {
			return nil, "", err
		}
		if ok {
			out = append(out, old)
		}
	}
	return out, pg.Next, nil
}

// inEarlierChunk reports whether r is in the compartment of a patient of
// a chunk before chunk, whose pages have had it already.
func (s *Service) inEarlierChunk(pl *typePlan, j *Job, r store.Resource, chunk int) (bool, error) {
	if pl.chunkOf == nil {
		pl.chunkOf = make(map[string]int, len(pl.patients))
		for i, p := range pl.patients {
			pl.chunkOf[p] = i / patientChunk
		}
	}
	d, err := resource.Derive(r.Type, r.ID, r.Body, j.Spec.Base)
	if err != nil {
		return false, fmt.Errorf("%s/%s: %w", r.Type, r.ID, err)
	}
	for _, c := range d.Compartments {
		if n, ok := pl.chunkOf[c]; ok && n < chunk {
			return true, nil
		}
	}
	return false, nil
}

// deletedSince is phase 1: resources deleted since the transaction time
// (and not revived), as they were at it.
func (s *Service) deletedSince(ctx context.Context, pl *typePlan, j *Job, cursor string, count int) ([]store.Resource, string, error) {
	if !pl.exact {
		return nil, "", nil
	}
	t := j.TransactionTime
	hp, err := s.st.History(ctx, store.HistoryQuery{Type: pl.typ, Since: t, Count: count, Cursor: cursor})
	if err != nil {
		return nil, "", err
	}
	var out []store.Resource
	q := pl.query
	if pl.patients != nil {
		q.Compartments = narrowTo(pl.patients, q.Compartments)
	}
	for _, v := range hp.Versions {
		if !v.Deleted {
			continue
		}
		cur, err := s.st.Read(ctx, v.Type, v.ID)
		if !errors.Is(err, store.ErrGone) {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, "", err
			}
			continue
		}
		if cur.VersionID != v.VersionID {
			continue
		}
		old, ok, err := s.versionAt(ctx, pl, j, &q, v, t)
		if err != nil {
			return nil, "", err
		}
		if ok {
			out = append(out, old)
		}
	}
	return out, hp.Next, nil
}

// versionAt is the version r had at t when the export may write it: it
// existed then, passes the checks the store could not make on it (admits),
// and that version belonged to a practice of the query.
func (s *Service) versionAt(ctx context.Context, pl *typePlan, j *Job, q *store.Query, r store.Resource, t time.Time) (store.Resource, bool, error) {
	old, ok, err := s.asOf(ctx, r, t)
	if err != nil || !ok || !s.admits(pl, j, old, q) {
		return store.Resource{}, false, err
	}
	owned, err := s.ownedBy(ctx, old, q.Practices)
	if err != nil || !owned {
		return store.Resource{}, false, err
	}
	return old, true, nil
}

func narrowTo(patients, allowed []string) []string {
	if len(allowed) == 0 {
		return patients
	}
	var out []string
	for _, p := range patients {
		if slices.Contains(allowed, p) {
			out = append(out, p)
		}
	}
	if out == nil {
		return []string{"!none"}
	}
	return out
}

// asOf returns the version of r that was current at t: false when r did
// not exist or was deleted then.
func (s *Service) asOf(ctx context.Context, r store.Resource, t time.Time) (store.Resource, bool, error) {
	if !r.Deleted && r.LastUpdated.Before(t) {
		return r, true, nil
	}
	for v := r.VersionID - 1; v >= 1; v-- {
		old, err := s.st.VRead(ctx, r.Type, r.ID, v)
		switch {
		case errors.Is(err, store.ErrGone):
			if old.LastUpdated.Before(t) {
				return store.Resource{}, false, nil
			}
			continue
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return store.Resource{}, false, err
		}
		if old.LastUpdated.Before(t) {
			return old, true, nil
		}
	}
	return store.Resource{}, false, nil
}

// ownedBy reports whether version old was owned by one of practices (nil:
// any). Each version keeps the practice it was written with, which an
// update or a revival may change since; only a history query filters on
// it (the resource's own practice, store.Read's, is its current one).
func (s *Service) ownedBy(ctx context.Context, old store.Resource, practices []string) (bool, error) {
	if len(practices) == 0 {
		return true, nil
	}
	q := store.HistoryQuery{Type: old.Type, ID: old.ID, Since: old.LastUpdated, Practices: practices, Count: store.MaxPageSize}
	for {
		hp, err := s.st.History(ctx, q)
		if err != nil {
			return false, err
		}
		for _, v := range hp.Versions {
			if v.VersionID == old.VersionID {
				return true, nil
			}
		}
		if hp.Next == "" {
			return false, nil
		}
		q.Cursor = hp.Next
	}
}

// admits reports whether an earlier version old passes the checks of q
// that do not need the store: compartments (derived from its body), ids
// and the time bounds. Its practice is ownedBy's to check.
func (s *Service) admits(pl *typePlan, j *Job, old store.Resource, q *store.Query) bool {
	if len(q.IDs) > 0 && !slices.Contains(q.IDs, old.ID) {
		return false
	}
	at := FormatInstant(old.LastUpdated)
	if q.Since != "" && at < q.Since || q.Before != "" && at >= q.Before {
		return false
	}
	if len(q.Compartments) == 0 && !pl.anyPatient {
		return true
	}
	d, err := resource.Derive(old.Type, old.ID, old.Body, j.Spec.Base)
	if err != nil {
		return false
	}
	if pl.anyPatient && len(d.Compartments) == 0 {
		return false
	}
	if len(q.Compartments) == 0 {
		return true
	}
	for _, c := range d.Compartments {
		if slices.Contains(q.Compartments, c) {
			return true
		}
	}
	return false
}

// partWriter streams one output file: lines go through a pipe into
// Files.PutFile, which stores the file only when it is closed whole.
type partWriter struct {
	name, typ string
	pw        *io.PipeWriter
	bw        *bufio.Writer
	count     int
	done      chan error
}

func (s *Service) openPart(ctx context.Context, j *Job, typ string, part int) *partWriter {
	name := fmt.Sprintf("%s-%d-%d.ndjson", typ, part, j.Epoch)
	pr, pw := io.Pipe()
	w := &partWriter{name: name, typ: typ, pw: pw, bw: bufio.NewWriterSize(pw, 64<<10), done: make(chan error, 1)}
	go func() {
		_, err := s.st.Files().PutFile(ctx, dir(j.ID)+name, pr)
		pr.CloseWithError(err)
		w.done <- err
	}()
	return w
}

func (w *partWriter) size() int {
	if w == nil {
		return 0
	}
	return w.count
}

// write adds one resource as a line; its JSON is compacted so that it is
// one line.
func (w *partWriter) write(body []byte) error {
	if i := slices.Index(body, '\n'); i >= 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, body); err != nil {
			return err
		}
		body = buf.Bytes()
	}
	if _, err := w.bw.Write(body); err != nil {
		return err
	}
	if err := w.bw.WriteByte('\n'); err != nil {
		return err
	}
	w.count++
	return nil
}

// close stores the part and returns it.
func (w *partWriter) close() (File, error) {
	if err := w.bw.Flush(); err != nil {
		w.pw.CloseWithError(err)
		<-w.done
		return File{}, err
	}
	w.pw.Close()
	if err := <-w.done; err != nil {
		return File{}, fmt.Errorf("storing %s: %w", w.name, err)
	}
	return File{Type: w.typ, Name: w.name, Count: w.count}, nil
}

// abort drops the part: nothing of it is stored.
func (w *partWriter) abort(err error) {
	if w == nil {
		return
	}
	w.pw.CloseWithError(err)
	<-w.done
}

// writeNotes stores the OperationOutcome of a lenient kick-off's ignored
// parameters as the job's error file.
func (s *Service) writeNotes(ctx context.Context, j *Job, part int) (File, error) {
	w := s.openPart(ctx, j, "OperationOutcome", part)
	var issues []map[string]string
	for _, n := range j.Notes {
		issues = append(issues, map[string]string{"severity": "warning", "code": "not-supported", "diagnostics": n})
	}
	body, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": issues})
	if err := w.write(body); err != nil {
		w.abort(err)
		return File{}, err
	}
	return w.close()
}

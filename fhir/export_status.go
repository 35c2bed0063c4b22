package fhir

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/bulk"
)

// exportAPI is the REST side of bulk export: the service that runs the
// jobs, and when each job was last polled (per process: a client polling
// through several servers is throttled by each on its own).
type exportAPI struct {
	svc *bulk.Service

	mu     sync.Mutex
	polled map[string]time.Time
}

func (s *server) statusURL(r *http.Request, job string) string {
	return s.baseURL(r) + "/$export-poll-status?_jobId=" + url.QueryEscape(job)
}

func (s *server) fileURL(r *http.Request, job, name string) string {
	return s.baseURL(r) + "/$export-file?_jobId=" + url.QueryEscape(job) + "&file=" + url.QueryEscape(name)
}

// exportJob is the job the request names, when the caller may see it: its
// client and subject started it with a token that reached no more than the
// caller's (bulk.Service.Job).
func (s *server) exportJob(r *http.Request) (*bulk.Job, error) {
	if s.bulk == nil {
		return nil, errorf(http.StatusNotImplemented, "not-supported", "bulk export is not enabled on this server")
	}
	j, err := s.bulk.svc.Job(r.Context(), r.URL.Query().Get("_jobId"), principal(r))
	if errors.Is(err, bulk.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "not-found", "no such export job: it never existed, was deleted or has expired")
	}
	return j, err
}

// exportStatus serves the status URL: GET polls (202 while the job runs,
// 200 with the manifest once it is done, 500 when it failed), DELETE
// cancels or removes the job (202, and 404 from then on).
func (s *server) exportStatus(w http.ResponseWriter, r *http.Request) error {
	j, err := s.exportJob(r)
	if err != nil {
		return err
	}
	if r.Method == http.MethodDelete {
		if err := s.bulk.svc.Cancel(r.Context(), j.ID, principal(r)); err != nil {
			if errors.Is(err, bulk.ErrNotFound) {
				return errorf(http.StatusNotFound, "not-found", "no such export job")
			}
			return err
		}
		writeJSON(w, r, http.StatusAccepted, informational("export job %s deleted", j.ID))
		return nil
	}
	every := s.bulk.svc.RetryAfter()
	switch j.State {
	case bulk.Queued, bulk.Running:
		if s.bulk.tooSoon(j.ID, every) {
			w.Header().Set("Retry-After", retryAfter(every))
			return errorf(http.StatusTooManyRequests, "throttled", "polled too often: wait as Retry-After says")
		}
		w.Header().Set("X-Progress", j.Progress())
		w.Header().Set("Retry-After", retryAfter(every))
		w.WriteHeader(http.StatusAccepted)
		return nil
	case bulk.Failed:
		return errorf(http.StatusInternalServerError, "exception", "the export failed: %s", j.Failure)
	}
	type entry struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count,omitempty"`
	}
	out, errs := []entry{}, []entry{}
	for _, f := range j.Output {
		out = append(out, entry{Type: f.Type, URL: s.fileURL(r, j.ID, f.Name), Count: f.Count})
	}
	for _, f := range j.Errors {
		errs = append(errs, entry{Type: f.Type, URL: s.fileURL(r, j.ID, f.Name)})
	}
	manifest := map[string]any{
		"transactionTime":     j.TransactionTime.UTC().Format(bulk.InstantLayout),
		"request":             j.Request,
		"requiresAccessToken": true,
		"output":              out,
		"error":               errs,
	}
	w.Header().Set("Expires", j.Expires.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return writeManifest(w, manifest)
}

// tooSoon records a poll of job and reports whether it came sooner than
// half the interval the client was told.
func (e *exportAPI) tooSoon(job string, every time.Duration) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if e.polled == nil || len(e.polled) > 10_000 {
		e.polled = map[string]time.Time{}
	}
	last, ok := e.polled[job]
	if ok && now.Sub(last) < every/2 {
		return true
	}
	e.polled[job] = now
	return false
}

// exportFile serves one output file of a completed job, streamed.
func (s *server) exportFile(w http.ResponseWriter, r *http.Request) error {
	j, err := s.exportJob(r)
	if err != nil {
		return err
	}
	rc, err := s.bulk.svc.Open(r.Context(), j.ID, principal(r), r.URL.Query().Get("file"))
	if errors.Is(err, bulk.ErrNotFound) {
		return errorf(http.StatusNotFound, "not-found", "no such export file")
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.WarnContext(r.Context(), "export file download interrupted", "job", j.ID, "err", err)
	}
	return nil
}

// writeManifest writes the completion manifest (URLs carry &, unescaped).
func writeManifest(w io.Writer, m map[string]any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(m)
	return nil
}

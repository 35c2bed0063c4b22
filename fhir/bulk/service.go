package bulk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/store"
)

// Defaults of Config.
const (
	DefaultWorkers    = 2
	DefaultPartSize   = 100_000
	DefaultLease      = 30 * time.Second
	DefaultExpiry     = 24 * time.Hour
	DefaultMaxActive  = 2
	DefaultRetryAfter = 2 * time.Second
)

// Config holds a Service's dependencies and settings; zero values mean the
// defaults.
type Config struct {
	Store store.Store
	// Guard rebuilds each job's principal from the claims it stored and
	// decides every query the job makes. Required.
	Guard *authz.Guard
	// Registry is where the worker checks, before each checkpoint, that
	// the job's client is still active; nil means the store's.
	Registry *registry.Registry
	Logger   *slog.Logger
	// Workers is how many workers Start runs in this process.
	Workers int
	// PartSize is the most resources one output file holds.
	PartSize int
	// Lease is how long a claim lasts without a heartbeat; a job whose
	// worker stopped renewing it is taken over after that.
	Lease time.Duration
	// Expiry is how long a finished job's output stays.
	Expiry time.Duration
	// MaxActive bounds the queued and running jobs of one client.
	MaxActive int
	// RetryAfter is the polling interval told to clients.
	RetryAfter time.Duration
	// Poll is how often an idle worker looks for work (default a quarter
	// of Lease, at most a second).
	Poll time.Duration
	// AfterPage, a test hook, is called by a worker after each page it
	// exports (pages counted per claim); when it returns true the worker
	// stops at once, as if its process died: its part in progress is not
	// stored and its lease is not released.
	AfterPage func(job string, page int) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service runs exports. It is safe for concurrent use.
type Service struct {
	cfg  Config
	st   store.Store
	jobs jobs
	reg  *registry.Registry
	log  *slog.Logger
	now  func() time.Time
	id   string
}

// New returns a Service; Start runs its workers.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Guard == nil {
		return nil, errors.New("bulk: Store and Guard are required")
	}
	if cfg.Workers < 0 {
		cfg.Workers = 0
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Poll <= 0 {
		cfg.Poll = min(cfg.Lease/4, time.Second)
	}
	s := &Service{cfg: cfg, st: cfg.Store, jobs: jobs{cfg.Store.Collection(jobsDef)}, reg: cfg.Registry, log: cfg.Logger, now: cfg.Now}
	if s.reg == nil {
		s.reg = registry.New(cfg.Store, registry.Options{})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	host, _ := os.Hostname()
	s.id = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:8])
	return s, nil
}

// RetryAfter is the polling interval clients are told.
func (s *Service) RetryAfter() time.Duration { return s.cfg.RetryAfter }

// ErrTooMany is Submit's error when the client has as many queued and
// running jobs as it may.
var ErrTooMany = errors.New("too many export jobs in progress")

// ErrNotFound is the error for a job that does not exist, is not the
// caller's, was canceled or has expired.
var ErrNotFound = errors.New("no such export job")

// Submit queues an export for the token with claims c. The job's
// transaction time is now.
func (s *Service) Submit(ctx context.Context, c *token.AccessClaims, spec Spec, request string, notes []string) (*Job, error) {
	if n, err := s.active(ctx, c.ClientID, ""); err != nil {
		return nil, err
	} else if n >= s.cfg.MaxActive {
		return nil, fmt.Errorf("%w: client %s has %d (at most %d)", ErrTooMany, c.ClientID, n, s.cfg.MaxActive)
	}
	// Stores stamp versions in whole milliseconds of the wall clock: the
	// transaction time is the next millisecond, waited for, so that what
	// was written before the kick-off is before it and what is written
	// after the answer is not.
	now := s.now().UTC()
	t := now.Truncate(time.Millisecond).Add(time.Millisecond)
	if s.cfg.Now == nil {
		time.Sleep(time.Until(t))
	}
	j := &Job{
		ID: newID(), State: Queued, Client: c.ClientID, Subject: c.Subject, Claims: *c, Spec: spec,
		TransactionTime: t, Request: request, Notes: notes, Created: now,
	}
	if err := s.jobs.create(ctx, j); err != nil {
		return nil, err
	}
	// Concurrent kick-offs all pass the count above. Counted again once
	// stored, every job created before this one is seen: this one stays
	// only if the others leave room (when several race, all may go).
	n, err := s.active(ctx, c.ClientID, j.ID)
	if err == nil && n < s.cfg.MaxActive {
		return j, nil
	}
	if derr := s.drop(context.WithoutCancel(ctx), j.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
		s.log.Warn("bulk: withdrawing a job over its client's limit", "job", j.ID, "err", derr)
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: client %s has %d (at most %d)", ErrTooMany, c.ClientID, n, s.cfg.MaxActive)
}

// active counts the queued and running jobs of client but except.
func (s *Service) active(ctx context.Context, client, except string) (int, error) {
	js, err := s.jobs.find(ctx, "client", client)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range js {
		if j.Active() && j.ID != except {
			n++
		}
	}
	return n, nil
}

// Job returns a job p may see: one its client and subject started, with
// a token that reached no more than p does (see reaches). ErrNotFound for
// one that does not exist, belongs to another, reached more than p, was
// canceled or has expired.
func (s *Service) Job(ctx context.Context, id string, p *authz.Principal) (*Job, error) {
	if !validJobID(id) {
		return nil, ErrNotFound
	}
	j, err := s.jobs.get(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrNotFound
	case err != nil:
		return nil, err
	case j.Client != p.Claims.ClientID || j.Subject != p.Claims.Subject || j.State == Canceled,
		!j.Expires.IsZero() && !s.now().Before(j.Expires):
		return nil, ErrNotFound
	}
	if ok, err := s.reaches(p, j); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNotFound
	}
	return j, nil
}

// validJobID reports whether id is of the form newID makes: anything else
// is no job, and goes to no store.
func validJobID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Cancel deletes a job p may see (see Job): a finished or queued one at
// once with its files, a running one once its worker notices (it is
// ErrNotFound to the client from now on).
func (s *Service) Cancel(ctx context.Context, id string, p *authz.Principal) error {
	if _, err := s.Job(ctx, id, p); err != nil {
		return err
	}
	return s.drop(ctx, id)
}

// drop deletes job id: a finished or queued one at once with its files, a
// running one once its worker notices.
func (s *Service) drop(ctx context.Context, id string) error {
	for {
		j, err := s.jobs.get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if j.State == Canceled {
			return ErrNotFound
		}
		if j.State == Running {
			j.State = Canceled
			err := s.jobs.update(ctx, j)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return err
		}
		err = s.jobs.c.Delete(ctx, id, j.Rev)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		_, err = s.st.Files().DeleteFiles(ctx, dir(id))
		return err
	}
}

// Open streams one output or error file of a completed job p may see (see
// Job); ErrNotFound when there is none.
func (s *Service) Open(ctx context.Context, id string, p *authz.Principal, name string) (io.ReadCloser, error) {
	j, err := s.Job(ctx, id, p)
	if err != nil {
		return nil, err
	}
	if _, ok := j.HasFile(name); j.State != Completed || !ok {
		return nil, ErrNotFound
	}
	rc, _, err := s.st.Files().OpenFile(ctx, dir(id)+name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return rc, err
}

// Progress describes a job in progress for X-Progress.
func (j *Job) Progress() string {
	switch {
	case j.State == Queued:
		return "queued"
	case j.Pos.Type < len(j.Spec.Types):
		return fmt.Sprintf("exporting %s (type %d of %d), %d resources written", j.Spec.Types[j.Pos.Type], j.Pos.Type+1, len(j.Spec.Types), j.Exported)
	}
	return fmt.Sprintf("finishing, %d resources written", j.Exported)
}

// sortOldest orders jobs by creation.
func sortOldest(js []*Job) {
	slices.SortFunc(js, func(a, b *Job) int { return a.Created.Compare(b.Created) })
}

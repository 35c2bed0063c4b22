package bulk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Start runs the Service's workers and its sweeper until ctx ends; the
// returned function waits for them to stop.
func (s *Service) Start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for i := range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, fmt.Sprintf("%s/w%d", s.id, i+1))
		}()
	}
	if s.cfg.Workers > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sweepLoop(ctx)
		}()
	}
	return wg.Wait
}

// errKilled is how a worker stopped by the AfterPage hook ends.
var errKilled = errors.New("bulk worker stopped by the test hook")

// work is one worker: it claims a job, runs it, and looks for the next.
func (s *Service) work(ctx context.Context, owner string) {
	for ctx.Err() == nil {
		j, err := s.claim(ctx, owner)
		if err != nil && ctx.Err() == nil {
			s.log.Error("bulk: looking for jobs", "err", err)
		}
		if j == nil {
			select {
			case <-ctx.Done():
			case <-time.After(s.cfg.Poll):
			}
			continue
		}
		if errors.Is(s.run(ctx, owner, j), errKilled) {
			return
		}
	}
}

// claim takes the oldest queued job, or a running one whose lease ran out,
// by compare-and-set; nil when there is none.
func (s *Service) claim(ctx context.Context, owner string) (*Job, error) {
	now := s.now()
	for _, state := range []string{Queued, Running} {
		js, err := s.jobs.find(ctx, "state", state)
		if err != nil {
			return nil, err
		}
		sortOldest(js)
		for _, j := range js {
			if state == Running && now.Before(j.Until) {
				continue
			}
			if state == Running {
				s.log.Info("bulk: taking over a job whose lease expired", "job", j.ID, "from", j.Owner, "by", owner)
			}
			j.State, j.Owner, j.Until = Running, owner, now.Add(s.cfg.Lease)
			j.Epoch++
			err := s.jobs.update(ctx, j)
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			return j, nil
		}
	}
	return nil, nil
}

// lease is a claimed job as its worker holds it: the last stored
// version, shared by the export and the heartbeat.
type lease struct {
	s     *Service
	owner string
	mu    sync.Mutex
	job   *Job
	// lost ends the export when the job is canceled or taken over.
	lost context.CancelCauseFunc
}

var (
	errCanceled = errors.New("export canceled by its client")
	errLost     = errors.New("lease lost to another worker")
)

// store writes change(job) under the lease: on a concurrent change it
// reloads the job, and gives up (canceling the export) when the job is no
// longer this worker's to run.
func (l *lease) store(ctx context.Context, change func(*Job)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		j := *l.job
		change(&j)
		err := l.s.jobs.update(ctx, &j)
		if err == nil {
			l.job = &j
			return nil
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		cur, gerr := l.s.jobs.get(ctx, l.job.ID)
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			l.lost(errCanceled)
			return errCanceled
		case gerr != nil:
			return gerr
		case cur.State == Canceled:
			l.job = cur
			l.lost(errCanceled)
			return errCanceled
		case cur.Owner != l.owner || cur.State != Running:
			l.lost(errLost)
			return errLost
		}
		l.job = cur
	}
}

// heartbeat renews the lease every third of its length until ctx ends.
func (l *lease) heartbeat(ctx context.Context, id string) {
	t := time.NewTicker(l.s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := l.store(ctx, func(j *Job) { j.Until = l.s.now().Add(l.s.cfg.Lease) })
		if err != nil && ctx.Err() == nil && !errors.Is(err, errCanceled) && !errors.Is(err, errLost) {
			l.s.log.Warn("bulk: heartbeat failed", "job", id, "err", err)
		}
	}
}

// run exports a claimed job to its end (or failure, cancellation, loss of
// its lease); it returns errKilled when the test hook stopped it.
func (s *Service) run(ctx context.Context, owner string, j *Job) (err error) {
	// A defect met by one export fails that export, not the server.
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("bulk: export panicked", "job", j.ID, "panic", p)
			s.jobs.change(context.WithoutCancel(ctx), j.ID, func(cur *Job) (bool, error) {
				if cur.Owner != owner || cur.State != Running {
					return false, nil
				}
				cur.State, cur.Failure, cur.Owner, cur.Until = Failed, "internal error", "", time.Time{}
				cur.Output, cur.Expires = nil, s.now().Add(s.cfg.Expiry)
				return true, nil
			})
			err = nil
		}
	}()
	ctx, lost := context.WithCancelCause(ctx)
	defer lost(nil)
	l := &lease{s: s, owner: owner, job: j, lost: lost}
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go l.heartbeat(hbCtx, j.ID)

	err = s.export(ctx, l)
	stopHB()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	bg := context.WithoutCancel(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errKilled):
		return err
	case errors.Is(err, errCanceled):
		s.remove(bg, l.job)
		return nil
	case errors.Is(err, errLost), ctx.Err() != nil:
		// Another worker has it, or this process is stopping: the lease
		// runs out and another worker resumes from the last checkpoint.
		return nil
	}
	s.log.Warn("bulk: export failed", "job", j.ID, "err", err)
	reason := err.Error()
	var fe *failure
	if !errors.As(err, &fe) {
		reason = "internal error"
	}
	if serr := l.store(bg, func(j *Job) {
		j.State, j.Failure, j.Owner, j.Until = Failed, reason, "", time.Time{}
		j.Output, j.Errors = nil, nil
		j.Expires = s.now().Add(s.cfg.Expiry)
	}); serr == nil {
		s.st.Files().DeleteFiles(bg, dir(j.ID))
	}
	return nil
}

// failure is an export failure whose reason the client may read.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func failf(format string, args ...any) error { return &failure{fmt.Sprintf(format, args...)} }

// remove deletes a job and its files.
func (s *Service) remove(ctx context.Context, j *Job) {
	if _, err := s.st.Files().DeleteFiles(ctx, dir(j.ID)); err != nil {
		s.log.Warn("bulk: removing files", "job", j.ID, "err", err)
		return
	}
	if err := s.jobs.c.Delete(ctx, j.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Warn("bulk: removing job", "job", j.ID, "err", err)
	}
}

// sweepLoop runs Sweep regularly.
func (s *Service) sweepLoop(ctx context.Context) {
	every := min(max(s.cfg.Expiry/4, time.Second), time.Minute)
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("bulk: sweeping expired exports", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Sweep removes finished jobs past their expiry, canceled jobs no worker
// holds any more, and files no job owns (left by jobs removed otherwise).
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	for _, state := range []string{Completed, Failed, Canceled} {
		js, err := s.jobs.find(ctx, "state", state)
		if err != nil {
			return err
		}
		for _, j := range js {
			expired := state != Canceled && !now.Before(j.Expires)
			abandoned := state == Canceled && !now.Before(j.Until)
			if expired || abandoned {
				s.remove(ctx, j)
			}
		}
	}
	files, err := s.st.Files().ListFiles(ctx, "export/")
	if err != nil {
		return err
	}
	checked := map[string]bool{}
	for _, f := range files {
		id, _, ok := strings.Cut(strings.TrimPrefix(f.Name, "export/"), "/")
		if !ok || checked[id] {
			continue
		}
		checked[id] = true
		if _, err := s.jobs.get(ctx, id); errors.Is(err, store.ErrNotFound) {
			s.st.Files().DeleteFiles(ctx, dir(id))
		}
	}
	return nil
}

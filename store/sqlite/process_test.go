package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

const (
	childRoleEnv = "FHIRGRAPH_SQLITE_TEST_CHILD"
	childDirEnv  = "FHIRGRAPH_SQLITE_TEST_DIR"

	roleCrash  = "crash"  // write until killed, printing each acknowledged id
	roleWriter = "writer" // write a fixed amount alongside the parent, then exit
)

// sharedIncrements is how many If-Match updates of the shared counter each
// process makes in the two-process test.
const (
	sharedIncrements = 40
	writerResources  = 300
)

// child is the body of the re-executed test binary.
func child(role, dir string) int {
	s, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 2
	}
	defer s.Close()
	switch role {
	case roleCrash:
		err = crashChild(s)
	case roleWriter:
		err = writerChild(s)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// crashChild writes batches forever; a line "ok <id>" is printed only after
// the Apply holding that id returned.
func crashChild(s *Store) error {
	out := bufio.NewWriter(os.Stdout)
	for batch := 0; ; batch++ {
		var writes []store.Write
		for i := range 1 + batch%7 {
			id := fmt.Sprintf("b%d-%d", batch, i)
			writes = append(writes, testWrite(store.OpCreate, "Observation", id, fmt.Sprintf(`{"resourceType":"Observation","id":%q}`, id)))
		}
		if _, err := s.Apply(context.Background(), writes); err != nil {
			return err
		}
		for _, w := range writes {
			fmt.Fprintln(out, "ok", w.ID)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

func writerChild(s *Store) error {
	return writeAlongside(s, "child")
}

// writeAlongside is what each process does in the two-process test: its own
// resources and records, and If-Match increments of one shared resource.
func writeAlongside(s *Store, who string) error {
	ctx := context.Background()
	if err := meet(ctx, s, who); err != nil {
		return err
	}
	coll := s.Collection(store.CollectionDef{Name: "tokens", Keys: []string{"owner"}})
	increments := 0
	other := map[string]string{"parent": "child", "child": "parent"}[who]
	for i := range writerResources {
		if i == writerResources/2 {
			// Halfway, wait for the other's first write: the two streams of
			// writes then interleave however the processes are scheduled.
			if err := waitFor(ctx, s, other+"-0"); err != nil {
				return err
			}
		}
		id := fmt.Sprintf("%s-%d", who, i)
		if _, err := s.Apply(ctx, []store.Write{testWrite(store.OpCreate, "Patient", id, `{"resourceType":"Patient"}`)}); err != nil {
			return fmt.Errorf("create %s: %w", id, err)
		}
		if i%10 == 0 {
			if _, err := coll.Create(ctx, store.Record{ID: id, Data: []byte(fmt.Sprintf(`{"owner":%q}`, who))}); err != nil {
				return fmt.Errorf("record %s: %w", id, err)
			}
		}
		if increments < sharedIncrements && i%3 == 0 {
			ok, err := increment(ctx, s, who)
			if err != nil {
				return err
			}
			if ok {
				increments++
			}
		}
	}
	for increments < sharedIncrements {
		ok, err := increment(ctx, s, who)
		if err != nil {
			return err
		}
		if ok {
			increments++
		}
	}
	return nil
}

// meet announces who is ready and waits for the other process, so that
// both write at the same time.
func meet(ctx context.Context, s *Store, who string) error {
	ready := s.Collection(store.CollectionDef{Name: "ready"})
	if _, err := ready.Create(ctx, store.Record{ID: who, Data: []byte(`{}`)}); err != nil {
		return err
	}
	other := map[string]string{"parent": "child", "child": "parent"}[who]
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		_, err := ready.Get(ctx, other)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) || time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", other, err)
		}
	}
}

func waitFor(ctx context.Context, s *Store, id string) error {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		_, err := s.Read(ctx, "Patient", id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) || time.Now().After(deadline) {
			return fmt.Errorf("waiting for Patient/%s: %w", id, err)
		}
	}
}

// increment tries one If-Match update of Basic/shared, creating it first if
// needed; ok is false when another writer got there first.
func increment(ctx context.Context, s *Store, who string) (ok bool, err error) {
	cur, err := s.Read(ctx, "Basic", "shared")
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.Apply(ctx, []store.Write{testWrite(store.OpCreate, "Basic", "shared", `{}`)})
		if errors.Is(err, store.ErrExists) {
			return false, nil
		}
		return false, err
	}
	if err != nil {
		return false, err
	}
	w := testWrite(store.OpUpdate, "Basic", "shared", fmt.Sprintf(`{"by":%q}`, who))
	w.IfMatch = cur.VersionID
	_, err = s.Apply(ctx, []store.Write{w})
	if errors.Is(err, store.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

func childCmd(t *testing.T, role, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestCrashKeepsAcknowledgedWrites kills a writing process with SIGKILL and
// checks that every write it had been told was committed is there: with
// WAL and synchronous=NORMAL a commit is in the OS's hands once Apply
// returns, so only a power loss could take it back.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := childCmd(t, roleCrash, dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that stops writing must not hang the test run.
	watchdog := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	var acked []string
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "ok ")
		if !ok {
			t.Fatalf("child said %q", sc.Text())
		}
		acked = append(acked, id)
		if len(acked) >= 1000 && !killed {
			// Kill mid-stream: the child is between Apply calls or inside one.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child stopped by itself after %d writes: %v", len(acked), werr)
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed", werr)
	}

	s := openTest(t, dir, Options{})
	ctx := context.Background()
	for _, id := range acked {
		if _, err := s.Read(ctx, "Observation", id); err != nil {
			t.Fatalf("acknowledged Observation/%s lost: %v", id, err)
		}
	}
	n, err := s.Count(ctx, "Observation")
	if err != nil || n < len(acked) {
		t.Errorf("Count = %d, %v; want at least the %d acknowledged", n, err, len(acked))
	}
	// The count matches the rows: no half-applied batch.
	var rows int
	s.r.QueryRow("SELECT count(*) FROM resources WHERE type = 'Observation'").Scan(&rows)
	if rows != n {
		t.Errorf("counts table says %d, resources table has %d", n, rows)
	}
	checkIntegrity(t, s.Path())
	t.Logf("%d acknowledged writes, %d stored", len(acked), n)
}

// TestTwoProcesses has another process write to the same directory while
// this one writes too, including racing If-Match updates on one resource.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	cmd := childCmd(t, roleWriter, dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var childErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		childErr = cmd.Wait()
	}()
	parentErr := writeAlongside(s, "parent")
	wg.Wait()
	if parentErr != nil {
		t.Fatalf("parent: %v", parentErr)
	}
	if childErr != nil {
		t.Fatalf("child: %v", childErr)
	}

	ctx := context.Background()
	if n, err := s.Count(ctx, "Patient"); err != nil || n != 2*writerResources {
		t.Errorf("Count(Patient) = %d, %v; want %d", n, err, 2*writerResources)
	}
	shared, err := s.Read(ctx, "Basic", "shared")
	if err != nil || shared.VersionID != 2*sharedIncrements+1 {
		t.Errorf("shared resource at version %d (%v), want %d: an update was lost", shared.VersionID, err, 2*sharedIncrements+1)
	}
	for _, who := range []string{"parent", "child"} {
		rs, err := s.Collection(store.CollectionDef{Name: "tokens", Keys: []string{"owner"}}).Find(ctx, "owner", who)
		if err != nil || len(rs) != writerResources/10 {
			t.Errorf("records of %s = %d, %v; want %d", who, len(rs), err, writerResources/10)
		}
	}
	// The history is one sequence: every version once, newest first.
	var all []store.Resource
	q := store.HistoryQuery{Count: 97}
	for {
		p, err := s.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Versions...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if want := 2*writerResources + 2*sharedIncrements + 1; len(all) != want {
		t.Errorf("system history has %d versions, want %d", len(all), want)
	}
	switches, prev := 0, ""
	for i, v := range all {
		if v.Type == "Patient" {
			owner, _, _ := strings.Cut(v.ID, "-")
			if prev != "" && owner != prev {
				switches++
			}
			prev = owner
		}
		if i > 0 && all[i].LastUpdated.After(all[i-1].LastUpdated) {
			t.Fatalf("history out of order at %d: %v after %v", i, all[i].LastUpdated, all[i-1].LastUpdated)
		}
	}
	// Both processes wrote at once: their creates interleave.
	if switches < 2 {
		t.Error("the processes' writes did not interleave")
	}
	t.Logf("writes switched between the processes %d times", switches)
	checkIntegrity(t, s.Path())
}

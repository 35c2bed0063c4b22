package sqlite

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// temporaries lists the temporaries under the file area.
func temporaries(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func TestFilesLayout(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := context.Background()
	f := s.Files()
	if _, err := f.PutFile(ctx, "export/J1/Patient.ndjson", strings.NewReader("{}\n")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FilesDir, "export", "J1", "Patient.ndjson"))
	if err != nil || string(b) != "{}\n" {
		t.Fatalf("file on disk = %q, %v", b, err)
	}
	if got := temporaries(t, filepath.Join(dir, FilesDir)); len(got) != 0 {
		t.Errorf("temporaries left after a write: %v", got)
	}
	// Deleting the last file of a folder removes the folders it empties,
	// up to the file area.
	if _, err := f.PutFile(ctx, "other", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if n, err := f.DeleteFiles(ctx, "export/J1/"); n != 1 || err != nil {
		t.Fatalf("DeleteFiles = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, FilesDir, "export")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("emptied folder export left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FilesDir, "other")); err != nil {
		t.Errorf("other file: %v", err)
	}
}

type failing struct{ n int }

func (r *failing) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("broken")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func TestFilesFailedPutsLeaveNoTemporary(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	f := s.Files()
	if _, err := f.PutFile(context.Background(), "a/b", &failing{n: 1 << 20}); err == nil {
		t.Fatal("PutFile of a failing reader succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := io.MultiReader(strings.NewReader("some"), readFunc(func([]byte) (int, error) { cancel(); return 0, io.EOF }), strings.NewReader("more"))
	if _, err := f.PutFile(ctx, "a/c", r); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled PutFile = %v", err)
	}
	if got := temporaries(t, filepath.Join(dir, FilesDir)); len(got) != 0 {
		t.Errorf("temporaries left after failed writes: %v", got)
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// TestFilesStaleTemporaries: what a killed writer left is invisible, and
// removed once an hour old: by the first use of the file area in a
// process, and by listings and deletions that pass by. A temporary being
// written stays.
func TestFilesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, FilesDir)
	old := time.Now().Add(-2 * staleAfter)
	mk := func(path string, stale bool) string {
		t.Helper()
		path = filepath.Join(root, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		if stale {
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	exists := func(path string) bool { _, err := os.Lstat(path); return err == nil }

	deadAtOpen := mk("far/away/"+tempPrefix+"1", true)
	s := openTest(t, dir, Options{})
	f := s.Files()
	ctx := context.Background()
	if _, err := f.PutFile(ctx, "export/J/a", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if exists(deadAtOpen) {
		t.Error("first use left a stale temporary")
	}
	dead, live := mk("export/J/"+tempPrefix+"2", true), mk("export/J/"+tempPrefix+"3", false)
	got, err := f.ListFiles(ctx, "export/")
	if err != nil || len(got) != 1 || got[0].Name != "export/J/a" {
		t.Fatalf("ListFiles = %v, %v; want export/J/a alone", got, err)
	}
	if exists(dead) || !exists(live) {
		t.Errorf("after a listing: stale temporary there %v (want false), fresh one there %v (want true)", exists(dead), exists(live))
	}
	if _, _, err := f.OpenFile(ctx, "export/J/"+tempPrefix+"3"); err == nil {
		t.Error("OpenFile opened a temporary")
	}
	dead = mk("export/J/"+tempPrefix+"4", true)
	if n, err := f.DeleteFiles(ctx, "export/"); n != 1 || err != nil {
		t.Fatalf("DeleteFiles = %d, %v; want 1", n, err)
	}
	if exists(dead) || !exists(live) {
		t.Errorf("after a deletion: stale temporary there %v (want false), fresh one there %v (want true)", exists(dead), exists(live))
	}
}

package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

func runFiles(t *testing.T, open func(t *testing.T) store.Store) {
	runAll(t, open, []test{
		{"RoundTrip", testFilesRoundTrip},
		{"StreamsLargeFile", testFilesStreamsLarge},
		{"PutExisting", testFilesPutExisting},
		{"ConcurrentPuts", testFilesConcurrentPuts},
		{"NameAndFolder", testFilesNameAndFolder},
		{"OpenMissing", testFilesOpenMissing},
		{"InvalidNames", testFilesInvalidNames},
		{"ListByPrefix", testFilesList},
		{"DeleteByPrefix", testFilesDelete},
		{"FailingReader", testFilesFailingReader},
		{"CanceledContext", testFilesCanceled},
	})
}

// gen yields size pseudo-random bytes determined by seed, without holding
// them: what a test puts can be compared with what it reads back by
// generating it again.
type gen struct {
	x    uint64
	left int64
}

func newGen(seed uint64, size int64) *gen { return &gen{x: seed*0x9E3779B97F4A7C15 + 1, left: size} }

func (g *gen) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := range p {
		g.x ^= g.x << 13
		g.x ^= g.x >> 7
		g.x ^= g.x << 17
		p[i] = byte(g.x >> 32)
	}
	g.left -= int64(len(p))
	return len(p), nil
}

// hook calls at once the total read reaches at, then goes on reading.
type hook struct {
	r    io.Reader
	read int64
	at   int64
	fn   func() error
	done bool
}

func (h *hook) Read(p []byte) (int, error) {
	if !h.done && h.read >= h.at {
		h.done = true
		if err := h.fn(); err != nil {
			return 0, err
		}
	}
	n, err := h.r.Read(p[:int(min(int64(len(p)), max(h.at-h.read, 1<<20)))])
	h.read += int64(n)
	return n, err
}

func putFile(t *testing.T, f store.Files, name string, r io.Reader) int64 {
	t.Helper()
	n, err := f.PutFile(context.Background(), name, r)
	if err != nil {
		t.Fatalf("PutFile %s: %v", name, err)
	}
	return n
}

func putString(t *testing.T, f store.Files, name, content string) {
	t.Helper()
	if n := putFile(t, f, name, strings.NewReader(content)); n != int64(len(content)) {
		t.Fatalf("PutFile %s = %d bytes, want %d", name, n, len(content))
	}
}

// checkFile reads a file back and compares it, as it streams, with want.
func checkFile(t *testing.T, f store.Files, name string, want io.Reader, size int64) {
	t.Helper()
	rc, info, err := f.OpenFile(context.Background(), name)
	if err != nil {
		t.Fatalf("OpenFile %s: %v", name, err)
	}
	defer rc.Close()
	if info.Name != name || info.Size != size {
		t.Errorf("OpenFile %s info = %s, %d bytes; want %s, %d bytes", name, info.Name, info.Size, name, size)
	}
	if info.Created.IsZero() || time.Since(info.Created) > time.Hour || time.Until(info.Created) > time.Minute {
		t.Errorf("OpenFile %s: Created = %v, want about now", name, info.Created)
	}
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	var off int64
	for {
		n, err := io.ReadFull(rc, got)
		m, _ := io.ReadFull(want, exp[:n])
		if m != n || !bytes.Equal(got[:n], exp[:n]) {
			t.Fatalf("file %s differs from what was put within bytes %d-%d", name, off, off+int64(n))
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s at %d: %v", name, off, err)
		}
	}
	if off != size {
		t.Fatalf("read %d bytes of %s, want %d", off, name, size)
	}
	if m, _ := want.Read(exp[:1]); m != 0 {
		t.Fatalf("file %s ends early, at %d", name, off)
	}
}

func testFilesRoundTrip(t *testing.T, s store.Store) {
	f := s.Files()
	for i, size := range []int64{0, 1, 100, 255 << 10, 3<<20 + 12345} {
		name := fmt.Sprintf("export/job-1/Patient.%d.ndjson", i)
		if n := putFile(t, f, name, newGen(uint64(i), size)); n != size {
			t.Errorf("PutFile %s = %d, want %d", name, n, size)
		}
		checkFile(t, f, name, newGen(uint64(i), size), size)
	}
}

// testFilesStreamsLarge puts 20 MiB from a reader that makes them as it
// goes, and samples the live heap while PutFile reads: an engine that
// gathered the file in memory before storing it would hold most of it at
// the last samples.
func testFilesStreamsLarge(t *testing.T, s store.Store) {
	const size = 20 << 20
	f := s.Files()
	putString(t, f, "warm/up", "x") // first-use work (indexes, folders) out of the way
	live := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := live()
	var peak int64
	r := io.Reader(newGen(7, size))
	for at := int64(2 << 20); at < size; at += 2 << 20 {
		r = &hook{r: r, at: at, fn: func() error { peak = max(peak, live()-base); return nil }}
	}
	if n := putFile(t, f, "big/file.ndjson", r); n != size {
		t.Fatalf("PutFile = %d, want %d", n, size)
	}
	t.Logf("live heap grew by at most %.1f MiB while PutFile read 20 MiB", float64(peak)/(1<<20))
	if peak > 12<<20 {
		t.Errorf("live heap grew by %.1f MiB while PutFile read 20 MiB: it should stream", float64(peak)/(1<<20))
	}
	checkFile(t, f, "big/file.ndjson", newGen(7, size), size)
}

func testFilesPutExisting(t *testing.T, s store.Store) {
	f := s.Files()
	putString(t, f, "a/one", "first")
	_, err := f.PutFile(context.Background(), "a/one", strings.NewReader("second, longer"))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second PutFile = %v, want ErrExists", err)
	}
	checkFile(t, f, "a/one", strings.NewReader("first"), 5)
}

func testFilesConcurrentPuts(t *testing.T, s store.Store) {
	f := s.Files()
	const writers = 4
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.PutFile(context.Background(), "race/file", newGen(uint64(i), 600<<10))
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("writers %d and %d both put race/file", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("writer %d: %v, want nil or ErrExists", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer put race/file")
	}
	checkFile(t, f, "race/file", newGen(uint64(won), 600<<10), 600<<10)
}

// testFilesNameAndFolder: as on a file system, a name cannot also be the
// folder of others.
func testFilesNameAndFolder(t *testing.T, s store.Store) {
	f := s.Files()
	putString(t, f, "x/file", "a file")
	putString(t, f, "y/folder/file", "a file in a folder")
	for _, name := range []string{"x/file/below", "y/folder", "y"} {
		if _, err := f.PutFile(context.Background(), name, strings.NewReader("clash")); !errors.Is(err, store.ErrExists) {
			t.Errorf("PutFile %s = %v, want ErrExists", name, err)
		}
	}
	putString(t, f, "x/file.2", "beside")
	putString(t, f, "y/folder2", "beside")
	checkList(t, f, "", "x/file", "x/file.2", "y/folder/file", "y/folder2")
}

func testFilesOpenMissing(t *testing.T, s store.Store) {
	f := s.Files()
	putString(t, f, "dir/file", "content")
	for _, name := range []string{"nothing", "dir", "dir/file/below", "dir/fil", "Dir/file"} {
		if _, _, err := f.OpenFile(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OpenFile %s = %v, want ErrNotFound", name, err)
		}
	}
}

func testFilesInvalidNames(t *testing.T, s store.Store) {
	f := s.Files()
	ctx := context.Background()
	bad := []string{
		"", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a/..", "a b", "a\\b", "a:b",
		"é", "a~b", "a\x00", strings.Repeat("a", 256), strings.Repeat("abcdefg/", 64) + "x",
	}
	for _, name := range bad {
		if _, err := f.PutFile(ctx, name, strings.NewReader("x")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutFile %q = %v, want ErrInvalid", name, err)
		}
		if _, _, err := f.OpenFile(ctx, name); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("OpenFile %q = %v, want ErrInvalid", name, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../", "a b", "a~", strings.Repeat("a", 513)} {
		if _, err := f.ListFiles(ctx, prefix); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ListFiles %q = %v, want ErrInvalid", prefix, err)
		}
		if _, err := f.DeleteFiles(ctx, prefix); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("DeleteFiles %q = %v, want ErrInvalid", prefix, err)
		}
	}
	good := []string{"single", "A-Z_0.9", "a/b/c", ".hidden", "..x", "a/...", strings.Repeat("a", 255), strings.Repeat("abcdefg/", 63) + "12345678"}
	for _, name := range good {
		putString(t, f, name, "ok")
	}
	for _, prefix := range []string{"", "a", "a/", "a/b/c", "a/.", "a/..", ".", ".."} {
		if _, err := f.ListFiles(ctx, prefix); err != nil {
			t.Errorf("ListFiles %q: %v", prefix, err)
		}
	}
	checkList(t, f, "a/.", "a/...")
	checkList(t, f, "..", "..x")
}

func checkList(t *testing.T, f store.Files, prefix string, want ...string) []store.FileInfo {
	t.Helper()
	got, err := f.ListFiles(context.Background(), prefix)
	if err != nil {
		t.Fatalf("ListFiles %q: %v", prefix, err)
	}
	names := make([]string, len(got))
	for i, fi := range got {
		names[i] = fi.Name
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("ListFiles %q = %q, want %q", prefix, names, want)
	}
	return got
}

func testFilesList(t *testing.T, s store.Store) {
	f := s.Files()
	checkList(t, f, "")
	// Put out of order; '.' sorts before '/', which sorts before digits.
	files := map[string]string{
		"export/J1/Patient.1.ndjson":     "p1",
		"export/J1/Observation.1.ndjson": "obs 1",
		"export/J1/Observation.2.ndjson": "obs 22",
		"export/J10/Patient.1.ndjson":    "j10",
		"export/J1.x":                    "dot",
		"other/J1/Patient.1.ndjson":      "other",
	}
	for _, name := range []string{"export/J1/Patient.1.ndjson", "other/J1/Patient.1.ndjson", "export/J10/Patient.1.ndjson",
		"export/J1/Observation.2.ndjson", "export/J1.x", "export/J1/Observation.1.ndjson"} {
		putString(t, f, name, files[name])
	}
	got := checkList(t, f, "export/J1/", "export/J1/Observation.1.ndjson", "export/J1/Observation.2.ndjson", "export/J1/Patient.1.ndjson")
	for _, fi := range got {
		if fi.Size != int64(len(files[fi.Name])) {
			t.Errorf("ListFiles: %s has size %d, want %d", fi.Name, fi.Size, len(files[fi.Name]))
		}
		if fi.Created.IsZero() || time.Since(fi.Created) > time.Hour {
			t.Errorf("ListFiles: %s created %v, want about now", fi.Name, fi.Created)
		}
	}
	checkList(t, f, "export/J1", "export/J1.x", "export/J1/Observation.1.ndjson", "export/J1/Observation.2.ndjson",
		"export/J1/Patient.1.ndjson", "export/J10/Patient.1.ndjson")
	checkList(t, f, "export/J1/Obs", "export/J1/Observation.1.ndjson", "export/J1/Observation.2.ndjson")
	checkList(t, f, "export/J1/Patient.1.ndjson", "export/J1/Patient.1.ndjson")
	checkList(t, f, "export/J2/")
	checkList(t, f, "export/J1.x/")
	checkList(t, f, "nothing/here/")
	checkList(t, f, "", "export/J1.x", "export/J1/Observation.1.ndjson", "export/J1/Observation.2.ndjson",
		"export/J1/Patient.1.ndjson", "export/J10/Patient.1.ndjson", "other/J1/Patient.1.ndjson")
}

func testFilesDelete(t *testing.T, s store.Store) {
	f := s.Files()
	ctx := context.Background()
	for _, name := range []string{"export/J1/a.ndjson", "export/J1/b.ndjson", "export/J1/sub/c.ndjson", "export/J10/a.ndjson", "export/J1.x"} {
		putString(t, f, name, name)
	}
	del := func(prefix string, want int) {
		t.Helper()
		n, err := f.DeleteFiles(ctx, prefix)
		if err != nil || n != want {
			t.Fatalf("DeleteFiles %q = %d, %v; want %d", prefix, n, err, want)
		}
	}
	del("export/J1/", 3)
	checkList(t, f, "", "export/J1.x", "export/J10/a.ndjson")
	if _, _, err := f.OpenFile(ctx, "export/J1/a.ndjson"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenFile of a deleted file = %v, want ErrNotFound", err)
	}
	del("export/J1/", 0)
	del("nothing", 0)
	// A deleted name is free again, as file or as folder.
	putString(t, f, "export/J1/a.ndjson", "again")
	putString(t, f, "export/J1/sub", "a file now")
	checkFile(t, f, "export/J1/a.ndjson", strings.NewReader("again"), 5)
	del("export/J1", 4)
	checkList(t, f, "")
	putString(t, f, "export", "a file where a folder was")
	del("", 1)
	checkList(t, f, "")
}

var errBroken = errors.New("source broke")

// checkNothing checks that a failed PutFile left nothing a reader sees, and
// that the name is free.
func checkNothing(t *testing.T, f store.Files, name string) {
	t.Helper()
	if _, _, err := f.OpenFile(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenFile after a failed PutFile = %v, want ErrNotFound", err)
	}
	checkList(t, f, "", "keep/me")
	putString(t, f, name, "after")
	checkFile(t, f, name, strings.NewReader("after"), 5)
	if _, err := f.DeleteFiles(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

func testFilesFailingReader(t *testing.T, s store.Store) {
	f := s.Files()
	putString(t, f, "keep/me", "kept")
	// io.ErrUnexpectedEOF is what a truncated request body yields: a
	// failure, not an end.
	for _, cause := range []error{errBroken, io.ErrUnexpectedEOF} {
		for _, at := range []int64{0, 1000, 1<<20 + 7} {
			t.Run(fmt.Sprintf("%v/%d", cause, at), func(t *testing.T) {
				r := &hook{r: newGen(1, 3<<20), at: at, fn: func() error { return cause }}
				_, err := f.PutFile(context.Background(), "out/broken.ndjson", r)
				if !errors.Is(err, cause) {
					t.Fatalf("PutFile from a failing reader = %v, want %v", err, cause)
				}
				checkNothing(t, f, "out/broken.ndjson")
			})
		}
	}
}

func testFilesCanceled(t *testing.T, s store.Store) {
	f := s.Files()
	putString(t, f, "keep/me", "kept")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.PutFile(ctx, "out/canceled", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFile with a canceled context = %v, want context.Canceled", err)
	}
	checkNothing(t, f, "out/canceled")
	for _, at := range []int64{1000, 1<<20 + 7} {
		ctx, cancel := context.WithCancel(context.Background())
		r := &hook{r: newGen(1, 3<<20), at: at, fn: func() error { cancel(); return nil }}
		_, err := f.PutFile(ctx, "out/canceled", r)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutFile canceled after %d bytes = %v, want context.Canceled", at, err)
		}
		checkNothing(t, f, "out/canceled")
	}
}

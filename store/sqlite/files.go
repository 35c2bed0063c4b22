package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// FilesDir is the folder, beside the database file, that holds the file
// area: a file named "a/b/c" is FilesDir/a/b/c.
const FilesDir = "files"

// A file being written is a temporary, "~tmp-*", in the folder of its
// final name; names never contain '~', so listings pass temporaries over.
// A temporary that no one has written to for staleAfter was left by a
// failed or killed writer: whoever finds it removes it (the first use of
// the file area in a process looks everywhere; listings, deletions and
// writes look where they go). A writer still at work is safe: writing
// keeps its temporary's modification time fresh.
const (
	tempPrefix = "~tmp-"
	staleAfter = time.Hour
)

// Files returns the store's file area, under FilesDir beside the database.
// Files are written to a temporary, synced, then hard-linked to their
// name, which fails rather than replace an existing file, even one that
// another process writes. File systems that compare names without case
// (macOS, Windows) make "A" and "a" one name.
func (s *Store) Files() store.Files {
	return &files{s: s, root: filepath.Join(filepath.Dir(s.path), FilesDir)}
}

type files struct {
	s    *Store
	root string
}

// swept holds the roots whose stale temporaries this process removed.
var swept sync.Map // root → *sync.Once

func (f *files) enter() error {
	if err := f.s.enter(); err != nil {
		return err
	}
	once, _ := swept.LoadOrStore(f.root, new(sync.Once))
	once.(*sync.Once).Do(func() {
		filepath.WalkDir(f.root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), tempPrefix) {
				removeIfStale(path)
			}
			return nil
		})
	})
	return nil
}

func (f *files) path(name string) string { return filepath.Join(f.root, filepath.FromSlash(name)) }

// PutFile writes r to a temporary beside name, syncs it and links it to
// name.
func (f *files) PutFile(ctx context.Context, name string, r io.Reader) (int64, error) {
	if err := store.CheckFileName(name); err != nil {
		return 0, err
	}
	if err := f.enter(); err != nil {
		return 0, err
	}
	defer f.s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := f.taken(name); err != nil {
		return 0, err
	}
	final := f.path(name)
	dir := filepath.Dir(final)
	tmp, err := f.createTemp(name, dir)
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // after the link, or instead of it
	stop := touch(tmp.Name())
	n, err := io.CopyBuffer(tmp, ctxReader{ctx, r}, make([]byte, 256<<10))
	stop()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite store: put file %s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("%w: file %s", store.ErrExists, name)
		}
		return 0, fmt.Errorf("sqlite store: put file %s: %w", name, err)
	}
	syncDir(dir)
	sweepDir(dir)
	return n, nil
}

// taken reports ErrExists when name, or a folder on its path, is a file or
// when name is a folder.
func (f *files) taken(name string) error {
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '/' {
			continue
		}
		fi, err := os.Lstat(f.path(name[:i]))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("sqlite store: put file %s: %w", name, err)
		case i == len(name):
			return fmt.Errorf("%w: file %s", store.ErrExists, name)
		case !fi.IsDir():
			return fmt.Errorf("%w: %s is a file, not a folder", store.ErrExists, name[:i])
		}
	}
	return nil
}

// createTemp creates the temporary in dir, making dir first. A DeleteFiles
// may remove dir, empty, in between: then it tries again.
func (f *files) createTemp(name, dir string) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		err := os.MkdirAll(dir, 0o750)
		if err == nil {
			var tmp *os.File
			tmp, err = os.CreateTemp(dir, tempPrefix+"*")
			if err == nil {
				return tmp, nil
			}
			if errors.Is(err, fs.ErrNotExist) && attempt < 10 {
				continue
			}
		}
		if terr := f.taken(name); terr != nil {
			return nil, terr
		}
		return nil, fmt.Errorf("sqlite store: put file %s: %w", name, err)
	}
}

// ctxReader ends a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// touch keeps a temporary fresh, while its writer waits for its reader,
// until stop is called.
func touch(path string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(staleAfter / 6)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				os.Chtimes(path, now, now)
			}
		}
	}()
	return func() { close(done) }
}

// syncDir makes a new directory entry durable where the system allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// sweepDir removes the stale temporaries of one folder.
func sweepDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			removeIfStale(filepath.Join(dir, e.Name()))
		}
	}
}

func removeIfStale(path string) {
	if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > staleAfter {
		os.Remove(path)
	}
}

// OpenFile opens the file for reading.
func (f *files) OpenFile(ctx context.Context, name string) (io.ReadCloser, store.FileInfo, error) {
	if err := store.CheckFileName(name); err != nil {
		return nil, store.FileInfo{}, err
	}
	if err := f.enter(); err != nil {
		return nil, store.FileInfo{}, err
	}
	defer f.s.leave()
	if err := ctx.Err(); err != nil {
		return nil, store.FileInfo{}, err
	}
	notFound := fmt.Errorf("%w: file %s", store.ErrNotFound, name)
	file, err := os.Open(f.path(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || isNotDir(f.root, name) {
			return nil, store.FileInfo{}, notFound
		}
		return nil, store.FileInfo{}, fmt.Errorf("sqlite store: open file %s: %w", name, err)
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, store.FileInfo{}, fmt.Errorf("sqlite store: open file %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, store.FileInfo{}, notFound
	}
	return file, store.FileInfo{Name: name, Size: fi.Size(), Created: fi.ModTime()}, nil
}

// isNotDir reports whether a folder on name's path is a file.
func isNotDir(root, name string) bool {
	for i := range len(name) {
		if name[i] == '/' {
			if fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name[:i]))); err == nil && !fi.IsDir() {
				return true
			}
		}
	}
	return false
}

// ListFiles walks the folders prefix can match.
func (f *files) ListFiles(ctx context.Context, prefix string) ([]store.FileInfo, error) {
	if err := store.CheckFilePrefix(prefix); err != nil {
		return nil, err
	}
	if err := f.enter(); err != nil {
		return nil, err
	}
	defer f.s.leave()
	var out []store.FileInfo
	err := f.walk(ctx, prefix, func(name, path string, d fs.DirEntry) error {
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) { // deleted meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, store.FileInfo{Name: name, Size: fi.Size(), Created: fi.ModTime()})
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: list files %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b store.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteFiles removes the files prefix matches, then the folders it leaves
// empty.
func (f *files) DeleteFiles(ctx context.Context, prefix string) (int, error) {
	if err := store.CheckFilePrefix(prefix); err != nil {
		return 0, err
	}
	if err := f.enter(); err != nil {
		return 0, err
	}
	defer f.s.leave()
	n := 0
	err := f.walk(ctx, prefix, func(name, path string, d fs.DirEntry) error {
		err := os.Remove(path)
		switch {
		case err == nil:
			n++
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		return nil
	}, func(dir string) { os.Remove(dir) })
	// The folders above the prefix's own, when it emptied them.
	for dir := filepath.Dir(f.path(prefix + "x")); err == nil && dir != f.root && strings.HasPrefix(dir, f.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	if err != nil {
		return n, fmt.Errorf("sqlite store: delete files %q: %w", prefix, err)
	}
	return n, nil
}

// walk calls file for every file whose name starts with prefix, and
// dirDone (if set) for every folder inside prefix after its files. It
// removes the stale temporaries it meets and passes over entries that are
// no file names.
func (f *files) walk(ctx context.Context, prefix string, file func(name, path string, d fs.DirEntry) error, dirDone func(dir string)) error {
	dirName, base := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirName, base = prefix[:i], prefix[i+1:]
	}
	start := f.root
	if dirName != "" {
		start = f.path(dirName)
	}
	var visit func(dir, name string, all bool) error
	visit = func(dir, name string, all bool) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || !all && isNotDir(f.root, dirName+"/x") {
				return nil
			}
			return err
		}
		for _, e := range ents {
			en := e.Name()
			path := filepath.Join(dir, en)
			switch {
			case strings.HasPrefix(en, tempPrefix):
				removeIfStale(path)
				continue
			case !all && !strings.HasPrefix(en, base):
				continue
			case store.CheckFileName(en) != nil:
				continue // not ours
			}
			full := en
			if name != "" {
				full = name + "/" + en
			}
			switch {
			case e.IsDir():
				if err := visit(path, full, true); err != nil {
					return err
				}
				if dirDone != nil {
					dirDone(path)
				}
			case e.Type().IsRegular():
				if err := file(full, path, e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return visit(start, dirName, false)
}

package store

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// Files holds named binary files beside the data: the NDJSON output of bulk
// exports. A file is written once, whole, and is visible only when
// complete: a writer that fails or is interrupted leaves nothing a reader
// can open (engines clean up what it left). Names are slash-separated
// paths of letters, digits, '-', '_' and '.', such as "export/JOB/Patient.1.ndjson";
// engines refuse others with ErrInvalid.
type Files interface {
	// PutFile stores what r yields under name and returns its size. It
	// reads r to its end without holding it in memory. ErrExists when
	// name is taken (files are never overwritten).
	PutFile(ctx context.Context, name string, r io.Reader) (int64, error)
	// OpenFile streams a file, ErrNotFound when there is none.
	OpenFile(ctx context.Context, name string) (io.ReadCloser, FileInfo, error)
	// ListFiles returns the files whose names start with prefix (a plain
	// string prefix: "a/b" lists "a/b", "a/b/c" and "a/bc"; "" lists
	// all), by name. A prefix no name can start with is ErrInvalid (see
	// CheckFilePrefix).
	ListFiles(ctx context.Context, prefix string) ([]FileInfo, error)
	// DeleteFiles removes every file whose name starts with prefix (none
	// is not an error) and returns how many it removed. Prefixes are as
	// for ListFiles.
	DeleteFiles(ctx context.Context, prefix string) (int, error)
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name    string
	Size    int64
	Created time.Time
}

// MaxFileName bounds the length of a file name in bytes, and
// MaxFileSegment that of each of its slash-separated segments (the limit
// of most file systems on one path element).
const (
	MaxFileName    = 512
	MaxFileSegment = 255
)

// CheckFileName reports, as an error wrapping ErrInvalid, why name is not
// a file name: names are slash-separated segments of ASCII letters,
// digits, '-', '_' and '.', none empty (no leading, trailing or doubled
// slash), none "." or "..", at most MaxFileSegment bytes each and
// MaxFileName in all.
func CheckFileName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty file name", ErrInvalid)
	}
	return checkFilePath(name, false)
}

// CheckFilePrefix reports, as an error wrapping ErrInvalid, why no file
// name can start with prefix: it is as a name, except that it may be
// empty, end with a slash, and end with a partial segment ("." or ".."
// included, as the start of "..x").
func CheckFilePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkFilePath(prefix, true)
}

func checkFilePath(p string, prefix bool) error {
	if len(p) > MaxFileName {
		return fmt.Errorf("%w: file name longer than %d bytes", ErrInvalid, MaxFileName)
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case seg == "" && !(prefix && last && i > 0):
			return fmt.Errorf("%w: file name %q has an empty segment", ErrInvalid, p)
		case (seg == "." || seg == "..") && !(prefix && last):
			return fmt.Errorf("%w: file name %q has a %q segment", ErrInvalid, p, seg)
		case len(seg) > MaxFileSegment:
			return fmt.Errorf("%w: file name %q has a segment longer than %d bytes", ErrInvalid, p, MaxFileSegment)
		}
		for _, c := range []byte(seg) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return fmt.Errorf("%w: file name %q has a character other than letters, digits, '-', '_', '.' and '/'", ErrInvalid, p)
			}
		}
	}
	return nil
}

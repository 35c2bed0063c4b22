package store

import (
	"context"
	"io"
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
	// ListFiles returns the files whose names start with prefix, by name.
	ListFiles(ctx context.Context, prefix string) ([]FileInfo, error)
	// DeleteFiles removes every file whose name starts with prefix (none
	// is not an error) and returns how many it removed.
	DeleteFiles(ctx context.Context, prefix string) (int, error)
}

// FileInfo describes a stored file.
type FileInfo struct {
	Name    string
	Size    int64
	Created time.Time
}

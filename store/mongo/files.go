package mongo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// The file area is a GridFS bucket named "files": a document per file in
// files.files (_id, filename, length, chunkSize, uploadDate) and its
// content in 255 KiB chunks in files.chunks (files_id, n, data), so that
// GridFS tools and drivers read what the engine writes. The engine writes
// and reads them itself rather than through the driver's GridFSBucket,
// whose streams live under one operation timeout (a download to a slow
// client, or an export writing for minutes, would fail after
// Options.OpTimeout) and which buffers 16 MiB per upload; here every
// insert and read is an operation of its own. Two departures from what
// the driver writes, invisible to GridFS readers: a chunk's _id is
// "<files_id hex>.<n>", so that reading one is a lookup by _id (the only
// lookup FerretDB serves from an index), and filename is unique.
//
// As in GridFS, the files document is written last, so a file is visible
// only once complete. An upload first records itself in files.pending
// (_id the file's, at refreshed every minute); a failed upload removes its
// chunks and that record at once, and the chunks of one whose process died
// are removed by the first PutFile to find its record an hour old. Deletes
// record themselves there too, so an interrupted one is finished the same
// way.
const (
	filesColl       = "files.files"
	chunksColl      = "files.chunks"
	pendingColl     = "files.pending"
	chunkSize       = 255 << 10 // GridFS's default
	chunksPerInsert = 4
	staleUpload     = time.Hour
	heartbeat       = time.Minute
)

var (
	fileIndexes = []index{
		{keys: bson.D{{Key: "filename", Value: 1}}, unique: true, why: "one file per name; listings by prefix"},
	}
	chunkIndexes = []index{
		{keys: bson.D{{Key: "files_id", Value: 1}, {Key: "n", Value: 1}}, unique: true, why: "GridFS readers; deleting a file's chunks"},
	}
)

// Files returns the store's file area: the GridFS bucket "files".
func (s *Store) Files() store.Files {
	return &files{
		s:       s,
		files:   s.db.Collection(filesColl),
		chunks:  s.db.Collection(chunksColl),
		pending: s.db.Collection(pendingColl),
	}
}

type files struct {
	s                      *Store
	files, chunks, pending *mongo.Collection
}

// fileDoc is a GridFS files document.
type fileDoc struct {
	ID         bson.ObjectID `bson:"_id"`
	Length     int64         `bson:"length"`
	ChunkSize  int32         `bson:"chunkSize"`
	UploadDate time.Time     `bson:"uploadDate"`
	Filename   string        `bson:"filename"`
}

func (d fileDoc) info() store.FileInfo {
	return store.FileInfo{Name: d.Filename, Size: d.Length, Created: d.UploadDate}
}

func chunkID(id bson.ObjectID, n int) string { return id.Hex() + "." + strconv.Itoa(n) }

// ensure creates the bucket's indexes once per process. (The key cannot
// be a resource type: types have no dots.)
func (f *files) ensure(ctx context.Context) error {
	f.s.typesMu.Lock()
	done := f.s.types[filesColl]
	f.s.typesMu.Unlock()
	if done {
		return nil
	}
	if _, err := f.s.ensureIndexes(ctx, f.files, fileIndexes, false); err != nil {
		return err
	}
	if _, err := f.s.ensureIndexes(ctx, f.chunks, chunkIndexes, false); err != nil {
		return err
	}
	f.s.typesMu.Lock()
	f.s.types[filesColl] = true
	f.s.typesMu.Unlock()
	return nil
}

// PutFile uploads r in chunks, then writes the files document.
func (f *files) PutFile(ctx context.Context, name string, r io.Reader) (int64, error) {
	if err := store.CheckFileName(name); err != nil {
		return 0, err
	}
	if err := f.s.enter(); err != nil {
		return 0, err
	}
	defer f.s.leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := f.ensure(ctx); err != nil {
		return 0, f.fail(ctx, "put", name, err)
	}
	if err := f.sweep(ctx); err != nil {
		f.s.log.Warn("mongo store: removing what failed file writes left", "err", err)
	}
	if err := f.taken(ctx, name); err != nil {
		return 0, f.fail(ctx, "put", name, err)
	}
	id := bson.NewObjectID()
	if _, err := f.pending.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "name", Value: name}, {Key: "at", Value: time.Now()}}); err != nil {
		return 0, f.fail(ctx, "put", name, err)
	}
	stop := f.beat(ctx, id)
	n, err := f.upload(ctx, id, name, r)
	stop()
	if err != nil {
		// Whatever ended ctx must not keep the chunks.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := f.removeChunks(cctx, id); cerr != nil {
			f.s.log.Warn("mongo store: removing the chunks of a failed file write", "file", name, "err", cerr)
		}
		if mongo.IsDuplicateKeyError(err) {
			return 0, fmt.Errorf("%w: file %s", store.ErrExists, name)
		}
		return 0, f.fail(ctx, "put", name, err)
	}
	if _, err := f.pending.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		f.s.log.Warn("mongo store: file written, its pending record left for the sweeper", "file", name, "err", err)
	}
	return n, nil
}

// upload writes the chunks of r and then the files document.
func (f *files) upload(ctx context.Context, id bson.ObjectID, name string, r io.Reader) (int64, error) {
	buf := make([]byte, chunkSize*chunksPerInsert)
	var size int64
	n := 0
	for {
		m, rerr := fill(ctx, r, buf)
		if m > 0 {
			docs := make([]any, 0, chunksPerInsert)
			for off := 0; off < m; off += chunkSize {
				data := buf[off:min(off+chunkSize, m)]
				docs = append(docs, bson.D{
					{Key: "_id", Value: chunkID(id, n)},
					{Key: "files_id", Value: id},
					{Key: "n", Value: int32(n)},
					{Key: "data", Value: bson.Binary{Data: data}},
				})
				n++
			}
			if _, err := f.chunks.InsertMany(ctx, docs); err != nil {
				return 0, err
			}
			size += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, rerr
		}
	}
	_, err := f.files.InsertOne(ctx, bson.D{
		{Key: "_id", Value: id},
		{Key: "length", Value: size},
		{Key: "chunkSize", Value: int32(chunkSize)},
		{Key: "uploadDate", Value: time.Now()},
		{Key: "filename", Value: name},
	})
	return size, err
}

// fill reads r into buf until buf is full (nil), r ends (io.EOF) or fails,
// checking ctx between reads.
func fill(ctx context.Context, r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// beat keeps an upload's pending record fresh until stop is called.
func (f *files) beat(ctx context.Context, id bson.ObjectID) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				f.pending.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: time.Now()}}}})
			}
		}
	}()
	return func() { close(done) }
}

// removeChunks removes a file's chunks, then its pending record.
func (f *files) removeChunks(ctx context.Context, id bson.ObjectID) error {
	if _, err := f.chunks.DeleteMany(ctx, bson.D{{Key: "files_id", Value: id}}); err != nil {
		return err
	}
	_, err := f.pending.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return err
}

// sweep finishes the uploads and deletes whose process died: their
// pending records are an hour old.
func (f *files) sweep(ctx context.Context) error {
	cur, err := f.pending.Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: time.Now().Add(-staleUpload)}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(100))
	if err != nil {
		return err
	}
	var stale []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &stale); err != nil {
		return err
	}
	for _, p := range stale {
		// A complete upload whose record outlived it keeps its chunks.
		err := f.files.FindOne(ctx, bson.D{{Key: "_id", Value: p.ID}}).Err()
		switch {
		case err == nil:
			_, err = f.pending.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.ID}})
		case errors.Is(err, mongo.ErrNoDocuments):
			err = f.removeChunks(ctx, p.ID)
		}
		if err != nil {
			return err
		}
		f.s.log.Info("mongo store: removed what a failed file write left", "id", p.ID.Hex())
	}
	return nil
}

// taken reports ErrExists when name, a folder on its path or a name below
// it as a folder is a file. A concurrent PutFile of name itself meets the
// unique index; one of a name above or below it can slip past this check.
func (f *files) taken(ctx context.Context, name string) error {
	var same []string
	for i := range len(name) {
		if name[i] == '/' {
			same = append(same, name[:i])
		}
	}
	same = append(same, name)
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "filename", Value: bson.D{{Key: "$in", Value: same}}}},
		prefixFilter(name + "/"),
	}}}
	var d fileDoc
	err := f.files.FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "filename", Value: 1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil
	case err != nil:
		return err
	case d.Filename == name:
		return fmt.Errorf("%w: file %s", store.ErrExists, name)
	case strings.HasPrefix(d.Filename, name+"/"):
		return fmt.Errorf("%w: %s is a folder of files (%s)", store.ErrExists, name, d.Filename)
	}
	return fmt.Errorf("%w: %s is a file, not a folder", store.ErrExists, d.Filename)
}

// prefixFilter matches the filenames that start with prefix: names are
// made of characters below '{', so they lie in [prefix, prefix+"{"). A
// range, unlike a regular expression, needs no escaping and is served by
// the index on MongoDB.
func prefixFilter(prefix string) bson.D {
	return bson.D{{Key: "filename", Value: bson.D{{Key: "$gte", Value: prefix}, {Key: "$lt", Value: prefix + "{"}}}}
}

// OpenFile finds the files document; the reader then fetches one chunk at
// a time, each by _id, with ctx.
func (f *files) OpenFile(ctx context.Context, name string) (io.ReadCloser, store.FileInfo, error) {
	if err := store.CheckFileName(name); err != nil {
		return nil, store.FileInfo{}, err
	}
	if err := f.s.enter(); err != nil {
		return nil, store.FileInfo{}, err
	}
	defer f.s.leave()
	var d fileDoc
	err := f.files.FindOne(ctx, bson.D{{Key: "filename", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, store.FileInfo{}, fmt.Errorf("%w: file %s", store.ErrNotFound, name)
	}
	if err != nil {
		return nil, store.FileInfo{}, f.fail(ctx, "open", name, err)
	}
	if d.ChunkSize <= 0 && d.Length > 0 {
		return nil, store.FileInfo{}, fmt.Errorf("mongo store: open file %s: chunk size %d", name, d.ChunkSize)
	}
	return &fileReader{ctx: ctx, f: f, doc: d}, d.info(), nil
}

// fileReader streams one file. A file deleted while read ends its reader
// with an error.
type fileReader struct {
	ctx    context.Context
	f      *files
	doc    fileDoc
	n      int    // next chunk
	off    int64  // bytes returned so far
	buf    []byte // rest of the current chunk
	closed bool
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("mongo store: read of a closed file")
	}
	if len(r.buf) == 0 {
		if r.off >= r.doc.Length {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.off += int64(n)
	return n, nil
}

func (r *fileReader) next() error {
	want := min(int64(r.doc.ChunkSize), r.doc.Length-r.off-int64(len(r.buf)))
	var c struct {
		Data bson.Binary `bson:"data"`
	}
	err := r.f.chunks.FindOne(r.ctx, bson.D{{Key: "_id", Value: chunkID(r.doc.ID, r.n)}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		// Written by another GridFS client, with chunk ids of its own.
		err = r.f.chunks.FindOne(r.ctx, bson.D{{Key: "files_id", Value: r.doc.ID}, {Key: "n", Value: int32(r.n)}}).Decode(&c)
	}
	if errors.Is(err, mongo.ErrNoDocuments) {
		return fmt.Errorf("mongo store: read file %s: chunk %d missing (deleted while read?): %w", r.doc.Filename, r.n, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return r.f.fail(r.ctx, "read", r.doc.Filename, err)
	}
	if int64(len(c.Data.Data)) != want {
		return fmt.Errorf("mongo store: read file %s: chunk %d has %d bytes, want %d", r.doc.Filename, r.n, len(c.Data.Data), want)
	}
	r.buf = c.Data.Data
	r.n++
	return nil
}

func (r *fileReader) Close() error {
	r.closed = true
	r.buf = nil
	return nil
}

// ListFiles finds the files documents by a filename range.
func (f *files) ListFiles(ctx context.Context, prefix string) ([]store.FileInfo, error) {
	if err := store.CheckFilePrefix(prefix); err != nil {
		return nil, err
	}
	if err := f.s.enter(); err != nil {
		return nil, err
	}
	defer f.s.leave()
	docs, err := f.find(ctx, prefix)
	if err != nil {
		return nil, f.fail(ctx, "list", prefix, err)
	}
	out := make([]store.FileInfo, len(docs))
	for i, d := range docs {
		out[i] = d.info()
	}
	return out, nil
}

func (f *files) find(ctx context.Context, prefix string) ([]fileDoc, error) {
	cur, err := f.files.Find(ctx, prefixFilter(prefix), options.Find().SetSort(bson.D{{Key: "filename", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var docs []fileDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// DeleteFiles deletes each matching file: its files document (which hides
// it), then its chunks, under a pending record that lets a sweep finish
// the job if this process dies in between.
func (f *files) DeleteFiles(ctx context.Context, prefix string) (int, error) {
	if err := store.CheckFilePrefix(prefix); err != nil {
		return 0, err
	}
	if err := f.s.enter(); err != nil {
		return 0, err
	}
	defer f.s.leave()
	docs, err := f.find(ctx, prefix)
	if err != nil {
		return 0, f.fail(ctx, "delete", prefix, err)
	}
	n := 0
	for _, d := range docs {
		_, err := f.pending.InsertOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "name", Value: d.Filename}, {Key: "at", Value: time.Now()}})
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return n, f.fail(ctx, "delete", prefix, err)
		}
		res, err := f.files.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}})
		if err != nil {
			return n, f.fail(ctx, "delete", prefix, err)
		}
		n += int(res.DeletedCount)
		if err := f.removeChunks(ctx, d.ID); err != nil {
			return n, f.fail(ctx, "delete", prefix, err)
		}
	}
	return n, nil
}

func (f *files) fail(ctx context.Context, op, name string, err error) error {
	return f.s.fail(ctx, fmt.Errorf("%s file %s: %w", op, name, err))
}

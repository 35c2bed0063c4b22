package mongo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func count(t *testing.T, c *mongo.Collection) int64 {
	t.Helper()
	n, err := c.CountDocuments(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func readAll(t *testing.T, f store.Files, name string) string {
	t.Helper()
	rc, _, err := f.OpenFile(context.Background(), name)
	if err != nil {
		t.Fatalf("OpenFile %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return string(b)
}

// TestFilesAreGridFS: the driver's GridFS reads what the engine writes,
// and the engine reads what the driver writes.
func TestFilesAreGridFS(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	content := strings.Repeat("0123456789abcdef", 50_000) // 800 000 bytes: 4 chunks
	if _, err := s.Files().PutFile(ctx, "export/J/Patient.ndjson", strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	bucket := s.db.GridFSBucket(options.GridFSBucket().SetName("files"))
	if name := bucket.GetFilesCollection().Name(); name != filesColl {
		t.Fatalf("driver's bucket uses %s, the engine %s", name, filesColl)
	}
	var buf bytes.Buffer
	if _, err := bucket.DownloadToStreamByName(ctx, "export/J/Patient.ndjson", &buf); err != nil {
		t.Fatalf("GridFS download: %v", err)
	}
	if buf.String() != content {
		t.Errorf("GridFS read %d bytes, not what was put (%d)", buf.Len(), len(content))
	}
	if _, err := bucket.UploadFromStream(ctx, "by/driver", strings.NewReader(content)); err != nil {
		t.Fatalf("GridFS upload: %v", err)
	}
	if got := readAll(t, s.Files(), "by/driver"); got != content {
		t.Errorf("engine read %d bytes of a driver's file, not what it wrote (%d)", len(got), len(content))
	}
	n, err := s.Files().DeleteFiles(ctx, "")
	if err != nil || n != 2 {
		t.Fatalf("DeleteFiles = %d, %v; want 2", n, err)
	}
	if c := count(t, s.db.Collection(chunksColl)); c != 0 {
		t.Errorf("%d chunks left after deleting every file", c)
	}
}

// TestFilesNameIsUnique: two writers that both pass the check before the
// upload meet the unique index at the end (FerretDB enforces it too).
func TestFilesNameIsUnique(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	f := s.Files().(*files)
	if _, err := f.PutFile(ctx, "same", strings.NewReader("first")); err != nil {
		t.Fatal(err)
	}
	_, err := f.upload(ctx, bson.NewObjectID(), "same", strings.NewReader("second"))
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second upload of a name = %v, want a duplicate key error", err)
	}
	if got := readAll(t, f, "same"); got != "first" {
		t.Errorf("file = %q, want the first", got)
	}
}

// TestFilesFailedPutsLeaveNothing: a failed upload removes its chunks and
// its pending record at once.
func TestFilesFailedPutsLeaveNothing(t *testing.T) {
	s := openTest(t, Options{})
	f := s.Files().(*files)
	broken := errors.New("broken")
	r := io.MultiReader(strings.NewReader(strings.Repeat("x", 2<<20)), iotestErr{broken})
	if _, err := f.PutFile(context.Background(), "a", r); !errors.Is(err, broken) {
		t.Fatalf("PutFile = %v, want %v", err, broken)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r = io.MultiReader(strings.NewReader(strings.Repeat("x", 2<<20)), cancelReader(cancel), strings.NewReader("more"))
	if _, err := f.PutFile(ctx, "b", r); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutFile = %v, want context.Canceled", err)
	}
	for _, c := range []*mongo.Collection{f.files, f.chunks, f.pending} {
		if n := count(t, c); n != 0 {
			t.Errorf("%d documents left in %s", n, c.Name())
		}
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

// cancelReader cancels when read, and yields nothing.
type cancelReader context.CancelFunc

func (c cancelReader) Read([]byte) (int, error) { c(); return 0, io.EOF }

// TestFilesSweepsStaleUploads: what a writer that died left (chunks and a
// pending record an hour old) goes at the next PutFile; uploads still
// beating, and files complete, stay.
func TestFilesSweepsStaleUploads(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	f := s.Files().(*files)
	if _, err := f.PutFile(ctx, "complete", strings.NewReader("done")); err != nil {
		t.Fatal(err)
	}
	var done fileDoc
	if err := f.files.FindOne(ctx, bson.D{{Key: "filename", Value: "complete"}}).Decode(&done); err != nil {
		t.Fatal(err)
	}
	dead, alive := bson.NewObjectID(), bson.NewObjectID()
	old := time.Now().Add(-2 * staleUpload)
	for _, p := range []struct {
		id bson.ObjectID
		at time.Time
	}{{dead, old}, {alive, time.Now()}, {done.ID, old}} {
		if _, err := f.pending.InsertOne(ctx, bson.D{{Key: "_id", Value: p.id}, {Key: "at", Value: p.at}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []bson.ObjectID{dead, alive} {
		if _, err := f.chunks.InsertOne(ctx, bson.D{{Key: "_id", Value: chunkID(id, 0)}, {Key: "files_id", Value: id}, {Key: "n", Value: int32(0)}, {Key: "data", Value: bson.Binary{Data: []byte("partial")}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.PutFile(ctx, "next", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	ids := func(c *mongo.Collection, key string) map[bson.ObjectID]bool {
		cur, err := c.Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		out := map[bson.ObjectID]bool{}
		for _, d := range docs {
			out[d[key].(bson.ObjectID)] = true
		}
		return out
	}
	chunks, pending := ids(f.chunks, "files_id"), ids(f.pending, "_id")
	if chunks[dead] || pending[dead] {
		t.Errorf("a dead upload's chunks (%v) or record (%v) were not removed", chunks[dead], pending[dead])
	}
	if !chunks[alive] || !pending[alive] {
		t.Errorf("a live upload's chunks (%v) or record (%v) were removed", chunks[alive], pending[alive])
	}
	if pending[done.ID] || !chunks[done.ID] {
		t.Errorf("a complete file's stale record was kept (%v) or its chunks removed (%v)", pending[done.ID], !chunks[done.ID])
	}
	if got := readAll(t, f, "complete"); got != "done" {
		t.Errorf("complete file = %q", got)
	}
}

// slowReader yields n bytes, a chunk at a time, pausing before each.
type slowReader struct {
	n     int
	pause time.Duration
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	k := min(len(p), r.n, chunkSize)
	for i := range p[:k] {
		p[i] = 'z'
	}
	r.n -= k
	return k, nil
}

// TestFilesOutliveOpTimeout: the operation timeout bounds each operation,
// not a whole upload or download, which last as long as their reader (an
// export writing for minutes, a slow client).
func TestFilesOutliveOpTimeout(t *testing.T) {
	s := openTest(t, Options{OpTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	f := s.Files()
	const size = 6 * chunkSize
	if _, err := f.PutFile(ctx, "slow", &slowReader{n: size, pause: 150 * time.Millisecond}); err != nil {
		t.Fatalf("PutFile of a slow reader: %v", err)
	}
	rc, _, err := f.OpenFile(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, chunkSize/2)
	total := 0
	for {
		n, err := rc.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow read after %d bytes: %v", total, err)
		}
		time.Sleep(75 * time.Millisecond)
	}
	if total != size {
		t.Fatalf("read %d bytes, want %d", total, size)
	}
}

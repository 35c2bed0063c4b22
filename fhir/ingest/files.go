package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/google/uuid"
)

// maxLine bounds one NDJSON line (one resource); maxBundle bounds one JSON
// file, which is read whole.
const (
	maxLine   = 64 << 20
	maxBundle = 1 << 30
)

// Files produces the resources in paths: NDJSON files (one resource per
// line), JSON files holding a resource or a Bundle (transaction, batch,
// collection, searchset), and folders of them (walked recursively; files
// other than *.ndjson and *.json, and JSON files without a resourceType, are
// skipped there).
func Files(paths []string) func(emit func(Item) error) error {
	return func(emit func(Item) error) error {
		for _, p := range paths {
			files, err := expand(p)
			if err != nil {
				return err
			}
			for _, f := range files {
				// A file found by walking a folder may be any JSON (a
				// manifest, say); a file named on its own must be FHIR.
				if err := readFile(f, f == p, emit); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// expand lists the loadable files under path in a stable order.
func expand(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".ndjson") || strings.HasSuffix(p, ".json")) {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func readFile(path string, named bool, emit func(Item) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".ndjson") {
		return readNDJSON(path, f, emit)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBundle+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxBundle {
		return fmt.Errorf("%s: larger than %d bytes; split it or use NDJSON", path, maxBundle)
	}
	obj, err := fhirjson.Parse(data)
	if err != nil {
		return emit(Item{Where: path, Err: err})
	}
	if !named && obj.String("resourceType") == "" {
		return nil
	}
	if obj.String("resourceType") != "Bundle" || obj.String("type") == "document" || obj.String("type") == "message" {
		return emit(Item{Where: path, Obj: obj})
	}
	return emitBundle(path, obj, emit)
}

func readNDJSON(path string, r io.Reader, emit func(Item) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		data, err := readLine(br)
		if len(bytes.TrimSpace(data)) > 0 {
			if e := emit(Item{Where: path, Line: line, Raw: data}); e != nil {
				return e
			}
		}
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, errLongLine) {
			if e := emit(Item{Where: path, Line: line, Err: err}); e != nil {
				return e
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

var errLongLine = fmt.Errorf("line longer than %d bytes", maxLine)

// readLine returns one line without its newline, skipping the rest of a line
// that is too long (and reporting errLongLine).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxLine {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, errLongLine
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// emitBundle emits a Bundle's entry resources. fullUrls that are urn:uuid
// names (transaction Bundles) become the id of a resource that has none, and
// references to them are rewritten to "Type/id", so loading the same Bundle
// twice reaches the same resources.
func emitBundle(path string, b *fhirjson.Object, emit func(Item) error) error {
	raw, _ := b.Get("entry")
	entries, _ := raw.([]any)
	refs := map[string]string{}
	for _, e := range entries {
		eo, _ := e.(*fhirjson.Object)
		if eo == nil {
			continue
		}
		res := eo.Object("resource")
		full := eo.String("fullUrl")
		if res == nil || full == "" {
			continue
		}
		id := res.String("id")
		if id == "" {
			if u, err := uuid.Parse(strings.TrimPrefix(full, "urn:uuid:")); err == nil && strings.HasPrefix(full, "urn:uuid:") {
				id = u.String()
			} else {
				id = uuid.NewString()
			}
			res.Set("id", id)
		}
		refs[full] = res.String("resourceType") + "/" + id
	}
	for i, e := range entries {
		where := fmt.Sprintf("%s: entry[%d]", path, i)
		eo, _ := e.(*fhirjson.Object)
		if eo == nil {
			if err := emit(Item{Where: where, Err: errors.New("entry is not an object")}); err != nil {
				return err
			}
			continue
		}
		if req := eo.Object("request"); req != nil && strings.EqualFold(req.String("method"), "DELETE") {
			continue // loading adds data; deletions are not replayed
		}
		res := eo.Object("resource")
		if res == nil {
			if err := emit(Item{Where: where, Err: errors.New("entry has no resource")}); err != nil {
				return err
			}
			continue
		}
		resource.RewriteReferences(res, refs)
		if err := emit(Item{Where: where, Obj: res}); err != nil {
			return err
		}
	}
	return nil
}

package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestImportPeersDataReadsBack loads the real outside data (Synthea and
// Inferno's reference patients) with zero rejections, reads every resource
// back over HTTP with the same content, and checks a second import changes
// nothing. Embedded engine only: 33k resources are too many for the test
// FerretDB, which scans.
func TestImportPeersDataReadsBack(t *testing.T) {
	src := sharedDir(t, "peers-data")
	dir := t.TempDir()
	out, err := cli(t, "import", "--data", dir, "--log-level", "error", src)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`, 0 rejected`).MatchString(out) || !strings.Contains(out, "resources/s") {
		t.Fatalf("import summary: %s", out)
	}
	s := start(t, dir)
	files, _ := filepath.Glob(filepath.Join(src, "*.ndjson"))
	type item struct {
		want map[string]any
		path string
	}
	work := make(chan item)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				r := s.do("GET", it.path, nil)
				var got map[string]any
				if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil {
					mu.Lock()
					failures = append(failures, it.path+": status "+r.header.Get("Status"))
					mu.Unlock()
					continue
				}
				if !sameContent(it.want, got) {
					mu.Lock()
					failures = append(failures, it.path+": content differs")
					mu.Unlock()
				}
			}
		}()
	}
	n := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var want map[string]any
			if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
				t.Fatal(err)
			}
			n++
			work <- item{want: want, path: str(want["resourceType"]) + "/" + str(want["id"])}
		}
		fh.Close()
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d resources did not read back the same, e.g. %v", len(failures), n, failures[:min(5, len(failures))])
	}
	if n < 30000 {
		t.Fatalf("read back only %d resources", n)
	}
	s.stop()

	again, err := cli(t, "import", "--data", dir, "--log-level", "error", src)
	if err != nil || !strings.Contains(again, "0 created, 0 updated") {
		t.Errorf("re-import must change nothing: %v\n%s", err, again)
	}
}

// sameContent compares a resource as sent with one as stored, leaving out the
// meta elements the server owns.
func sameContent(sent, stored map[string]any) bool {
	strip := func(m map[string]any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		if meta, ok := c["meta"].(map[string]any); ok {
			mc := map[string]any{}
			for k, v := range meta {
				if k != "versionId" && k != "lastUpdated" {
					mc[k] = v
				}
			}
			if len(mc) == 0 {
				delete(c, "meta")
			} else {
				c["meta"] = mc
			}
		}
		return c
	}
	return reflect.DeepEqual(strip(sent), strip(stored))
}

func TestImportReportsBadLines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		src := filepath.Join(t.TempDir(), "mixed.ndjson")
		lines := []string{
			patient("Good1", `,"id":"good1"`),
			`{"resourceType":"Patient","id":"broken",`,
			`{"resourceType":"Patient","id":"bad-date","birthDate":"2020-02-30"}`,
			``,
			patient("Good2", `,"id":"good2"`),
			`{"resourceType":"Nope","id":"x"}`,
		}
		if err := os.WriteFile(src, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := e.cli(t, dir, "import", "--log-level", "error", src)
		if err == nil {
			t.Fatalf("import with rejected lines must exit non-zero:\n%s", out)
		}
		for _, want := range []string{"mixed.ndjson:2:", "mixed.ndjson:3:", "mixed.ndjson:6:", "2 created", "3 rejected"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}

		strictDir := t.TempDir()
		out, err = e.cli(t, strictDir, "import", "--strict", "--log-level", "error", src)
		if err == nil || !strings.Contains(out, "mixed.ndjson:2:") {
			t.Fatalf("--strict must fail at the first bad line: %v\n%s", err, out)
		}
		s := e.start(t, strictDir)
		expectOutcome(t, s.do("GET", "Patient/good1", nil), http.StatusNotFound)
	})
}

func TestImportBundles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		src := t.TempDir()
		os.WriteFile(filepath.Join(src, "tx.json"), []byte(txPatientAndObservation), 0o644)
		os.WriteFile(filepath.Join(src, "one.json"), []byte(patient("Single", `,"id":"single"`)), 0o644)
		os.WriteFile(filepath.Join(src, "notes.txt"), []byte("not FHIR"), 0o644)
		out, err := e.cli(t, dir, "import", "--log-level", "error", src)
		if err != nil || !strings.Contains(out, "3 created") {
			t.Fatalf("import: %v\n%s", err, out)
		}
		s := e.start(t, dir)
		expect(t, s.do("GET", "Patient/single", nil), http.StatusOK)
		obs := expect(t, s.do("GET", "Observation/88f151c0-a954-468a-88bd-5ae15c08e059", nil), http.StatusOK)
		if got := obs["subject"].(map[string]any)["reference"]; got != "Patient/61ebe359-bfdc-4613-8bf2-c5e300945f0a" {
			t.Errorf("urn:uuid reference not resolved: %v", got)
		}
	})
}

// TestImportWhileServing runs the import subcommand on the data folder of a
// running server, which keeps serving reads and writes.
func TestImportWhileServing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		src := filepath.Join(t.TempDir(), "many.ndjson")
		// FerretDB scans on every write: fewer resources there, still
		// several batches written while the server writes too.
		n := 2000
		if e.mongo != nil {
			n = 400
		}
		var b strings.Builder
		for i := range n {
			b.WriteString(patient("Bulk", `,"id":"bulk-`+strconv.Itoa(i)+`"`) + "\n")
		}
		os.WriteFile(src, []byte(b.String()), 0o644)
		done := make(chan string)
		go func() {
			out, err := e.cli(t, dir, "import", "--log-level", "error", "--batch", "100", src)
			if err != nil {
				out += "\nerror: " + err.Error()
			}
			done <- out
		}()
		for i := 0; ; i++ {
			expect(t, s.do("PUT", "Patient/live", patient("Live", `,"id":"live"`)), map[bool]int{true: 201, false: 200}[i == 0])
			select {
			case out := <-done:
				if !strings.Contains(out, fmt.Sprintf("%d created", n)) {
					t.Fatalf("import next to a server: %s", out)
				}
				expect(t, s.do("GET", fmt.Sprintf("Patient/bulk-%d", n-1), nil), http.StatusOK)
				return
			default:
			}
		}
	})
}

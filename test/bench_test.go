package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/cmd/fhirgraph/app"
	fhirschema "github.com/fhirgraph/fhirgraph/schema"
)

// seedFiles writes `seed --patients n` output as NDJSON once per benchmark
// run and returns the folder and the "Type/id" of every resource.
func seedFiles(b *testing.B, n int) (string, []string) {
	b.Helper()
	dir := b.TempDir()
	var out syncBuffer
	if err := app.Run(context.Background(), []string{"seed", "--patients", strconv.Itoa(n), "--out", dir}, noEnv, &out, &out); err != nil {
		b.Fatalf("seed: %v\n%s", err, out.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	var refs []string
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				b.Fatal(err)
			}
			refs = append(refs, r.ResourceType+"/"+r.ID)
		}
		fh.Close()
	}
	return dir, refs
}

// peakHeap samples the live heap until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak }
}

// BenchmarkImport measures `fhirgraph import` of `seed --patients N` output
// into a fresh embedded store (validation on), reporting resources/s and the
// peak live heap. Compare the sizes to see memory stay flat as input grows.
func BenchmarkImport(b *testing.B) {
	sizes := []int{250, 1000}
	if s := os.Getenv("FHIRGRAPH_BENCH_PATIENTS"); s != "" {
		n, _ := strconv.Atoi(s)
		sizes = []int{n}
	}
	for _, patients := range sizes {
		b.Run(fmt.Sprintf("patients=%d", patients), func(b *testing.B) {
			src, refs := seedFiles(b, patients)
			b.ResetTimer()
			var elapsed time.Duration
			var peak uint64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				data := b.TempDir()
				runtime.GC()
				b.StartTimer()
				stop := peakHeap()
				start := time.Now()
				var out syncBuffer
				err := app.Run(context.Background(), []string{"import", "--data", data, "--log-level", "error", src}, noEnv, &out, &out)
				elapsed += time.Since(start)
				peak = max(peak, stop())
				if err != nil {
					b.Fatalf("import: %v\n%s", err, out.String())
				}
			}
			b.ReportMetric(float64(len(refs)*b.N)/elapsed.Seconds(), "resources/s")
			b.ReportMetric(float64(len(refs)), "resources")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// BenchmarkReadByID measures GET /fhir/{type}/{id} over HTTP with concurrent
// clients against a store holding `seed --patients 100` data, reporting the
// median and p99 latency and requests/s.
func BenchmarkReadByID(b *testing.B) {
	src, refs := seedFiles(b, 100)
	dir := b.TempDir()
	var out syncBuffer
	if err := app.Run(context.Background(), []string{"import", "--data", dir, "--log-level", "error", src}, noEnv, &out, &out); err != nil {
		b.Fatalf("import: %v\n%s", err, out.String())
	}
	s := start(b, dir)
	for _, clients := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			lat := make([]time.Duration, b.N)
			var next int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			b.ResetTimer()
			begin := time.Now()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						resp, err := s.get(client, s.base+"/"+refs[int(i)%len(refs)])
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						lat[i] = time.Since(t0)
						if resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			total := time.Since(begin)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/total.Seconds(), "reads/s")
		})
	}
}

// BenchmarkSearch measures search over HTTP (first page, _count=50) against
// `seed --patients N` data, one client, reporting the median and p99
// latency: a few hand-picked forms, then every US Core SHALL search and
// combination, with values taken from patient p0042's resources.
// FHIRGRAPH_BENCH_PATIENTS sets N (default 100); FHIRGRAPH_BENCH_DATA keeps
// the store in that folder, importing only when it is empty, so that large
// sizes are loaded once.
func BenchmarkSearch(b *testing.B) {
	s := benchServer(b)
	var p struct {
		Name       []struct{ Family string }
		Identifier []struct{ System, Value string }
	}
	json.Unmarshal(s.do("GET", "Patient/p0042", nil).body, &p)
	forms := []string{
		"Observation?patient=p0042&category=laboratory",
		"Observation?patient=p0042&code=http://loinc.org|8867-4",
		"Observation?patient=p0042&category=vital-signs&date=ge2024-01-01",
		"Condition?patient=p0042",
		"MedicationRequest?patient=p0042&intent=order,plan",
		"Encounter?patient=p0042",
		"Procedure?patient=p0042&date=ge2020",
		"Patient?name=" + p.Name[0].Family,
		"Patient?identifier=" + p.Identifier[0].System + "|" + p.Identifier[0].Value,
	}
	forms = append(forms, shallForms(b, s, "p0042")...)
	client := &http.Client{}
	for _, form := range forms {
		b.Run(form, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				resp, err := s.get(client, s.base+"/"+form+"&_count=50")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// benchServer starts a server on `seed --patients N` data:
// FHIRGRAPH_BENCH_PATIENTS sets N (default 100); FHIRGRAPH_BENCH_DATA keeps
// the store in that folder, importing only when it is empty.
func benchServer(b *testing.B, args ...string) *server {
	patients := 100
	if s := os.Getenv("FHIRGRAPH_BENCH_PATIENTS"); s != "" {
		patients, _ = strconv.Atoi(s)
	}
	dir := os.Getenv("FHIRGRAPH_BENCH_DATA")
	if dir == "" {
		dir = b.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "fhirgraph.db")); err != nil {
		src, _ := seedFiles(b, patients)
		var out syncBuffer
		if err := app.Run(context.Background(), []string{"import", "--data", dir, "--log-level", "error", src}, noEnv, &out, &out); err != nil {
			b.Fatalf("import: %v\n%s", err, out.String())
		}
	}
	return start(b, dir, args...)
}

// get sends a GET with the server's bearer token, as a client of the API
// does: what the benchmarks time includes authorization.
func (s *server) get(c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	return c.Do(req)
}

// shallForms spells one query for each US Core SHALL search, with the
// values of a resource of the patient's (or, for types outside the Patient
// compartment, one of the first page of the type). Searches the data has no
// resource for are left out, and logged.
func shallForms(b *testing.B, s *server, patient string) []string {
	var forms []string
	samples := map[string][]map[string]any{}
	for _, sr := range shallSearches(b) {
		all, ok := samples[sr.Type]
		if !ok {
			path := sr.Type + "?_count=20"
			switch {
			case sr.Type == "Patient":
				path = "Patient?_id=" + patient
			case len(fhirschema.Search().Resource(sr.Type).PatientCompartment) > 0:
				path = "Patient/" + patient + "/" + sr.Type + "?_count=20"
			}
			var bundle struct {
				Entry []struct{ Resource map[string]any }
			}
			if err := json.Unmarshal(s.do("GET", path, nil).body, &bundle); err != nil {
				b.Fatal(err)
			}
			for _, e := range bundle.Entry {
				all = append(all, e.Resource)
			}
			samples[sr.Type] = all
		}
		queries := shallQueries(sr, all)
		if len(queries) == 0 {
			b.Logf("no data for %s?%s", sr.Type, strings.Join(sr.Params, "&"))
			continue
		}
		forms = append(forms, sr.Type+"?"+queries[0].values.Encode())
	}
	return forms
}

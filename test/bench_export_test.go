package test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkExport measures a system-level Bulk Data export of the seed
// data (see benchServer) end to end as a bulk client sees it: kick-off,
// polling as the server's Retry-After says (at most every 100 ms), and
// downloading every file, reporting resources per second from kick-off
// to the last byte, the job's own time (kick-off to a complete manifest),
// the peak Go heap, and the process's peak RSS (server and client share
// the process; RSS includes the database pages the store maps, which are
// the operating system's file cache, not heap).
func BenchmarkExport(b *testing.B) {
	s := benchServer(b)
	// Export jobs run for a registered client (the registry is checked at
	// every checkpoint).
	out, err := cliEnv(b, noEnv, "client", "create", "--data", s.dir, "--name", "bench exporter", "--kind", "backend",
		"--scope", "system/*.rs", "--secret", "--practice", testPractice, "--json", "--log-level", "error")
	var c createdClient
	if err != nil || json.Unmarshal([]byte(strings.TrimSpace(out)), &c) != nil {
		b.Fatalf("client create: %v\n%s", err, out)
	}
	s = s.as(s.mint("--scope", "system/*.rs", "--practice", testPractice, "--client-id", c.ClientID))
	client := &http.Client{}
	do := func(method, url string, headers ...string) *http.Response {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	before := procStatus("VmRSS:")
	heap := peakHeap()
	for b.Loop() {
		start := time.Now()
		resp := do("GET", s.base+"/$export", "Accept: application/fhir+json", "Prefer: respond-async")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status := resp.Header.Get("Content-Location")
		if resp.StatusCode != http.StatusAccepted || status == "" {
			b.Fatalf("kick-off: %d", resp.StatusCode)
		}
		var manifest struct {
			Output []struct {
				Type, URL string
				Count     int
			}
		}
		for {
			resp := do("GET", status)
			if resp.StatusCode == http.StatusOK {
				err := json.NewDecoder(resp.Body).Decode(&manifest)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusTooManyRequests {
				b.Fatalf("status: %d", resp.StatusCode)
			}
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && time.Duration(s)*time.Second < wait {
				wait = time.Duration(s) * time.Second
			}
			time.Sleep(wait)
		}
		job := time.Since(start)
		lines, want := 0, 0
		for _, o := range manifest.Output {
			want += o.Count
			resp := do("GET", o.URL, "Accept: application/fhir+ndjson")
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d", o.URL, resp.StatusCode)
			}
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 64<<20)
			for sc.Scan() {
				lines++
			}
			resp.Body.Close()
			if err := sc.Err(); err != nil {
				b.Fatal(err)
			}
		}
		total := time.Since(start)
		if lines != want || lines == 0 {
			b.Fatalf("downloaded %d lines, the manifest counts %d", lines, want)
		}
		b.ReportMetric(float64(lines)/total.Seconds(), "resources/s")
		b.ReportMetric(float64(lines)/job.Seconds(), "job-resources/s")
		b.ReportMetric(float64(lines), "resources")
		b.ReportMetric(float64(len(manifest.Output)), "files")
	}
	b.ReportMetric(float64(heap())/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(before)/(1<<20), "RSS-before-MB")
	b.ReportMetric(float64(procStatus("VmHWM:"))/(1<<20), "peak-RSS-MB")
	runtime.KeepAlive(s)
}

// procStatus reads a size from /proc/self/status (VmRSS: resident set,
// VmHWM: its peak), in bytes; 0 where /proc does not tell.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

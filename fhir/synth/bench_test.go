package synth

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// BenchmarkGenerate reports generator throughput in resources per second;
// the two sizes show per-resource cost does not rise with patient count.
func BenchmarkGenerate(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run("patients="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			resources := 0
			for b.Loop() {
				if err := Generate(Options{Patients: n, Seed: 1}, func(*fhirjson.Object) error {
					resources++
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
			b.ReportMetric(float64(resources)/float64(b.N*n), "resources/patient")
		})
	}
}

// BenchmarkGenerateAndMarshal adds serialization, as the seed command does
// when it writes NDJSON.
func BenchmarkGenerateAndMarshal(b *testing.B) {
	resources, size := 0, 0
	for b.Loop() {
		if err := Generate(Options{Patients: 200, Seed: 1}, func(r *fhirjson.Object) error {
			resources++
			size += len(fhirjson.Marshal(r))
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size / b.N))
	b.ReportMetric(float64(resources)/b.Elapsed().Seconds(), "resources/s")
}

// TestLiveHeapStaysFlatAsPatientsGrow measures the live heap (after a
// forced collection) early and late in a long run: streaming generation
// must not retain earlier patients.
func TestLiveHeapStaysFlatAsPatientsGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 1,500 patients")
	}
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	samples := map[string]uint64{}
	err := Generate(Options{Patients: 1500, Seed: 1, CohortLimit: 50}, func(r *fhirjson.Object) error {
		if id := r.String("id"); r.String("resourceType") == "Patient" && (id == "p0200" || id == "p1500") {
			samples[id] = live()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	early, late := samples["p0200"], samples["p1500"]
	if early == 0 || late == 0 {
		t.Fatalf("samples not taken: %v", samples)
	}
	// 1,300 more patients would retain tens of megabytes if resources or
	// patients were kept; allow for allocator noise only.
	const slack = 256 << 10
	if late > early+slack {
		t.Errorf("live heap grew from %d to %d bytes over 1,300 patients", early, late)
	}
	t.Logf("live heap at patient 200: %d B, at patient 1500: %d B", early, late)
}

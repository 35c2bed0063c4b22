package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// Benchmarks of the engine alone, on Observations shaped like a lab import:
// ~1.6 KB of JSON, 15 search index values (codes from a small set,
// references clustered by patient, random dates, values and identifiers,
// random UUID ids) and one patient compartment.
//
//	go test -run '^$' -bench . -benchtime 40000x ./store/sqlite

const benchBatch = 500

// benchObservation is the write of the i-th generated Observation.
func benchObservation(i int, rng *rand.Rand) store.Write {
	id := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Uint64()&(1<<48-1))
	patient := fmt.Sprintf("pat-%06d", i/50)
	encounter := fmt.Sprintf("enc-%07d", i/10)
	code := fmt.Sprintf("%d-%d", 1000+rng.IntN(200), rng.IntN(10))
	effective := time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(10 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	value := fmt.Sprintf("%d.%d", rng.IntN(300), rng.IntN(10))
	performer := fmt.Sprintf("prac-%03d", rng.IntN(50))
	ident := fmt.Sprintf("%016x", rng.Uint64())

	var b strings.Builder
	fmt.Fprintf(&b, `{"resourceType":"Observation","id":%q,"meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"]},`, id)
	fmt.Fprintf(&b, `"identifier":[{"system":"urn:oid:2.16.840.1.113883.19.5","value":%q}],"status":"final",`, ident)
	b.WriteString(`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}],"text":"Laboratory"}],`)
	fmt.Fprintf(&b, `"code":{"coding":[{"system":"http://loinc.org","code":%q,"display":"Hemoglobin [Mass/volume] in Blood"}],"text":"Hemoglobin"},`, code)
	fmt.Fprintf(&b, `"subject":{"reference":"Patient/%s","display":"Ann Smith"},"encounter":{"reference":"Encounter/%s"},`, patient, encounter)
	fmt.Fprintf(&b, `"effectiveDateTime":%q,"issued":%q,`, effective.Format(time.RFC3339), effective.Add(time.Hour).Format(time.RFC3339))
	fmt.Fprintf(&b, `"performer":[{"reference":"Practitioner/%s","display":"Dr. Jones"},{"reference":"Organization/org-1","display":"Acme Lab"}],`, performer)
	fmt.Fprintf(&b, `"valueQuantity":{"value":%s,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"},`, value)
	b.WriteString(`"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N","display":"Normal"}],"text":"Normal"}],`)
	b.WriteString(`"referenceRange":[{"low":{"value":12,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"},"high":{"value":16,"unit":"g/dL","system":"http://unitsofmeasure.org","code":"g/dL"},"text":"12.0-16.0 g/dL"}],`)
	b.WriteString(`"specimen":{"reference":"Specimen/spec-1","display":"Venous blood"},"device":{"display":"Analyzer XR-200"},`)
	b.WriteString(`"note":[{"text":"Specimen received in good condition. Result verified by a second technologist; no interfering substances detected. Repeat in 3 months if clinically indicated."}]}`)
	content := []byte(b.String())

	day := effective.Format("2006-01-02")
	return store.Write{
		Op: store.OpCreate, Type: "Observation", ID: id,
		Content: content, Hash: store.HashContent(content),
		Stamp:        benchStamp(content),
		Practice:     "practice-1",
		Compartments: []string{"Patient/" + patient},
		Index: []store.IndexValue{
			{Param: "_id", Value: id},
			{Param: "_lastUpdated", Low: "2024-05-01T10:00:00.000", High: "2024-05-01T10:00:00.999"},
			{Param: "_profile", Value: "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"},
			{Param: "status", Value: "final"},
			{Param: "category", Value: "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
			{Param: "category", Value: "laboratory"},
			{Param: "code", Value: "http://loinc.org|" + code},
			{Param: "code", Value: code},
			{Param: "subject", Value: "Patient/" + patient},
			{Param: "patient", Value: "Patient/" + patient},
			{Param: "encounter", Value: "Encounter/" + encounter},
			{Param: "date", Low: day + "T00:00:00.000", High: day + "T23:59:59.999"},
			{Param: "value-quantity", Value: "http://unitsofmeasure.org|g/dL", Low: fmt.Sprintf("%012s", value), High: fmt.Sprintf("%012s", value)},
			{Param: "performer", Value: "Practitioner/" + performer},
			{Param: "identifier", Value: "urn:oid:2.16.840.1.113883.19.5|" + ident},
		},
	}
}

// benchStamp splices meta.versionId and meta.lastUpdated into the content,
// about what the FHIR layer's Stamp costs.
func benchStamp(content []byte) func(int64, time.Time) ([]byte, error) {
	return func(v int64, at time.Time) ([]byte, error) {
		out := make([]byte, 0, len(content)+80)
		out = append(out, `{"meta":{"versionId":"`...)
		out = fmt.Appendf(out, "%d", v)
		out = append(out, `","lastUpdated":"`...)
		out = at.AppendFormat(out, "2006-01-02T15:04:05.000Z07:00")
		out = append(out, `"},`...)
		return append(out, content[1:]...), nil
	}
}

func benchWrites(n int, seed uint64) []store.Write {
	rng := rand.New(rand.NewPCG(seed, 1))
	ws := make([]store.Write, n)
	for i := range ws {
		ws[i] = benchObservation(i, rng)
	}
	return ws
}

func applyBatches(b *testing.B, s *Store, writes []store.Write) {
	ctx := context.Background()
	for i := 0; i < len(writes); i += benchBatch {
		if _, err := s.Apply(ctx, writes[i:min(i+benchBatch, len(writes))]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyCreate500 creates b.N resources in Apply calls of 500.
func BenchmarkApplyCreate500(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	writes := benchWrites(b.N, 1)
	b.SetBytes(int64(len(writes[0].Content)))
	b.ResetTimer()
	applyBatches(b, s, writes)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkApplyUpdate500 updates b.N existing resources in Apply calls of
// 500 (new version, index values replaced).
func BenchmarkApplyUpdate500(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	writes := benchWrites(b.N, 1)
	applyBatches(b, s, writes)
	updates := benchWrites(b.N, 2)
	for i := range updates {
		updates[i].Op, updates[i].ID = store.OpUpdate, writes[i].ID
	}
	b.SetBytes(int64(len(writes[0].Content)))
	b.ResetTimer()
	applyBatches(b, s, updates)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkApplySingle creates resources one Apply (one transaction) each,
// as single REST creates do.
func BenchmarkApplySingle(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	writes := benchWrites(b.N, 1)
	ctx := context.Background()
	b.ResetTimer()
	for i := range writes {
		if _, err := s.Apply(ctx, writes[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
}

const benchReadResources = 50_000

// BenchmarkRead reads resources by id, from as many goroutines as
// GOMAXPROCS (-cpu sets it), out of a store of 50,000.
func BenchmarkRead(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	writes := benchWrites(benchReadResources, 3)
	applyBatches(b, s, writes)
	ids := make([]string, len(writes))
	for i, w := range writes {
		ids[i] = w.ID
	}
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			r, err := s.Read(ctx, "Observation", ids[rng.IntN(len(ids))])
			if err != nil || len(r.Body) == 0 {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecordCreate creates platform records (a session-like document
// with one key), one transaction each.
func BenchmarkRecordCreate(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	c := s.Collection(store.CollectionDef{Name: "sessions", Keys: []string{"user"}})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	b.ResetTimer()
	for i := range b.N {
		data := fmt.Appendf(nil, `{"user":"u%d","scopes":["patient/*.read","openid","fhirUser"],"csrf":"%016x"}`, i%1000, i)
		if _, err := c.Create(ctx, store.Record{ID: fmt.Sprint("s", i), Data: data, ExpiresAt: exp}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordGet reads platform records by id.
func BenchmarkRecordGet(b *testing.B) {
	s := openTest(b, b.TempDir(), Options{})
	c := s.Collection(store.CollectionDef{Name: "sessions", Keys: []string{"user"}})
	ctx := context.Background()
	for i := range 1000 {
		if _, err := c.Create(ctx, store.Record{ID: fmt.Sprint("s", i), Data: []byte(`{"user":"u"}`)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := c.Get(ctx, fmt.Sprint("s", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

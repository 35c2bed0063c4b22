package audit_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/sqlite"
)

// counting is the real SQLite store, counting ApplyEach calls and, when
// gate is set, holding each until gate is closed.
type counting struct {
	store.Store
	calls   atomic.Int64
	entered chan struct{}
	gate    chan struct{}
}

func (c *counting) ApplyEach(ctx context.Context, w []store.Write) ([]store.Result, []error, error) {
	c.calls.Add(1)
	if c.gate != nil {
		c.entered <- struct{}{}
		select {
		case <-c.gate:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return c.Store.ApplyEach(ctx, w)
}

func openStore(t testing.TB) *counting {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &counting{Store: st}
}

func event(i int) audit.Event {
	return audit.Event{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ClientID: "app", User: "Patient/p1", UserKind: "patient",
		Interaction: "read", Type: "Observation", IDs: []string{"o" + string(rune('a'+i))}, Status: 200, Source: "192.0.2.7",
	}
}

// auditEvents returns the stored AuditEvents matching the search query.
func auditEvents(t *testing.T, st store.Store, query string) []map[string]any {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	s, err := search.Compile("AuditEvent", q, search.Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Query.Count = 100
	page, err := st.Search(context.Background(), s.Query)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, r := range page.Resources {
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecorderWritesFullBatchesWithOneApplyEachAndTheRestOnClose(t *testing.T) {
	st := openStore(t)
	r := audit.New(st, audit.Options{BatchSize: 3, FlushInterval: time.Hour})
	for i := range 5 {
		r.Record(event(i))
	}
	waitFor(t, "the first batch", func() bool { return r.Stats().Written == 3 })
	if got := st.calls.Load(); got != 1 {
		t.Fatalf("ApplyEach calls after one full batch = %d, want 1", got)
	}
	if got := len(auditEvents(t, st, "")); got != 3 {
		t.Fatalf("stored AuditEvents before Close = %d, want 3 (the partial batch waits for the interval)", got)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Stats(), (audit.Stats{Written: 5}); got != want {
		t.Fatalf("stats after Close = %+v, want %+v", got, want)
	}
	if got := st.calls.Load(); got != 2 {
		t.Fatalf("ApplyEach calls = %d, want 2", got)
	}
	if got := len(auditEvents(t, st, "")); got != 5 {
		t.Fatalf("stored AuditEvents after Close = %d, want 5", got)
	}
	r.Record(event(9))
	if got := r.Stats().Dropped; got != 1 {
		t.Fatalf("dropped after recording on a closed Recorder = %d, want 1", got)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRecorderFlushesAPartialBatchEveryInterval(t *testing.T) {
	st := openStore(t)
	r := audit.New(st, audit.Options{BatchSize: 100, FlushInterval: 10 * time.Millisecond})
	defer r.Close(context.Background())
	r.Record(event(0))
	waitFor(t, "the interval's flush", func() bool { return r.Stats().Written == 1 })
	if got := len(auditEvents(t, st, "subtype=read")); got != 1 {
		t.Fatalf("stored read AuditEvents = %d, want 1", got)
	}
}

func TestRecorderDropsAndCountsWhatAFullQueueCannotHold(t *testing.T) {
	st := openStore(t)
	st.entered, st.gate = make(chan struct{}, 10), make(chan struct{})
	r := audit.New(st, audit.Options{BatchSize: 1, FlushInterval: time.Hour, QueueSize: 2})
	r.Record(event(0))
	<-st.entered // the writer holds event 0 in a store call that waits
	start := time.Now()
	for i := 1; i <= 5; i++ {
		r.Record(event(i))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Record waited %v on a stuck store", took)
	}
	if got := r.Stats(); got.Dropped != 3 || got.Written != 0 {
		t.Fatalf("stats with a full queue = %+v, want 3 dropped, none written yet", got)
	}
	close(st.gate)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Stats(), (audit.Stats{Written: 3, Dropped: 3}); got != want {
		t.Fatalf("stats = %+v, want %+v", got, want)
	}
	var ids []string
	for _, ae := range auditEvents(t, st, "") {
		ids = append(ids, ae["entity"].([]any)[0].(map[string]any)["what"].(map[string]any)["reference"].(string))
	}
	slices.Sort(ids)
	if want := []string{"Observation/oa", "Observation/ob", "Observation/oc"}; !slices.Equal(ids, want) {
		t.Fatalf("written entities %v, want %v (the first three)", ids, want)
	}
}

func TestRecorderCloseGivesUpWhenItsContextEnds(t *testing.T) {
	st := openStore(t)
	st.entered, st.gate = make(chan struct{}, 10), make(chan struct{})
	r := audit.New(st, audit.Options{BatchSize: 1, FlushInterval: time.Hour})
	r.Record(event(0))
	r.Record(event(1))
	<-st.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close on a stuck store = %v, want the deadline", err)
		}
	}()
	wg.Wait()
	if got := r.Stats(); got.Written != 0 || got.Failed != 2 {
		t.Fatalf("stats = %+v, want both events failed", got)
	}
}

func TestEventsBecomeValidR4AuditEvents(t *testing.T) {
	when := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		e     audit.Event
		check map[string]string // JSON path (dotted, with indexes) → value
	}{
		{"patient user reads", audit.Event{Time: when, ClientID: "app", User: "Patient/p1", UserKind: "patient", Interaction: "read", Type: "Observation", IDs: []string{"o1"}, Status: 200, Source: "192.0.2.1"},
			map[string]string{"type.code": "rest", "type.system": audit.SystemEventType, "subtype.0.code": "read", "subtype.0.system": audit.SystemInteraction,
				"action": "R", "outcome": "0", "recorded": "2026-11-26T23:00:00.000Z", "agent.0.who.reference": "Patient/p1", "agent.0.requestor": "true",
				"agent.0.network.address": "192.0.2.1", "agent.1.who.identifier.value": "app", "agent.1.requestor": "false",
				"source.observer.display": "Fhirgraph", "entity.0.what.reference": "Observation/o1", "entity.1.what.reference": "Patient/p1"}},
		{"practitioner denied", audit.Event{Time: when, ClientID: "app", User: "Practitioner/d1", UserKind: "practitioner", Patient: "p2", Interaction: "update", Type: "Observation", IDs: []string{"o2"}, Status: 403},
			map[string]string{"action": "U", "outcome": "4", "agent.0.who.reference": "Practitioner/d1", "entity.0.what.reference": "Observation/o2", "entity.1.what.reference": "Patient/p2"}},
		{"backend search", audit.Event{Time: when, ClientID: "bulk", User: "bulk", Interaction: "search-type", Type: "Condition", Query: "patient=p3&_count=5", Status: 200},
			map[string]string{"action": "E", "agent.0.who.identifier.value": "bulk", "agent.0.requestor": "true",
				"entity.0.query": base64.StdEncoding.EncodeToString([]byte("Condition?patient=p3&_count=5")), "entity.1.what.reference": "Patient/p3"}},
		{"server failure in a compartment search", audit.Event{Time: when, ClientID: "app", User: "staff1", UserKind: "staff", Interaction: "search-compartment", Type: "Observation", Compartment: "Patient/p4", Status: 500},
			map[string]string{"outcome": "8", "agent.0.who.display": "staff1", "entity.0.query": base64.StdEncoding.EncodeToString([]byte("Patient/p4/Observation?")), "entity.1.what.reference": "Patient/p4"}},
		{"create", audit.Event{Time: when, ClientID: "app", User: "Patient/p5", UserKind: "patient", Interaction: "create", Type: "Patient", IDs: []string{"p5"}, Status: 201},
			map[string]string{"action": "C", "entity.0.what.reference": "Patient/p5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := tt.e.Resource()
			if err != nil {
				t.Fatal(err)
			}
			if issues := validate.Resource(obj); len(issues) > 0 {
				t.Fatalf("invalid AuditEvent %s: %+v", fhirjson.Marshal(obj), issues)
			}
			var m any
			if err := json.Unmarshal(fhirjson.Marshal(obj), &m); err != nil {
				t.Fatal(err)
			}
			for path, want := range tt.check {
				if got := lookup(m, path); got != want {
					t.Errorf("%s = %q, want %q in %s", path, got, want, fhirjson.Marshal(obj))
				}
			}
		})
	}
}

// lookup follows a dotted path (names and array indexes) and formats the
// value found; "<none>" when there is none.
func lookup(v any, path string) string {
	for _, part := range splitDots(path) {
		switch t := v.(type) {
		case map[string]any:
			v = t[part]
		case []any:
			i := 0
			for _, c := range part {
				i = i*10 + int(c-'0')
			}
			if i >= len(t) {
				return "<none>"
			}
			v = t[i]
		default:
			return "<none>"
		}
	}
	switch t := v.(type) {
	case string:
		return t
	case bool:
		if t {
			return "true"
		}
		return "false"
	}
	return "<none>"
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestRecorderNamesThePatientOfTheResourceRead(t *testing.T) {
	st := openStore(t)
	obs, err := fhirjson.Parse([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p9"}}`))
	if err != nil {
		t.Fatal(err)
	}
	wr, issues := resource.Prepare(store.OpCreate, "Observation", "o9", obs, "")
	if len(issues) > 0 {
		t.Fatal(issues)
	}
	if _, err := st.Apply(context.Background(), []store.Write{wr}); err != nil {
		t.Fatal(err)
	}
	r := audit.New(st, audit.Options{})
	r.Record(audit.Event{Time: time.Now(), ClientID: "app", User: "Practitioner/d1", UserKind: "practitioner", Practices: []string{"PRAC1"}, Interaction: "read", Type: "Observation", IDs: []string{"o9"}, Status: 200})
	r.Record(audit.Event{Time: time.Now(), ClientID: "app", User: "Practitioner/d1", UserKind: "practitioner", Practices: []string{"PRAC1", "PRAC2"}, Interaction: "read", Type: "Observation", IDs: []string{"missing"}, Status: 404})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"patient=p9", 1},
		{"patient=Patient/p9&outcome=0&action=R&agent=Practitioner/d1&entity=Observation/o9", 1},
		{"agent=Practitioner/d1", 2},
		{"outcome=4&entity=Observation/missing", 1},
		{"subtype=http://hl7.org/fhir/restful-interaction|read&type=rest&date=ge2020-01-01", 2},
		{"patient=p1", 0},
	} {
		if got := len(auditEvents(t, st, tt.query)); got != tt.want {
			t.Errorf("AuditEvent?%s: %d, want %d", tt.query, got, tt.want)
		}
	}
	// Owned by the token's one practice; unowned with several.
	for _, tt := range []struct {
		practice string
		want     int
	}{{"PRAC1", 1}, {"", 1}} {
		page, err := st.Search(context.Background(), store.Query{Type: "AuditEvent", Practices: []string{tt.practice}, Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Resources) != tt.want {
			t.Errorf("AuditEvents owned by %q: %d, want %d", tt.practice, len(page.Resources), tt.want)
		}
	}
}

// benchRecorder is a Recorder whose queue holds up to a million events, so
// the benchmarks measure the request path's cost rather than the store's
// (run them with -benchtime 200000x to stay within it; dropped/op says
// when they did not). Its cleanup abandons what is queued.
func benchRecorder(b *testing.B) *audit.Recorder {
	r := audit.New(openStore(b), audit.Options{QueueSize: min(b.N+1, 1<<20)})
	b.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r.Close(ctx)
	})
	return r
}

var benchEvent = audit.Event{ClientID: "app", User: "Patient/p1", UserKind: "patient", Interaction: "read", Type: "Observation", Status: 200, Source: "192.0.2.1"}

func BenchmarkRecord(b *testing.B) {
	r := benchRecorder(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := benchEvent
		e.Time, e.IDs = time.Now(), []string{"o1"}
		r.Record(e)
	}
	b.StopTimer()
	b.ReportMetric(float64(r.Stats().Dropped)/float64(b.N), "dropped/op")
}

func BenchmarkRecordParallel(b *testing.B) {
	r := benchRecorder(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := benchEvent
			e.Time, e.IDs = time.Now(), []string{"o1"}
			r.Record(e)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(r.Stats().Dropped)/float64(b.N), "dropped/op")
}

func TestEventPatientsNameOnlyWhatIsSurelyAPatient(t *testing.T) {
	tests := []struct {
		e    audit.Event
		want []string
	}{
		{audit.Event{Type: "Observation", Query: "patient=8,Patient/9&subject=Patient/7"}, []string{"Patient/7", "Patient/8", "Patient/9"}},
		{audit.Event{Type: "Observation", Query: "subject=123&subject=Group/1"}, nil},
		{audit.Event{Type: "Observation", Query: "subject:Patient=http://x.org/fhir/Patient/5"}, []string{"Patient/5"}},
		{audit.Event{Type: "Observation", Compartment: "Patient/4", User: "Practitioner/1", Patient: "4"}, []string{"Patient/4"}},
		{audit.Event{Type: "Patient", IDs: []string{"2", "1"}, User: "Patient/3"}, []string{"Patient/1", "Patient/2", "Patient/3"}},
		{audit.Event{Type: "Encounter", IDs: []string{"1"}}, nil},
	}
	for _, tt := range tests {
		if got := tt.e.Patients(); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: Patients() = %v, want %v", tt.e, got, tt.want)
		}
	}
}

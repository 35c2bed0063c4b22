package bulk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
	"github.com/fhirgraph/fhirgraph/store"
)

// load writes synthetic patients and the resources given.
func load(t *testing.T, st store.Store, patients int, extra ...string) {
	t.Helper()
	items := func(emit func(ingest.Item) error) error {
		if err := synth.Generate(synth.Options{Patients: patients, Seed: 1}, func(obj *fhirjson.Object) error {
			return emit(ingest.Item{Where: "synth", Obj: obj})
		}); err != nil {
			return err
		}
		for i, raw := range extra {
			obj, err := fhirjson.Parse([]byte(raw))
			if err != nil {
				return err
			}
			if err := emit(ingest.Item{Where: "extra", Line: i + 1, Obj: obj}); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := ingest.Load(context.Background(), st, items, ingest.Options{Strict: true, Base: base}); err != nil {
		t.Fatal(err)
	}
}

// runAll runs every queued job to its end in this goroutine.
func runAll(t *testing.T, s *Service) {
	t.Helper()
	ctx := context.Background()
	for {
		j, err := s.claim(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			return
		}
		if err := s.run(ctx, "test", j); err != nil {
			t.Fatal(err)
		}
	}
}

// lines reads a completed job's output: type/id → how many times.
func lines(t *testing.T, s *Service, st store.Store, id string) map[string]int {
	t.Helper()
	ctx := context.Background()
	j, err := s.jobs.get(ctx, id)
	if err != nil || j.State != Completed {
		t.Fatalf("job %+v: %v", j, err)
	}
	seen := map[string]int{}
	for _, f := range j.Output {
		rc, _, err := st.Files().OpenFile(ctx, dir(id)+f.Name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(nil, 1<<20)
		n := 0
		for sc.Scan() {
			var r struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ResourceType != f.Type {
				t.Fatalf("%s: line %q: %v", f.Name, sc.Text(), err)
			}
			seen[r.ResourceType+"/"+r.ID]++
			n++
		}
		rc.Close()
		if n != f.Count {
			t.Errorf("%s: %d lines, count %d", f.Name, n, f.Count)
		}
	}
	return seen
}

func TestAResourceOfPatientsInTwoChunksIsWrittenOnce(t *testing.T) {
	defer func(n int) { patientChunk = n }(patientChunk)
	patientChunk = 1
	s, st, now := newService(t, Config{PartSize: 4})
	ctx := context.Background()
	load(t, st, 2)
	page, err := st.Search(ctx, store.Query{Type: "Patient", Count: 10})
	if err != nil || len(page.Resources) != 2 {
		t.Fatalf("patients: %v", err)
	}
	a, b := page.Resources[0].ID, page.Resources[1].ID
	load(t, st, 0, `{"resourceType":"Observation","id":"both","status":"final","code":{"text":"x"},`+
		`"subject":{"reference":"Patient/`+a+`"},"performer":[{"reference":"Patient/`+b+`"}]}`)
	reg := registry.New(st, registry.Options{})
	if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: "Test", PIN: "TEST"}); err != nil {
		t.Fatal(err)
	}
	c, _, err := reg.CreateClient(ctx, registry.ClientSpec{Name: "x", Kind: registry.KindBackend, Scope: "system/*.rs", Secret: true, Practices: []string{"TEST"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := claims(c.ID)
	cl.Practices = []string{"TEST"}
	*now = time.Now()
	spec := Spec{Level: GroupLevel, Types: []string{"Patient", "Observation", "Condition"}, Patients: []string{a, b}, Base: base}
	j, err := s.Submit(ctx, cl, spec, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	runAll(t, s)
	seen := lines(t, s, st, j.ID)
	if seen["Observation/both"] != 1 {
		t.Errorf("Observation/both written %d times", seen["Observation/both"])
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s written %d times", k, n)
		}
	}
	for _, typ := range spec.Types {
		q := store.Query{Type: typ, Compartments: []string{"Patient/" + a, "Patient/" + b}, CountOnly: true, Total: true}
		pg, err := st.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for k := range seen {
			if len(k) > len(typ) && k[:len(typ)+1] == typ+"/" {
				got++
			}
		}
		if got != pg.Total || got == 0 {
			t.Errorf("%s: %d written, %d in the patients' compartments", typ, got, pg.Total)
		}
	}
	if !slices.ContainsFunc(j.Spec.Types, func(s string) bool { return s == "Observation" }) {
		t.Fatal("spec lost its types")
	}
}

// loadAs writes resources owned by practice.
func loadAs(t *testing.T, st store.Store, practice string, raws ...string) {
	t.Helper()
	items := func(emit func(ingest.Item) error) error {
		for i, raw := range raws {
			obj, err := fhirjson.Parse([]byte(raw))
			if err != nil {
				return err
			}
			if err := emit(ingest.Item{Where: "test", Line: i + 1, Obj: obj}); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := ingest.Load(context.Background(), st, items, ingest.Options{Strict: true, Base: base, Practice: practice}); err != nil {
		t.Fatal(err)
	}
}

func TestAVersionAtTheTransactionTimeIsExportedOnlyToItsOwnPractice(t *testing.T) {
	s, st, now := newService(t, Config{})
	ctx := context.Background()
	reg := registry.New(st, registry.Options{})
	for _, pin := range []string{"ALPHA", "BRAVO"} {
		if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: pin, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := reg.CreateClient(ctx, registry.ClientSpec{Name: "x", Kind: registry.KindBackend, Scope: "system/*.rs", Secret: true, Practices: []string{"BRAVO"}})
	if err != nil {
		t.Fatal(err)
	}
	patient := func(id, family string) string {
		return `{"resourceType":"Patient","id":"` + id + `","name":[{"family":"` + family + `"}]}`
	}
	// moved and gone are ALPHA's at the kick-off and BRAVO's since (gone
	// then deleted); kept is BRAVO's throughout.
	loadAs(t, st, "ALPHA", patient("moved", "Alpha"), patient("gone", "Alpha"))
	loadAs(t, st, "BRAVO", patient("kept", "Bravo"))
	*now = time.Now()
	cl := claims(c.ID)
	cl.Practices = []string{"BRAVO"}
	j, err := s.Submit(ctx, cl, Spec{Level: SystemLevel, Types: []string{"Patient"}, Base: base}, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	loadAs(t, st, "BRAVO", patient("moved", "Bravo"), patient("gone", "Bravo"), patient("kept", "Later"))
	if _, err := st.Apply(ctx, []store.Write{{Op: store.OpDelete, Type: "Patient", ID: "gone"}}); err != nil {
		t.Fatal(err)
	}
	runAll(t, s)
	// BRAVO's own resource, changed since too, is there as it was.
	if seen := lines(t, s, st, j.ID); len(seen) != 1 || seen["Patient/kept"] != 1 {
		t.Errorf("a BRAVO token's export holds %v, want Patient/kept only", seen)
	}
}

func TestAnExportFailsWhenItsClientLosesItsStanding(t *testing.T) {
	tests := []struct {
		name   string
		change func(ctx context.Context, st store.Store, reg *registry.Registry, id string) error
		reason string
	}{
		{"a practice withdraws its consent", func(ctx context.Context, _ store.Store, reg *registry.Registry, id string) error {
			_, err := reg.SetClientPractices(ctx, id, []string{"BRAVO"})
			return err
		}, "practice ALPHA no longer consents"},
		{"the client is suspended", func(ctx context.Context, _ store.Store, reg *registry.Registry, id string) error {
			_, err := reg.SetClientStatus(ctx, id, registry.StatusSuspended)
			return err
		}, "suspended"},
		{"the token is revoked", func(ctx context.Context, st store.Store, _ *registry.Registry, _ string) error {
			return token.NewDenylist(st, token.DenylistOptions{}).Revoke(ctx, "kickoff-jti", time.Now().Add(time.Hour))
		}, "access token was revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The first worker stops at its first page, as if it died; the
			// export is resumed by another after the change.
			killed := false
			s, st, now := newService(t, Config{PartSize: 1, Lease: time.Second, AfterPage: func(job string, page int) bool {
				stop := !killed
				killed = true
				return stop
			}})
			ctx := context.Background()
			reg := registry.New(st, registry.Options{})
			for _, pin := range []string{"ALPHA", "BRAVO"} {
				if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: pin, PIN: pin}); err != nil {
					t.Fatal(err)
				}
			}
			c, _, err := reg.CreateClient(ctx, registry.ClientSpec{Name: "x", Kind: registry.KindBackend, Scope: "system/*.rs", Secret: true, Practices: []string{"ALPHA", "BRAVO"}})
			if err != nil {
				t.Fatal(err)
			}
			loadAs(t, st, "ALPHA", `{"resourceType":"Patient","id":"a1"}`, `{"resourceType":"Patient","id":"a2"}`)
			*now = time.Now()
			cl := claims(c.ID)
			cl.Practices = []string{"ALPHA", "BRAVO"}
			cl.ID = "kickoff-jti"
			j, err := s.Submit(ctx, cl, Spec{Level: SystemLevel, Types: []string{"Patient"}, Base: base}, "r", nil)
			if err != nil {
				t.Fatal(err)
			}
			w, err := s.claim(ctx, "w1")
			if err != nil || w == nil {
				t.Fatalf("claim: %v", err)
			}
			if err := s.run(ctx, "w1", w); !errors.Is(err, errKilled) {
				t.Fatalf("first run: %v", err)
			}
			if err := tc.change(ctx, st, reg, c.ID); err != nil {
				t.Fatal(err)
			}
			*now = now.Add(2 * time.Second)
			runAll(t, s)
			got, err := s.jobs.get(ctx, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != Failed || !strings.Contains(got.Failure, tc.reason) || len(got.Output) != 0 {
				t.Fatalf("job %s (%s), output %+v; want failed: %s", got.State, got.Failure, got.Output, tc.reason)
			}
		})
	}
}

// A resource that moved into an exported patient's compartment after the
// transaction time belonged to another patient then: its version of then
// is not the exported patient's to have.
func TestAVersionOfAnotherPatientIsNotExported(t *testing.T) {
	s, st, now := newService(t, Config{})
	ctx := context.Background()
	reg := registry.New(st, registry.Options{})
	if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: "ALPHA", PIN: "ALPHA"}); err != nil {
		t.Fatal(err)
	}
	c, _, err := reg.CreateClient(ctx, registry.ClientSpec{Name: "x", Kind: registry.KindBackend, Scope: "system/*.rs", Secret: true, Practices: []string{"ALPHA"}})
	if err != nil {
		t.Fatal(err)
	}
	obs := func(subject string) string {
		return `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/` + subject + `"}}`
	}
	patient := func(id string) string { return `{"resourceType":"Patient","id":"` + id + `"}` }
	loadAs(t, st, "ALPHA", patient("p1"), patient("p2"), obs("p2"))
	*now = time.Now()
	cl := claims(c.ID)
	cl.Practices = []string{"ALPHA"}
	j, err := s.Submit(ctx, cl, Spec{Level: PatientLevel, Types: []string{"Observation"}, Patients: []string{"p1"}, Base: base}, "r", nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	loadAs(t, st, "ALPHA", obs("p1"))
	runAll(t, s)
	if seen := lines(t, s, st, j.ID); seen["Observation/o"] != 0 {
		t.Errorf("p1's export holds p2's observation as it was: %v", seen)
	}
}

package bulk

import (
	"bufio"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
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

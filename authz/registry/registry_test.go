package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/enginetest"
)

func TestMain(m *testing.M) { enginetest.Main(m) }

// testKDF keeps the tests fast; the code path is the production one, and
// the benchmark measures DefaultKDF.
var testKDF = KDF{Memory: 64, Time: 1, Threads: 1}

// onEngines runs one test body on a fresh store of each engine.
func onEngines(t *testing.T, test func(t *testing.T, st store.Store)) { enginetest.Each(t, test) }

func newTestRegistry(st store.Store) *Registry { return New(st, Options{KDF: testKDF}) }

// putResource stores a minimal resource typ/id.
func putResource(t *testing.T, st store.Store, typ, id string) {
	t.Helper()
	content := []byte(fmt.Sprintf(`{"resourceType":%q,"id":%q}`, typ, id))
	_, err := st.Apply(context.Background(), []store.Write{{
		Op: store.OpUpdate, Type: typ, ID: id, Content: content, Hash: store.HashContent(content),
		Stamp: func(v int64, at time.Time) ([]byte, error) {
			return []byte(fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":"%d","lastUpdated":%q}}`, typ, id, v, at.Format(time.RFC3339Nano))), nil
		},
	}})
	if err != nil {
		t.Fatalf("store %s/%s: %v", typ, id, err)
	}
}

// rawRecord is a record's stored bytes.
func rawRecord(t *testing.T, st store.Store, def store.CollectionDef, id string) store.Record {
	t.Helper()
	rec, err := st.Collection(def).Get(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s/%s: %v", def.Name, id, err)
	}
	return rec
}

// fields lists the fields of a validation error, in order.
func fields(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("validation error %v is not ErrInvalid", err)
	}
	var out []string
	for _, p := range ve.Problems {
		if p.Message == "" {
			t.Errorf("problem on %s has no message", p.Field)
		}
		out = append(out, p.Field)
	}
	return out
}

func wantFields(t *testing.T, err error, want ...string) {
	t.Helper()
	got := fields(t, err)
	if !slices.Equal(got, want) {
		t.Errorf("problems on %v, want %v (%v)", got, want, err)
	}
}

func TestPractices(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		r := newTestRegistry(st)
		p, err := r.CreatePractice(ctx, PracticeSpec{Name: " Lakeside Oncology ", PIN: "onc01"})
		if err != nil {
			t.Fatal(err)
		}
		if p.PIN != "ONC01" || p.Name != "Lakeside Oncology" || p.Status != StatusActive || p.Created.IsZero() {
			t.Errorf("created %+v", p)
		}
		if _, err := r.CreatePractice(ctx, PracticeSpec{Name: "Other", PIN: "Onc01"}); !errors.Is(err, ErrExists) {
			t.Errorf("second practice with PIN ONC01: %v, want ErrExists", err)
		}
		got, err := r.GetPractice(ctx, "onc01")
		if err != nil || got.Name != "Lakeside Oncology" {
			t.Errorf("GetPractice = %+v, %v", got, err)
		}
		if _, err := r.GetPractice(ctx, "NOPE1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetPractice of an unknown PIN: %v", err)
		}
		if _, err := r.CreatePractice(ctx, PracticeSpec{Name: "Peds", PIN: "PEDS2"}); err != nil {
			t.Fatal(err)
		}
		all, err := r.ListPractices(ctx)
		if err != nil || len(all) != 2 || all[0].PIN != "ONC01" || all[1].PIN != "PEDS2" {
			t.Errorf("ListPractices = %+v, %v", all, err)
		}
		s, err := r.SetPracticeStatus(ctx, "peds2", StatusSuspended)
		if err != nil || s.Status != StatusSuspended {
			t.Errorf("SetPracticeStatus = %+v, %v", s, err)
		}
		if _, err := r.SetPracticeStatus(ctx, "PEDS2", "gone"); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetPracticeStatus to an unknown status: %v", err)
		}
		if _, err := r.SetPracticeStatus(ctx, "NOPE1", StatusSuspended); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetPracticeStatus of an unknown PIN: %v", err)
		}
	})
}

func TestPracticeValidation(t *testing.T) {
	onEngines(t, func(t *testing.T, st store.Store) {
		testPracticeValidation(t, newTestRegistry(st))
	})
}

func testPracticeValidation(t *testing.T, r *Registry) {
	for _, tc := range []struct {
		name   string
		spec   PracticeSpec
		fields []string
	}{
		{"PIN too short", PracticeSpec{Name: "A", PIN: "ab1"}, []string{"pin"}},
		{"PIN too long", PracticeSpec{Name: "A", PIN: "abcdefghijk12"}, []string{"pin"}},
		{"PIN with a symbol", PracticeSpec{Name: "A", PIN: "ab-12"}, []string{"pin"}},
		{"PIN missing", PracticeSpec{Name: "A"}, []string{"pin"}},
		{"name missing", PracticeSpec{Name: "  ", PIN: "ABCD"}, []string{"name"}},
		{"name with a control character", PracticeSpec{Name: "a\x07b", PIN: "ABCD"}, []string{"name"}},
		{"name too long", PracticeSpec{Name: strings.Repeat("a", 201), PIN: "ABCD"}, []string{"name"}},
		{"unknown status", PracticeSpec{Name: "A", PIN: "ABCD", Status: "closed"}, []string{"status"}},
		{"everything wrong", PracticeSpec{PIN: "!", Status: "x"}, []string{"pin", "name", "status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.CreatePractice(context.Background(), tc.spec)
			wantFields(t, err, tc.fields...)
		})
	}
	if all, err := r.ListPractices(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("refused creates wrote %v (%v)", all, err)
	}
}

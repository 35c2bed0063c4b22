package search

import (
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
	"github.com/fhirgraph/fhirgraph/store"
)

func mustParse(t testing.TB, s string) *fhirjson.Object {
	t.Helper()
	obj, err := fhirjson.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// entries renders index values as "param=value[low..high]" for comparison.
func entries(vals []store.IndexValue, param string) []string {
	var out []string
	for _, v := range vals {
		if v.Param != param {
			continue
		}
		s := v.Value
		if v.System != "" {
			s = v.System + "|" + s
		}
		if v.Low != "" || v.High != "" {
			s += "[" + v.Low + ".." + v.High + "]"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

const observation = `{"resourceType":"Observation","id":"o1","status":"final",
 "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
 "code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose Bld"}],"text":"Glucose"},
 "subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1/_history/3"},
 "effectivePeriod":{"start":"2024-03-01","end":"2024-03-02T10:00:00+01:00"},
 "valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`

func TestIndexNormalizesEachParameterType(t *testing.T) {
	vals := Index(mustParse(t, observation), "")
	v955 := EncodeNumber(95.5)
	cases := []struct {
		param string
		want  []string
	}{
		{"status", []string{"final"}},
		{"category", []string{"http://terminology.hl7.org/CodeSystem/observation-category|laboratory"}},
		{"code", []string{"http://loinc.org|2339-0"}},
		{"code:text", []string{"glucose", "glucose bld"}},
		{"patient", []string{"Patient/p1"}},
		{"subject", []string{"Patient/p1"}},
		{"encounter", []string{"Encounter/e1"}},
		{"date", []string{"[2024-03-01T00:00:00.000Z..2024-03-02T09:00:00.999Z]"}},
		{"value-quantity", []string{"http://unitsofmeasure.org|mg/dL[" + v955 + ".." + v955 + "]"}},
	}
	for _, c := range cases {
		t.Run(c.param, func(t *testing.T) {
			if got := entries(vals, c.param); !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
	if got := entries(vals, "_id"); got != nil {
		t.Errorf("_id is answered from the resource's own column, not indexed: %v", got)
	}
}

func TestIndexStringsFoldAndKeepExact(t *testing.T) {
	vals := Index(mustParse(t, `{"resourceType":"Patient","id":"x","name":[{"family":"Renée  Ó'Brien","given":["Zoë","Ann"]}],
		"address":[{"city":"São Paulo","line":["1 Main St"]}],"gender":"female","birthDate":"1970"}`), "")
	if got, want := entries(vals, "family"), []string{"Renée  Ó'Brien|renee o'brien"}; !slices.Equal(got, want) {
		t.Errorf("family = %q, want %q", got, want)
	}
	if got := entries(vals, "name"); !slices.Contains(got, "Zoë|zoe") || !slices.Contains(got, "Ann|ann") {
		t.Errorf("name = %q", got)
	}
	if got := entries(vals, "address-city"); !slices.Equal(got, []string{"São Paulo|sao paulo"}) {
		t.Errorf("address-city = %q", got)
	}
	if got, want := entries(vals, "birthdate"), []string{"[1970-01-01T00:00:00.000Z..1970-12-31T23:59:59.999Z]"}; !slices.Equal(got, want) {
		t.Errorf("birthdate = %q, want %q", got, want)
	}
}

func TestIndexIdentifiersAndReferenceIdentifiers(t *testing.T) {
	vals := Index(mustParse(t, `{"resourceType":"Patient","id":"x","identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"123"}]}`), "")
	if got, want := entries(vals, "identifier"), []string{"urn:mrn|123"}; !slices.Equal(got, want) {
		t.Errorf("identifier = %q, want %q", got, want)
	}
	if got, want := entries(vals, "identifier:of-type"), []string{"http://terminology.hl7.org/CodeSystem/v2-0203|MR|123"}; !slices.Equal(got, want) {
		t.Errorf("identifier:of-type = %q", got)
	}
	vals = Index(mustParse(t, `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"identifier":{"system":"urn:mrn","value":"123"}}}`), "")
	if got, want := entries(vals, "subject:identifier"), []string{"urn:mrn|123"}; !slices.Equal(got, want) {
		t.Errorf("subject:identifier = %q", got)
	}
}

// Absolute references under the server's base are its own resources and
// are indexed as the relative references they stand for; others stay URLs.
func TestIndexLocalAbsoluteReferencesAsRelative(t *testing.T) {
	obs := `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},
		"subject":{"reference":"https://fhir.example.org/fhir/Patient/p1/_history/2"},
		"performer":[{"reference":"https://elsewhere.example.org/fhir/Practitioner/d1"}]}`
	vals := Index(mustParse(t, obs), "https://fhir.example.org/fhir/")
	if got, want := entries(vals, "subject"), []string{"Patient/p1"}; !slices.Equal(got, want) {
		t.Errorf("subject = %q, want %q", got, want)
	}
	if got, want := entries(vals, "patient"), []string{"Patient/p1"}; !slices.Equal(got, want) {
		t.Errorf("patient = %q, want %q", got, want)
	}
	if got, want := entries(vals, "performer"), []string{"https://elsewhere.example.org/fhir/Practitioner/d1"}; !slices.Equal(got, want) {
		t.Errorf("performer = %q, want %q", got, want)
	}
	if got := PatientCompartments("Observation", "o", vals); !slices.Equal(got, []string{"Patient/p1"}) {
		t.Errorf("compartments = %q", got)
	}
	// Without a base, the same reference is an external URL.
	if got := entries(Index(mustParse(t, obs), ""), "subject"); !slices.Equal(got, []string{"https://fhir.example.org/fhir/Patient/p1/_history/2"}) {
		t.Errorf("subject without a base = %q", got)
	}
}

func TestDateRangeFollowsPrecision(t *testing.T) {
	cases := []struct{ in, low, high string }{
		{"2024", "2024-01-01T00:00:00.000Z", "2024-12-31T23:59:59.999Z"},
		{"2024-02", "2024-02-01T00:00:00.000Z", "2024-02-29T23:59:59.999Z"},
		{"2024-02-10", "2024-02-10T00:00:00.000Z", "2024-02-10T23:59:59.999Z"},
		{"2024-02-10T10:30:00Z", "2024-02-10T10:30:00.000Z", "2024-02-10T10:30:00.999Z"},
		{"2024-02-10T10:30:00.25-05:00", "2024-02-10T15:30:00.250Z", "2024-02-10T15:30:00.250Z"},
		{"2024-02-10T10:30", "2024-02-10T10:30:00.000Z", "2024-02-10T10:30:59.999Z"},
	}
	for _, c := range cases {
		low, high, err := DateRange(c.in)
		if err != nil || low != c.low || high != c.high {
			t.Errorf("DateRange(%q) = %s, %s, %v; want %s, %s", c.in, low, high, err, c.low, c.high)
		}
	}
	for _, bad := range []string{"", "24", "2024-13", "2024-02-30", "2024-02-10T25:00:00Z", "yesterday", "2024-02-10 10:00"} {
		if _, _, err := DateRange(bad); err == nil {
			t.Errorf("DateRange(%q) accepted", bad)
		}
	}
}

func TestEncodeNumberOrders(t *testing.T) {
	nums := []float64{-1e9, -2.5, -1, -0.001, 0, 0.001, 1, 2.5, 100, 1e12}
	for i := 1; i < len(nums); i++ {
		if !(EncodeNumber(nums[i-1]) < EncodeNumber(nums[i])) {
			t.Errorf("EncodeNumber(%v) >= EncodeNumber(%v)", nums[i-1], nums[i])
		}
	}
	low, high, err := NumberRange("100")
	if err != nil || low != 99.5 || high != 100.5 {
		t.Errorf("NumberRange(100) = %v, %v, %v", low, high, err)
	}
	low, high, _ = NumberRange("1.50")
	if low < 1.4949 || low > 1.4951 || high < 1.5049 || high > 1.5051 {
		t.Errorf("NumberRange(1.50) = %v, %v", low, high)
	}
}

// TestIndexCoversGeneratedPractice indexes a generated practice: every
// clinical resource must be reachable by its patient.
func TestIndexCoversGeneratedPractice(t *testing.T) {
	n := 0
	err := synth.Generate(synth.Options{Patients: 3, Seed: 1}, func(obj *fhirjson.Object) error {
		vals := Index(obj, "")
		typ := obj.String("resourceType")
		switch typ {
		case "Observation", "Condition", "Encounter", "MedicationRequest", "Procedure", "DiagnosticReport", "DocumentReference":
			n++
			if p := entries(vals, "patient"); len(p) != 1 || !strings.HasPrefix(p[0], "Patient/") {
				t.Errorf("%s/%s patient entries %v", typ, obj.String("id"), p)
			}
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("generate: %v, %d clinical resources", err, n)
	}
}

func BenchmarkIndex(b *testing.B) {
	var objs []*fhirjson.Object
	synth.Generate(synth.Options{Patients: 5, Seed: 1}, func(obj *fhirjson.Object) error {
		objs = append(objs, obj)
		return nil
	})
	b.ResetTimer()
	entriesTotal := 0
	for i := 0; b.Loop(); i++ {
		entriesTotal += len(Index(objs[i%len(objs)], ""))
	}
	b.ReportMetric(float64(entriesTotal)/float64(b.N), "entries/resource")
}

func TestPatientCompartments(t *testing.T) {
	cases := []struct {
		name, json string
		want       []string
	}{
		{"observation by subject and performer", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},
			"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/d1"},{"reference":"Patient/p2"}]}`, []string{"Patient/p1", "Patient/p2"}},
		{"a patient is in its own", `{"resourceType":"Patient","id":"p9","link":[{"other":{"reference":"Patient/p8"},"type":"seealso"}]}`, []string{"Patient/p8", "Patient/p9"}},
		{"practitioner in none", `{"resourceType":"Practitioner","id":"d1","name":[{"family":"X"}]}`, nil},
		{"group subject is not a patient", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Group/g1"}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := mustParse(t, c.json)
			got := PatientCompartments(obj.String("resourceType"), obj.String("id"), Index(obj, ""))
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

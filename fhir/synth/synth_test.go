package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// generate collects the output of Generate, failing the test on error.
func generate(t testing.TB, opts Options) []*fhirjson.Object {
	t.Helper()
	var out []*fhirjson.Object
	if err := Generate(opts, func(r *fhirjson.Object) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Generate(%+v): %v", opts, err)
	}
	return out
}

// fingerprint hashes the serialized output, resource by resource.
func fingerprint(t testing.TB, opts Options) [32]byte {
	t.Helper()
	h := sha256.New()
	if err := Generate(opts, func(r *fhirjson.Object) error {
		h.Write(fhirjson.Marshal(r))
		h.Write([]byte{'\n'})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func TestGenerateIsDeterministic(t *testing.T) {
	base := Options{Patients: 25, Seed: 42}
	tests := []struct {
		name  string
		other Options
		same  bool
	}{
		{"same options give identical output", base, true},
		{"explicit default anchor equals zero anchor", Options{Patients: 25, Seed: 42, Now: DefaultNow}, true},
		{"same anchor in another zone equals default", Options{Patients: 25, Seed: 42, Now: DefaultNow.UTC()}, true},
		{"different seed gives different output", Options{Patients: 25, Seed: 43}, false},
		{"different anchor gives different output", Options{Patients: 25, Seed: 42, Now: DefaultNow.AddDate(0, -1, 0)}, false},
		{"more patients change the output", Options{Patients: 26, Seed: 42}, false},
	}
	want := fingerprint(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := fingerprint(t, tc.other)
			if (got == want) != tc.same {
				t.Errorf("fingerprint equal = %v, want %v", got == want, tc.same)
			}
		})
	}
}

func TestPatientDataDoesNotDependOnLaterPatients(t *testing.T) {
	// Each patient draws from its own stream, so patient 3 of a 5-patient
	// run is byte-identical to patient 3 of a 40-patient run.
	pick := func(rs []*fhirjson.Object, prefix string) []byte {
		var b bytes.Buffer
		for _, r := range rs {
			if id := r.String("id"); id == prefix || strings.HasPrefix(id, prefix+"-") {
				b.Write(fhirjson.Marshal(r))
			}
		}
		return b.Bytes()
	}
	small := pick(generate(t, Options{Patients: 5, Seed: 9}), "p0003")
	large := pick(generate(t, Options{Patients: 40, Seed: 9}), "p0003")
	if len(small) == 0 || !bytes.Equal(small, large) {
		t.Errorf("patient p0003 differs between runs (%d vs %d bytes)", len(small), len(large))
	}
}

func TestResourcesPerPatientAverageAboutOneHundred(t *testing.T) {
	for _, seed := range []int64{1, 2} {
		rs := generate(t, Options{Patients: 300, Seed: seed})
		perPatient := map[string]int{}
		for _, r := range rs {
			id := r.String("id")
			if m := patientPrefix.FindString(id); m != "" {
				perPatient[m]++
			}
		}
		if len(perPatient) != 300 {
			t.Fatalf("seed %d: %d patients have resources, want 300", seed, len(perPatient))
		}
		lo, hi, sum := 1<<30, 0, 0
		for _, n := range perPatient {
			sum += n
			lo, hi = min(lo, n), max(hi, n)
		}
		avg := float64(sum) / 300
		if avg < 80 || avg > 120 {
			t.Errorf("seed %d: %.1f resources per patient, want 80-120", seed, avg)
		}
		// Realistic variation: a newly diagnosed patient has a handful of
		// resources, one deep into chemotherapy has a few hundred.
		if lo > 60 || hi < 180 {
			t.Errorf("seed %d: per-patient counts span %d-%d, want below 60 and above 180", seed, lo, hi)
		}
	}
}

var patientPrefix = regexp.MustCompile(`^p\d{4,}`)

// references calls fn for every Reference.reference in v.
func references(v any, fn func(string)) {
	switch t := v.(type) {
	case *fhirjson.Object:
		for _, m := range t.Members {
			if s, ok := m.Value.(string); ok && m.Name == "reference" {
				fn(s)
				continue
			}
			references(m.Value, fn)
		}
	case []any:
		for _, e := range t {
			references(e, fn)
		}
	}
}

func TestEveryReferenceResolvesToAnEarlierResource(t *testing.T) {
	seen := map[string]bool{}
	refs := 0
	for _, r := range generate(t, Options{Patients: 120, Seed: 5}) {
		self := r.String("resourceType") + "/" + r.String("id")
		references(r, func(ref string) {
			refs++
			if strings.Count(ref, "/") != 1 {
				t.Errorf("%s: reference %q is not Type/id", self, ref)
			}
			if !seen[ref] {
				t.Errorf("%s: reference %q does not resolve to an earlier resource", self, ref)
			}
		})
		if seen[self] {
			t.Errorf("%s emitted twice", self)
		}
		seen[self] = true
	}
	if refs < 10000 {
		t.Errorf("only %d references checked; the walk is not reaching them", refs)
	}
}

var validID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func TestEveryResourceHasValidIDAndClaimsAProfile(t *testing.T) {
	for _, r := range generate(t, Options{Patients: 60, Seed: 3}) {
		id := r.String("id")
		if !validID.MatchString(id) {
			t.Errorf("%s: id %q is not a valid FHIR id", r.String("resourceType"), id)
		}
		meta := r.Object("meta")
		if meta == nil {
			t.Errorf("%s/%s: no meta", r.String("resourceType"), id)
			continue
		}
		profiles, _ := meta.Get("profile")
		list, _ := profiles.([]any)
		if len(list) == 0 {
			t.Errorf("%s/%s: meta.profile empty", r.String("resourceType"), id)
			continue
		}
		p, _ := list[0].(string)
		if _, ok := mandatoryByProfile[p]; !ok {
			t.Errorf("%s/%s: claims unknown profile %q", r.String("resourceType"), id, p)
		}
	}
}

var (
	looksLikeDateTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T`)
	fullDateTime      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
)

// strings calls fn for every string value in v with the member name it is
// under (array elements inherit their array's name).
func stringsIn(v any, name string, fn func(name, s string)) {
	switch t := v.(type) {
	case *fhirjson.Object:
		for _, m := range t.Members {
			stringsIn(m.Value, m.Name, fn)
		}
	case []any:
		for _, e := range t {
			stringsIn(e, name, fn)
		}
	case string:
		fn(name, t)
	}
}

func TestEveryDateTimeCarriesATimezone(t *testing.T) {
	dates := 0
	for _, r := range generate(t, Options{Patients: 40, Seed: 11}) {
		stringsIn(r, "", func(name, s string) {
			if looksLikeDateTime.MatchString(s) {
				dates++
				if !fullDateTime.MatchString(s) {
					t.Errorf("%s/%s.%s = %q: dateTime without seconds and zone", r.String("resourceType"), r.String("id"), name, s)
				}
			}
		})
	}
	if dates < 1000 {
		t.Errorf("only %d dateTimes seen", dates)
	}
}

func TestNothingHappensAfterNow(t *testing.T) {
	now := DefaultNow.AddDate(-1, 0, 0)
	for _, r := range generate(t, Options{Patients: 60, Seed: 8, Now: now}) {
		// Planned end dates (courses of therapy, goals, expiry) may lie
		// ahead; anything that records an event may not.
		for _, name := range []string{"effectiveDateTime", "issued", "recorded", "authoredOn", "occurrenceDateTime", "recordedDate", "onsetDateTime", "date", "created"} {
			s := r.String(name)
			if s == "" || !looksLikeDateTime.MatchString(s) {
				continue
			}
			at, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatalf("%s/%s.%s = %q: %v", r.String("resourceType"), r.String("id"), name, s, err)
			}
			if at.After(now) {
				t.Errorf("%s/%s.%s = %s is after Now %s", r.String("resourceType"), r.String("id"), name, s, now.Format(time.RFC3339))
			}
		}
	}
}

func TestCohortsListQualifyingPatientsUpToTheLimit(t *testing.T) {
	tests := []struct {
		name        string
		limit       int
		wantCovered bool // every patient is in exactly one cancer cohort
	}{
		{"default limit lists every qualifying patient", 0, true},
		{"a small limit caps each cohort", 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := generate(t, Options{Patients: 80, Seed: 12, CohortLimit: tc.limit})
			cancerOf := map[string]string{} // Patient ref -> cancer SNOMED code
			for _, r := range rs {
				if r.String("resourceType") == "Condition" {
					if c := cancerCodeOf(r); c != "" {
						cancerOf[r.Object("subject").String("reference")] = c
					}
				}
			}
			inCancerCohort := 0
			groups := 0
			for _, r := range rs {
				if r.String("resourceType") != "Group" {
					continue
				}
				groups++
				members, _ := r.Get("member")
				list, _ := members.([]any)
				if tc.limit > 0 && len(list) > tc.limit {
					t.Errorf("%s lists %d members, limit %d", r.String("id"), len(list), tc.limit)
				}
				if q, _ := r.Get("quantity"); string(q.(json.Number)) != strconv.Itoa(len(list)) {
					t.Errorf("%s: quantity %v, %d members", r.String("id"), q, len(list))
				}
				want := ""
				if id := r.String("id"); id != "cohort-active-chemotherapy" && id != "cohort-pediatric" {
					chars, _ := r.Get("characteristic")
					want = codings(chars.([]any)[0].(*fhirjson.Object).Object("valueCodeableConcept"))[0].String("code")
				}
				for _, m := range list {
					ref := m.(*fhirjson.Object).Object("entity").String("reference")
					if want != "" {
						inCancerCohort++
						if cancerOf[ref] != want {
							t.Errorf("%s lists %s, whose cancer is %s", r.String("id"), ref, cancerOf[ref])
						}
					}
				}
			}
			if groups != len(cancers)+2 {
				t.Errorf("%d Groups, want %d", groups, len(cancers)+2)
			}
			if tc.wantCovered && inCancerCohort != 80 {
				t.Errorf("%d cancer-cohort memberships for 80 patients", inCancerCohort)
			}
		})
	}
}

func TestGenerateStopsAtTheFirstEmitError(t *testing.T) {
	stop := errors.New("disk full")
	for _, after := range []int{1, 30, 500} {
		calls := 0
		err := Generate(Options{Patients: 20, Seed: 1}, func(*fhirjson.Object) error {
			calls++
			if calls == after {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Errorf("error at resource %d: Generate returned %v, want %v", after, err, stop)
		}
		if calls != after {
			t.Errorf("error at resource %d: emit called %d times, want no calls after the error", after, calls)
		}
	}
}

// emptyValues reports JSON values FHIR forbids: empty strings, strings with
// surrounding whitespace, and empty objects or arrays.
func emptyValues(v any, path string, report func(path, problem string)) {
	switch t := v.(type) {
	case *fhirjson.Object:
		if len(t.Members) == 0 {
			report(path, "empty object")
		}
		for _, m := range t.Members {
			emptyValues(m.Value, path+"."+m.Name, report)
		}
	case []any:
		if len(t) == 0 {
			report(path, "empty array")
		}
		for i, e := range t {
			emptyValues(e, path+"["+strconv.Itoa(i)+"]", report)
		}
	case string:
		if t == "" {
			report(path, "empty string")
		} else if strings.TrimSpace(t) != t {
			report(path, "surrounding whitespace")
		}
	}
}

func TestNoEmptyOrPaddedValues(t *testing.T) {
	for _, r := range generate(t, Options{Patients: 300, Seed: 6}) {
		emptyValues(r, r.String("resourceType"), func(path, problem string) {
			t.Errorf("%s/%s: %s at %s", r.String("resourceType"), r.String("id"), problem, path)
		})
	}
}

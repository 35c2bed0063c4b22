package fhirjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseRoundTripsOrderAndDecimals(t *testing.T) {
	in := `{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"mg"},"b":[1e2,true,null,"x<y"],"a":{}}`
	obj, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(Marshal(obj)); got != in {
		t.Errorf("round trip\n got %s\nwant %s", got, in)
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"duplicate member", `{"a":1,"a":2}`, `duplicate JSON member "a"`},
		{"nested duplicate", `{"name":[{"given":["x"],"given":["y"]}]}`, `at name[0]`},
		{"truncated", `{"a":`, "invalid JSON"},
		{"trailing data", `{"a":1} {"b":2}`, "unexpected data"},
		{"array at top", `[1]`, "must be a JSON object"},
		{"string at top", `"x"`, "must be a JSON object"},
		{"empty", ``, "invalid JSON"},
		{"bad token", `{"a":tru}`, "invalid JSON"},
		{"too deep", strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200), "nested too deeply"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SyntaxError", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %q, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestObjectSetGetDelete(t *testing.T) {
	obj, _ := Parse([]byte(`{"a":1,"b":"x"}`))
	obj.Set("c", "new")
	obj.Set("a", "changed")
	obj.Delete("b")
	if got := string(Marshal(obj)); got != `{"a":"changed","c":"new"}` {
		t.Errorf("got %s", got)
	}
	if obj.String("c") != "new" || obj.Object("a") != nil {
		t.Error("typed getters")
	}
}

// sample is a typical clinical resource (about 1.5 KB).
const sample = `{"resourceType":"Observation","id":"obs-1","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"]},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory","display":"Laboratory"}],"text":"Laboratory"}],"code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose [Mass/volume] in Blood"}],"text":"Glucose"},"subject":{"reference":"Patient/p0001"},"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2024-03-01T10:20:30-05:00","issued":"2024-03-01T12:00:00.000-05:00","performer":[{"reference":"Practitioner/pr1","display":"Dr. A"}],"valueQuantity":{"value":95.5,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},"interpretation":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation","code":"N","display":"Normal"}]}],"referenceRange":[{"low":{"value":70,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},"high":{"value":99,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},"text":"70-99 mg/dL"}]}`

func BenchmarkParse(b *testing.B) {
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		if _, err := Parse([]byte(sample)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	obj, _ := Parse([]byte(sample))
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		Marshal(obj)
	}
}

func TestParseStrings(t *testing.T) {
	cases := []struct {
		in   string
		want string
		bad  bool
	}{
		{`"plain"`, "plain", false},
		{`"a\"b\\c\/d\n\t"`, "a\"b\\c/d\n\t", false},
		{`"\u00e9t\u00E9"`, "été", false},
		{`"\ud83d\ude00"`, "😀", false},
		{`"raw é"`, "raw é", false},
		{`"bad \x"`, "", true},
		{`"bad \u12"`, "", true},
		{"\"ctl \x01\"", "", true},
		{"\"invalid \xff utf8\"", "", true},
		{`"unterminated`, "", true},
	}
	for _, c := range cases {
		obj, err := Parse([]byte(`{"s":` + c.in + `}`))
		if c.bad {
			if err == nil {
				t.Errorf("%s: accepted, want an error", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := obj.String("s"); got != c.want {
			t.Errorf("%s: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	for in, ok := range map[string]bool{"0": true, "-0.5": true, "1.50": true, "1e-3": true, "2E+10": true,
		"01": false, "1.": false, ".5": false, "+1": false, "-": false, "1e": false, "0x10": false, "NaN": false} {
		obj, err := Parse([]byte(`{"n":` + in + `}`))
		if ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", in, err, ok)
			continue
		}
		if ok {
			if v, _ := obj.Get("n"); string(v.(json.Number)) != in {
				t.Errorf("%s: kept as %v", in, v)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{sample, `{"0": {"":`, `{"a":[1,{"b":"\u00e9"}]}`, `{"":[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Parse(Marshal(obj))
		if err != nil {
			t.Fatalf("re-parsing our own output failed: %v", err)
		}
		if string(Marshal(again)) != string(Marshal(obj)) {
			t.Fatal("round trip changed the document")
		}
	})
}

package search

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func compile(t *testing.T, typ, query string, opts Options) (*Search, error) {
	t.Helper()
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return Compile(typ, v, opts)
}

func TestCompileBuildsPlans(t *testing.T) {
	eq := func(param, value string) store.Predicate {
		return store.Predicate{Param: param, Match: store.MatchEqual, Value: value}
	}
	day := func(d string) (string, string) { l, h, _ := DateRange(d); return l, h }
	l, h := day("2024-03-01")
	cases := []struct {
		name, typ, query string
		want             []store.Clause
	}{
		{"reference by id", "Observation", "patient=123", []store.Clause{{eq("patient", "Patient/123")}}},
		{"reference by type/id", "Observation", "patient=Patient/123", []store.Clause{{eq("patient", "Patient/123")}}},
		{"reference under our base", "Observation", "patient=http://x/fhir/Patient/123", []store.Clause{{eq("patient", "Patient/123")}}},
		{"token code", "Observation", "category=laboratory", []store.Clause{{eq("category", "laboratory")}}},
		{"token system|code", "Observation", "code=http://loinc.org|2339-0",
			[]store.Clause{{{Param: "code", Match: store.MatchEqual, Value: "2339-0", System: "http://loinc.org", HasSystem: true}}}},
		{"token |code", "Observation", "code=|x", []store.Clause{{{Param: "code", Match: store.MatchEqual, Value: "x", HasSystem: true}}}},
		{"token system|", "Observation", "code=http://loinc.org|",
			[]store.Clause{{{Param: "code", Match: store.MatchAny, System: "http://loinc.org", HasSystem: true}}}},
		{"token OR", "MedicationRequest", "intent=order,plan", []store.Clause{{eq("intent", "order"), eq("intent", "plan")}}},
		{"token :not", "Observation", "status:not=final", []store.Clause{{{Param: "status", Match: store.MatchEqual, Value: "final", Not: true}}}},
		{"token :text", "Observation", "code:text=Glucose", []store.Clause{{{Param: "code:text", Match: store.MatchPrefix, Value: "glucose"}}}},
		{"string starts-with folded", "Patient", "name=Renée", []store.Clause{{{Param: "name", Match: store.MatchPrefix, Value: "renee"}}}},
		{"string :exact", "Patient", "family:exact=Renée", []store.Clause{{{Param: "family", Match: store.MatchEqual, Value: "renee", System: "Renée", HasSystem: true}}}},
		{"string :contains", "Patient", "name:contains=ENE", []store.Clause{{{Param: "name", Match: store.MatchContains, Value: "ene"}}}},
		{":missing", "Patient", "birthdate:missing=true", []store.Clause{{{Param: "birthdate", Missing: true}}}},
		{"date eq day", "Observation", "date=2024-03-01", []store.Clause{{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.Low, Op: store.GE, Arg: l}, {Field: store.High, Op: store.LE, Arg: h}}}}}},
		// ge is gt or eq (R4 search §3.1.1.4.7): the ranges that reach above
		// the day or lie within it; not those that end within it.
		{"date ge", "Observation", "date=ge2024-03-01", []store.Clause{{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.High, Op: store.GT, Arg: h}}},
			{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.Low, Op: store.GE, Arg: l}, {Field: store.High, Op: store.LE, Arg: h}}}}}},
		{"date lt", "Observation", "date=lt2024-03-01", []store.Clause{{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.Low, Op: store.LT, Arg: l}}}}}},
		{"repeated parameter is AND", "Observation", "date=ge2024-03-01&date=lt2024-03-01", []store.Clause{
			{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.High, Op: store.GT, Arg: h}}},
				{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.Low, Op: store.GE, Arg: l}, {Field: store.High, Op: store.LE, Arg: h}}}},
			{{Param: "date", Match: store.MatchEqual, Bounds: []store.Bound{{Field: store.Low, Op: store.LT, Arg: l}}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := compile(t, c.typ, c.query, Options{BaseURL: "http://x/fhir"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Query.Where, c.want) {
				t.Errorf("where\n got %+v\nwant %+v", s.Query.Where, c.want)
			}
		})
	}
}

func TestCompileResultParameters(t *testing.T) {
	s, err := compile(t, "Patient", "_id=a,b&_id=b,c&_count=10&_sort=-birthdate,_id&_total=accurate&_lastUpdated=ge2024-01-01", Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := s.Query
	if !reflect.DeepEqual(q.IDs, []string{"b"}) || q.Count != 10 || !q.Total || q.Since != "2024-01-01T00:00:00.000Z" {
		t.Errorf("query %+v", q)
	}
	if !reflect.DeepEqual(q.Sort, []store.SortKey{{Param: "birthdate", Desc: true}, {Param: "_id"}}) {
		t.Errorf("sort %+v", q.Sort)
	}
	s, _ = compile(t, "Patient", "_count=0", Options{})
	if !s.Query.CountOnly {
		t.Error("_count=0 asks for the total only")
	}
}

func TestCompileChains(t *testing.T) {
	s, err := compile(t, "PractitionerRole", "practitioner.name=smith", Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Query.Where[0][0]
	if p.Param != "practitioner" || p.Target == nil || p.Target.Type != "Practitioner" ||
		!reflect.DeepEqual(p.Target.Where, []store.Clause{{{Param: "name", Match: store.MatchPrefix, Value: "smith"}}}) {
		t.Errorf("chain %+v target %+v", p, p.Target)
	}
}

func TestCompileRejectsMalformedValues(t *testing.T) {
	cases := []struct{ typ, query, param string }{
		{"Observation", "date=yesterday", "date"},
		{"Observation", "date=xx2024", "date"},
		{"Observation", "date=2024-13-01", "date"},
		{"Observation", "patient=Practitioner/1", "patient"},
		{"Observation", "status:exact=final", "status:exact"},
		{"Observation", "code:bogus=x", "code:bogus"},
		{"Observation", "code=|", "code"},
		{"Observation", "value-quantity=abc", "value-quantity"},
		{"Observation", "_count=-1", "_count"},
		{"Observation", "_count=5000", "_count"},
		{"Observation", "_sort=nonsense", "_sort"},
		{"Observation", "_total=maybe", "_total"},
		{"Observation", "category=", "category"},
		{"Observation", "subject.nonsense=x", "subject.nonsense"},
		{"Observation", "status:missing=maybe", "status:missing"},
		{"Patient", "_lastUpdated=soon", "_lastUpdated"},
		{"Patient", "_id=" + strings.Repeat("a,", 600) + "a", "_id"},
		{"Patient", "gender=" + strings.Repeat("a,", 600) + "a", "gender"},
		{"Patient", strings.Repeat("gender=a&", 70) + "gender=a", "gender"},
		{"Observation", strings.Repeat("_include=Observation:subject&", 17) + "x=1", "_include"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			_, err := compile(t, c.typ, c.query, Options{})
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Fatalf("err = %v, want a ParamError naming %s", err, c.param)
			}
		})
	}
}

func TestCompileUnknownParameters(t *testing.T) {
	s, err := compile(t, "Patient", "foo=1&name=x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Ignored, []string{"foo"}) || s.Used.Has("foo") || !s.Used.Has("name") {
		t.Errorf("ignored %v used %v", s.Ignored, s.Used)
	}
	if _, err := compile(t, "Patient", "foo=1", Options{Strict: true}); err == nil {
		t.Error("handling=strict must refuse unknown parameters")
	}
}

package fhirpath

import (
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
)

// realistic returns the first generated resource of type rt that has
// member: a blood pressure Observation with components, a Patient with
// race and ethnicity extensions, telecom, address and identifiers.
func realistic(tb testing.TB, rt, member string) *fhirjson.Object {
	tb.Helper()
	var found *fhirjson.Object
	_ = synth.Generate(synth.Options{Patients: 1}, func(o *fhirjson.Object) error {
		if _, ok := o.Get(member); ok && found == nil && o.String("resourceType") == rt {
			found = o
		}
		return nil
	})
	if found == nil {
		tb.Fatalf("no generated %s has %s", rt, member)
	}
	return found
}

// BenchmarkEvalAllParams evaluates every search parameter of a type on one
// resource, as indexing a write does; ns/op is per resource.
func BenchmarkEvalAllParams(b *testing.B) {
	params := loadSearchParams(b)
	for _, tc := range []struct{ rt, member string }{
		{"Observation", "component"},
		{"Patient", "extension"},
	} {
		res := realistic(b, tc.rt, tc.member)
		var general, special []*Expr
		for _, src := range paramsFor(params, tc.rt) {
			e, err := Compile(src)
			if err != nil {
				b.Fatal(err)
			}
			general = append(general, e)
			if s := e.ForType(tc.rt); s != nil {
				special = append(special, s)
			}
		}
		run := func(exprs []*Expr) func(b *testing.B) {
			return func(b *testing.B) {
				b.ReportAllocs()
				nodes := 0
				for b.Loop() {
					for _, e := range exprs {
						ns, err := e.Eval(res)
						if err != nil {
							b.Fatal(err)
						}
						nodes += len(ns)
					}
				}
				b.ReportMetric(float64(len(general)), "params")
			}
		}
		b.Run(tc.rt+"/ForType", run(special))
		b.Run(tc.rt+"/Eval", run(general))
	}
}

package fhirpath

import "testing"

// FuzzCompile checks that no expression makes Compile or Eval panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"Patient.name.given",
		"AllergyIntolerance.patient | Observation.subject.where(resolve() is Patient)",
		"(Observation.value as CodeableConcept).text",
		"Patient.deceased.exists() and Patient.deceased != false",
		"Patient.extension('http://x').value.code",
		"Bundle.entry[0].resource",
		"'a\\u0041' | 1.5 | {} | $this | %resource",
		"Condition.onset.as(Age) | Condition.onset.ofType(FHIR.Period)",
	} {
		f.Add(s)
	}
	res := mustParse(f, observationJSON)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Compile(s)
		if err != nil {
			if e != nil {
				t.Fatalf("Compile(%q) returned both an expression and %v", s, err)
			}
			return
		}
		_, _ = e.Eval(res)
		_, _ = e.ForType("Observation").Eval(res)
	})
}

package synth

import (
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/validate"
)

// The validator is fast enough to check far more than twenty patients; 150
// reach every cancer, regimen and age group, including the rare ones.
func TestGeneratedResourcesPassTheStructuralValidator(t *testing.T) {
	failures := 0
	rs := generate(t, Options{Patients: 150, Seed: 1})
	for _, r := range rs {
		for _, issue := range validate.Resource(r) {
			failures++
			if failures <= 30 {
				t.Errorf("%s/%s: %s at %s: %s", r.String("resourceType"), r.String("id"), issue.Code, issue.Path, issue.Message)
			}
		}
	}
	if failures > 30 {
		t.Errorf("... and %d more issues", failures-30)
	}
	if len(rs) < 1000 {
		t.Errorf("only %d resources validated", len(rs))
	}
}

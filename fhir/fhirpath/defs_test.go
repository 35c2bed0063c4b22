package fhirpath

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// defsDir is where the FHIR definitions sit next to a checkout
// (/work/shared/fhir-defs beside /work/main).
const defsDir = "../../../shared/fhir-defs"

// usCoreTypes are the resource types US Core profiles, plus Group (bulk
// export): the types whose search parameters the server indexes.
var usCoreTypes = []string{
	"AllergyIntolerance", "CarePlan", "CareTeam", "Condition", "Coverage", "Device",
	"DiagnosticReport", "DocumentReference", "Encounter", "Endpoint", "Goal", "Group",
	"HealthcareService", "Immunization", "Location", "Media", "Medication",
	"MedicationDispense", "MedicationRequest", "Observation", "Organization", "Patient",
	"Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
	"QuestionnaireResponse", "RelatedPerson", "ServiceRequest", "Specimen", "ValueSet",
}

// searchParam is one SearchParameter of the definitions, with the indexed
// resource types it applies to.
type searchParam struct {
	file, id, code, expr string
	types                []string
}

var searchParamFiles = []string{
	"r4/search-parameters.json",
	"us-core-4.0.0/searchparameters.json",
	"us-core-6.1.0/searchparameters.json",
}

// loadSearchParams reads every SearchParameter with an expression whose base
// includes an indexed type (or Resource, DomainResource: then all of them),
// skipping the test when the definitions are absent.
func loadSearchParams(tb testing.TB) []searchParam {
	tb.Helper()
	var params []searchParam
	for _, name := range searchParamFiles {
		data, err := os.ReadFile(filepath.Join(defsDir, name))
		if err != nil {
			tb.Skipf("FHIR definitions not found at %s: %v", defsDir, err)
		}
		var bundle struct {
			Entry []struct {
				Resource struct {
					ResourceType string   `json:"resourceType"`
					ID           string   `json:"id"`
					Code         string   `json:"code"`
					Base         []string `json:"base"`
					Expression   string   `json:"expression"`
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(data, &bundle); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		for _, e := range bundle.Entry {
			r := e.Resource
			if r.ResourceType != "SearchParameter" || r.Expression == "" {
				continue
			}
			var types []string
			for _, b := range r.Base {
				switch {
				case b == "Resource" || b == "DomainResource":
					types = usCoreTypes
				case slices.Contains(usCoreTypes, b) && !slices.Contains(types, b):
					types = append(types, b)
				}
			}
			if len(types) > 0 {
				params = append(params, searchParam{file: name, id: r.ID, code: r.Code, expr: r.Expression, types: types})
			}
		}
	}
	if len(params) == 0 {
		tb.Fatal("no search parameters found for the indexed types")
	}
	return params
}

// paramsFor returns the distinct expressions of the parameters of one type.
func paramsFor(params []searchParam, rt string) []string {
	var exprs []string
	for _, p := range params {
		if slices.Contains(p.types, rt) && !slices.Contains(exprs, p.expr) {
			exprs = append(exprs, p.expr)
		}
	}
	return exprs
}

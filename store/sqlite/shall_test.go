package sqlite

import (
	"net/url"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	fhirschema "github.com/fhirgraph/fhirgraph/schema"
)

// sampleValue is a well-formed value for a parameter, for plans whose shape
// (not result) matters.
func sampleValue(p *fhirschema.SearchParam) string {
	switch p.Type {
	case fhirschema.ParamReference:
		return p.Targets[0] + "/1"
	case fhirschema.ParamDate:
		return "ge2024-01-01"
	case fhirschema.ParamString:
		return "ab"
	case fhirschema.ParamNumber, fhirschema.ParamQuantity:
		return "5"
	case fhirschema.ParamURI:
		return "http://example.org/x"
	}
	return "x"
}

// TestUSCoreShallSearchesUseIndexes compiles every SHALL search and
// required combination of both US Core server CapabilityStatements through
// the same compiler REST uses, and fails if SQLite would read all of search
// or resources for any of them.
func TestUSCoreShallSearchesUseIndexes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	checked := 0
	for _, r := range fhirschema.Search().Resources {
		var searches [][]string
		for _, p := range r.Params {
			if p.Expect[fhirschema.USCore400] == fhirschema.ExpectShall || p.Expect[fhirschema.USCore610] == fhirschema.ExpectShall {
				searches = append(searches, []string{p.Code})
			}
		}
		for _, c := range r.Combinations {
			if c.Expect[fhirschema.USCore400] == fhirschema.ExpectShall || c.Expect[fhirschema.USCore610] == fhirschema.ExpectShall {
				searches = append(searches, c.Params)
			}
		}
		for _, codes := range searches {
			params := url.Values{}
			for _, code := range codes {
				params.Set(code, sampleValue(r.Param(code)))
			}
			name := r.Type + "?" + params.Encode()
			t.Run(name, func(t *testing.T) {
				compiled, err := search.Compile(r.Type, params, search.Options{Strict: true})
				if err != nil {
					t.Fatal(err)
				}
				text, args := pageSQL(&compiled.Query, nil)
				for _, l := range queryPlan(t, s, text, args) {
					if tableScan.MatchString(l) {
						t.Errorf("full scan %q in the plan of %s", l, text)
					}
				}
			})
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d SHALL searches found in the registry", checked)
	}
	t.Logf("%d SHALL searches checked", checked)
}

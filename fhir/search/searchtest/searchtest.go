// Package searchtest gives store engine tests the plans of the US Core
// SHALL searches, compiled by the search engine exactly as REST compiles
// them, for tests of how a plan runs (indexes, filters sent) rather than of
// what it finds.
package searchtest

import (
	"fmt"
	"net/url"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// Plan is a compiled search, named by its query string.
type Plan struct {
	Name  string
	Query store.Query
}

// ShallPlans compiles every SHALL search and combination of the US Core
// server CapabilityStatements, each parameter given a well-formed sample
// value of its type.
func ShallPlans() ([]Plan, error) {
	var plans []Plan
	for _, rs := range schema.Search().ShallSearches() {
		r := schema.Search().Resource(rs.Type)
		params := url.Values{}
		for _, code := range rs.Params {
			params.Set(code, sampleValue(r.Param(code)))
		}
		name := rs.Type + "?" + params.Encode()
		compiled, err := search.Compile(rs.Type, params, search.Options{Strict: true})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		plans = append(plans, Plan{Name: name, Query: compiled.Query})
	}
	return plans, nil
}

// sampleValue is a well-formed value for a parameter.
func sampleValue(p *schema.SearchParam) string {
	switch p.Type {
	case schema.ParamReference:
		return p.Targets[0] + "/1"
	case schema.ParamDate:
		return "ge2024-01-01"
	case schema.ParamString:
		return "ab"
	case schema.ParamNumber, schema.ParamQuantity:
		return "5"
	case schema.ParamURI:
		return "http://example.org/x"
	}
	return "x"
}

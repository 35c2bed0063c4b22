package schema

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// search-params.json is the search registry, written by ./internal/gen from
// the R4 SearchParameters, the US Core 4.0.0 and 6.1.0 SearchParameters and
// the two US Core server CapabilityStatements.
//
//go:embed search-params.json
var searchJSON []byte

// The US Core versions the registry records expectations for.
const (
	USCore400 = "4.0.0"
	USCore610 = "6.1.0"
)

// Expectation is a conformance verb of US Core's
// capabilitystatement-expectation extension.
type Expectation string

const (
	ExpectShall  Expectation = "SHALL"
	ExpectShould Expectation = "SHOULD"
	ExpectMay    Expectation = "MAY"
)

// Expectations maps a US Core version (USCore400, USCore610) to what that
// version's server CapabilityStatement expects of an item. A version absent
// from the map does not list the item; one mapped to "" lists it without an
// expectation (4.0.0 does so for referencePolicy).
type Expectations map[string]Expectation

// Listed reports whether the version's CapabilityStatement lists the item.
func (e Expectations) Listed(version string) bool {
	_, ok := e[version]
	return ok
}

// ParamType is a SearchParameter type.
type ParamType string

const (
	ParamNumber    ParamType = "number"
	ParamDate      ParamType = "date"
	ParamString    ParamType = "string"
	ParamToken     ParamType = "token"
	ParamReference ParamType = "reference"
	ParamComposite ParamType = "composite"
	ParamQuantity  ParamType = "quantity"
	ParamURI       ParamType = "uri"
	ParamSpecial   ParamType = "special"
)

// Where a parameter's definition comes from (SearchParam.Source).
const (
	SourceR4     = "r4"
	SourceUSCore = "us-core"
)

// SearchRegistry is what the server can search and what each US Core
// version expects of it, for every resource type either US Core server
// CapabilityStatement lists, plus Group for bulk export and AuditEvent,
// which the server writes itself (R4's parameters only).
type SearchRegistry struct {
	// Versions describes the two US Core server CapabilityStatements,
	// oldest first.
	Versions []USCoreVersion `json:"versions"`
	// SystemInteractions are the whole-system interactions (transaction,
	// batch, search-system, history-system), sorted by code.
	SystemInteractions []VersionedCode `json:"systemInteractions"`
	// Common holds R4's parameters of every resource: _id, _lastUpdated,
	// _profile, _security, _source and _tag, sorted by code. Each
	// SearchResource lists them too, replaced where US Core defines its own.
	Common []SearchParam `json:"common"`
	// Resources are sorted by type.
	Resources []SearchResource `json:"resources"`

	byType map[string]*SearchResource
}

// USCoreVersion identifies one US Core server CapabilityStatement.
type USCoreVersion struct {
	Version string `json:"version"`
	// URL is the CapabilityStatement's canonical URL; both versions share it.
	URL          string  `json:"url"`
	Name         string  `json:"name"`
	FHIRVersion  string  `json:"fhirVersion"`
	Date         string  `json:"date"`
	Formats      []Coded `json:"formats"`
	PatchFormats []Coded `json:"patchFormats"`
}

// Coded is a code with the expectation its definition states, if any.
type Coded struct {
	Code   string      `json:"code"`
	Expect Expectation `json:"exp"`
}

// VersionedCode is a code listed by one or both CapabilityStatements: an
// interaction or a reference policy.
type VersionedCode struct {
	Code   string       `json:"code"`
	Expect Expectations `json:"exp"`
}

// SearchResource is one resource type's entry. Its lists are sorted
// (Combinations by size, then by their parameters) and hold what either
// version lists, with each version's expectation.
type SearchResource struct {
	Type string `json:"type"`
	// Expect is the resource-level expectation; Group has none.
	Expect            Expectations         `json:"exp"`
	Profiles          []SupportedProfile   `json:"profiles"`
	Interactions      []VersionedCode      `json:"interactions"`
	ReferencePolicies []VersionedCode      `json:"referencePolicies"`
	Operations        []SupportedOperation `json:"operations"`
	// Combinations are the required search combinations: searching with all
	// of one's parameters together is expected.
	Combinations []Combination `json:"combinations"`
	// Includes are the _include values, RevIncludes the _revinclude ones.
	Includes    []Include `json:"includes"`
	RevIncludes []Include `json:"revIncludes"`
	// Params is every parameter of the type, sorted by code: R4's, US
	// Core's in place of R4's with the same code, and the common ones.
	Params []SearchParam `json:"params"`
	// PatientCompartment names the parameters whose references put a
	// resource of this type in a patient's compartment (R4's Patient
	// CompartmentDefinition); Patient's own is "link", and a Patient is
	// always in its own compartment.
	PatientCompartment []string `json:"patientCompartment"`

	byCode map[string]*SearchParam
}

// SupportedProfile is a profile the server supports instances of.
type SupportedProfile struct {
	URL    string       `json:"url"`
	Expect Expectations `json:"exp"`
}

// SupportedOperation is an operation on the resource type.
type SupportedOperation struct {
	// Name is the code without $ ("docref", "expand").
	Name string `json:"name"`
	// Definition is the OperationDefinition's canonical URL.
	Definition string       `json:"definition"`
	Expect     Expectations `json:"exp"`
}

// Combination is a set of parameters searched together.
type Combination struct {
	// Params are parameter codes in the CapabilityStatement's order.
	Params []string     `json:"params"`
	Expect Expectations `json:"exp"`
}

// Include is an _include or _revinclude value.
type Include struct {
	// Value is as written in the request: "Provenance:target",
	// "CareTeam:participant:Practitioner".
	Value  string       `json:"value"`
	Expect Expectations `json:"exp"`

	// SourceType, Param and TargetType are Value's parts: the type whose
	// reference parameter Param is followed, and the one target type it is
	// restricted to ("" for any).
	SourceType string `json:"-"`
	Param      string `json:"-"`
	TargetType string `json:"-"`
}

// SearchParam is one search parameter as it applies to one resource type.
type SearchParam struct {
	Code string    `json:"code"`
	Type ParamType `json:"type"`
	// URL is the canonical URL of the SearchParameter used, which is US
	// Core's (Source SourceUSCore) where US Core defines the code for the
	// type, else R4's (SourceR4).
	URL    string `json:"url"`
	Source string `json:"source"`
	// SourceVersion is the release the definition was taken from: "4.0.1"
	// for R4; for US Core the newest version defining it.
	SourceVersion string `json:"sourceVersion"`
	// DerivedFrom is the R4 definition a US Core one derives from.
	DerivedFrom string `json:"derivedFrom"`
	// Expression is the definition's FHIRPath expression, which for a
	// shared R4 parameter (clinical-patient) covers many types.
	Expression string `json:"expr"`
	// TypeExpression is the part of Expression that can match this type:
	// the union branches rooted at it, or the whole of Expression.
	TypeExpression string `json:"typeExpr"`
	// Targets are the resource types a reference parameter points to.
	Targets []string `json:"targets"`
	// Modifiers are the allowed modifiers as SearchParameter.modifier codes:
	// "type" stands for `:[type]` (one of Targets) and "ofType" is written
	// `:of-type`. Where the definition declares none (no R4 or US Core one
	// does) they are R4's per parameter type: "ofType" only on Identifier
	// paths, "above" and "below" on references only for hierarchies (a type
	// referring to itself).
	Modifiers []string `json:"modifiers"`
	// Comparators are the allowed prefixes of number, date and quantity
	// values, with US Core's expectation.
	Comparators []Coded `json:"comparators"`
	// MultipleOr and MultipleAnd say whether a value may list alternatives
	// (a,b) and whether the parameter may repeat; nil when the definition
	// does not say, as R4's mostly do not.
	MultipleOr        *bool       `json:"multipleOr"`
	MultipleOrExpect  Expectation `json:"multipleOrExp"`
	MultipleAnd       *bool       `json:"multipleAnd"`
	MultipleAndExpect Expectation `json:"multipleAndExp"`
	// Chains are the parameters of the target type the definition names for
	// chaining (practitioner.name); none when it does not restrict them.
	Chains []Chain `json:"chains"`
	// Components are a composite parameter's parts.
	Components []Component `json:"components"`
	// Expect is what each version's CapabilityStatement searchParam list
	// expects of the parameter on this type.
	Expect Expectations `json:"exp"`
}

// Chain is a parameter of the target type that may be chained.
type Chain struct {
	Param  string      `json:"param"`
	Expect Expectation `json:"exp"`
}

// Component is one part of a composite parameter.
type Component struct {
	// URL is the component's SearchParameter, Code that parameter's code.
	URL  string `json:"url"`
	Code string `json:"code"`
	// Expression is relative to each match of the composite's expression.
	Expression string `json:"expr"`
}

// Search returns the search registry, parsed on first use and shared by
// every caller, who must not modify it. The registry is generated and
// checked by tests, so one that does not parse is a build defect and panics.
func Search() *SearchRegistry { return search() }

var search = sync.OnceValue(func() *SearchRegistry {
	r, err := parseSearch(searchJSON)
	if err != nil {
		panic(err)
	}
	return r
})

// Resource returns the entry of a resource type, or nil when the type is
// neither in a US Core server CapabilityStatement nor Group or AuditEvent.
func (r *SearchRegistry) Resource(typ string) *SearchResource { return r.byType[typ] }

// RequiredSearch is a search a US Core server must answer: one parameter
// of a type, or a combination of them used together.
type RequiredSearch struct {
	Type   string
	Params []string
}

// ShallSearches lists, type by type, the parameters and then the
// combinations that the server CapabilityStatement of either US Core
// version expects with SHALL.
func (r *SearchRegistry) ShallSearches() []RequiredSearch {
	shall := func(e Expectations) bool {
		return e[USCore400] == ExpectShall || e[USCore610] == ExpectShall
	}
	var out []RequiredSearch
	for _, res := range r.Resources {
		for _, p := range res.Params {
			if shall(p.Expect) {
				out = append(out, RequiredSearch{Type: res.Type, Params: []string{p.Code}})
			}
		}
		for _, c := range res.Combinations {
			if shall(c.Expect) {
				out = append(out, RequiredSearch{Type: res.Type, Params: c.Params})
			}
		}
	}
	return out
}

// Version returns the US Core version's CapabilityStatement, or nil.
func (r *SearchRegistry) Version(version string) *USCoreVersion {
	for i := range r.Versions {
		if r.Versions[i].Version == version {
			return &r.Versions[i]
		}
	}
	return nil
}

// CommonParam returns R4's common parameter with the code, or nil.
func (r *SearchRegistry) CommonParam(code string) *SearchParam {
	for i := range r.Common {
		if r.Common[i].Code == code {
			return &r.Common[i]
		}
	}
	return nil
}

// Param returns the type's parameter with the code, or nil.
func (r *SearchResource) Param(code string) *SearchParam { return r.byCode[code] }

func parseSearch(data []byte) (*SearchRegistry, error) {
	var reg SearchRegistry
	if err := json.Unmarshal(data, &reg); err != nil {
		return nil, fmt.Errorf("schema: embedded search registry: %w", err)
	}
	for i := range reg.Common {
		reg.Common[i].fill()
	}
	reg.byType = make(map[string]*SearchResource, len(reg.Resources))
	for i := range reg.Resources {
		res := &reg.Resources[i]
		if reg.byType[res.Type] != nil {
			return nil, fmt.Errorf("schema: embedded search registry: %s listed twice", res.Type)
		}
		reg.byType[res.Type] = res
		if err := res.index(reg.Common); err != nil {
			return nil, fmt.Errorf("schema: embedded search registry: %s: %w", res.Type, err)
		}
	}
	return &reg, nil
}

// index adds the common parameters the type does not define itself, which
// the generated file leaves out, and builds the lookups.
func (r *SearchResource) index(common []SearchParam) error {
	for _, c := range common {
		if !slices.ContainsFunc(r.Params, func(p SearchParam) bool { return p.Code == c.Code }) {
			r.Params = append(r.Params, c)
		}
	}
	slices.SortFunc(r.Params, func(a, b SearchParam) int { return strings.Compare(a.Code, b.Code) })
	r.byCode = make(map[string]*SearchParam, len(r.Params))
	for i := range r.Params {
		p := &r.Params[i]
		if r.byCode[p.Code] != nil {
			return fmt.Errorf("parameter %s listed twice", p.Code)
		}
		p.fill()
		r.byCode[p.Code] = p
	}
	for _, list := range [][]Include{r.Includes, r.RevIncludes} {
		for i := range list {
			in := &list[i]
			parts := strings.Split(in.Value, ":")
			if len(parts) < 2 || len(parts) > 3 {
				return fmt.Errorf("include %q is not Type:param[:Target]", in.Value)
			}
			in.SourceType, in.Param = parts[0], parts[1]
			if len(parts) == 3 {
				in.TargetType = parts[2]
			}
		}
	}
	return nil
}

// fill sets what the generated file leaves out because it is implied.
func (p *SearchParam) fill() {
	if p.TypeExpression == "" {
		p.TypeExpression = p.Expression
	}
}

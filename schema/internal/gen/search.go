package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// SearchOutputName is the search registry's file inside -out.
const SearchOutputName = "search-params.json"

// extraTypes are searched although no US Core CapabilityStatement lists
// them: bulk export runs on Group.
var extraTypes = []string{"Group"}

// platformTypes are the types the server itself writes: AuditEvent, the
// audit trail authz/audit records. They are searched with R4's parameters
// alone; no US Core CapabilityStatement sets expectations on them.
var platformTypes = []string{"AuditEvent"}

// commonCodes are the parameters of every resource type that the server
// supports, from R4's Resource-* SearchParameters. _content, _query and
// _text have no expression to index and are left out.
var commonCodes = []string{"_id", "_lastUpdated", "_profile", "_security", "_source", "_tag"}

const (
	sourceR4     = "r4"
	sourceUSCore = "us-core"
)

// searchTable is the generated registry; package schema reads its JSON form
// (schema/search.go mirrors these types).
type searchTable struct {
	versions           []versionOut
	systemInteractions []*versionedCode
	common             []*paramOut
	resources          []*resourceOut
}

// expectations maps a US Core version to the expectation its server
// CapabilityStatement states; "" when it lists the item without one.
type expectations map[string]string

type versionOut struct {
	Version      string  `json:"version"`
	URL          string  `json:"url"`
	Name         string  `json:"name"`
	FHIRVersion  string  `json:"fhirVersion"`
	Date         string  `json:"date"`
	Formats      []coded `json:"formats,omitempty"`
	PatchFormats []coded `json:"patchFormats,omitempty"`
}

type coded struct {
	Code   string `json:"code"`
	Expect string `json:"exp,omitempty"`
}

type versionedCode struct {
	Code   string       `json:"code"`
	Expect expectations `json:"exp"`
}

type profileOut struct {
	URL    string       `json:"url"`
	Expect expectations `json:"exp"`
}

type operationOut struct {
	Name       string       `json:"name"`
	Definition string       `json:"definition"`
	Expect     expectations `json:"exp"`
}

type includeOut struct {
	Value  string       `json:"value"`
	Expect expectations `json:"exp"`
}

type combinationOut struct {
	Params []string     `json:"params"`
	Expect expectations `json:"exp"`
}

type resourceOut struct {
	Type              string
	Expect            expectations
	Profiles          []*profileOut
	Interactions      []*versionedCode
	ReferencePolicies []*versionedCode
	Operations        []*operationOut
	Combinations      []*combinationOut
	Includes          []*includeOut
	RevIncludes       []*includeOut
	// Params holds the type's own parameters and those US Core defines for
	// it under a common code (_id); package schema adds the other common ones.
	Params []*paramOut
	// PatientCompartment lists the parameters that put a resource of the
	// type in a patient's compartment (R4's CompartmentDefinition).
	PatientCompartment []string
}

type paramOut struct {
	Code              string         `json:"code"`
	Type              string         `json:"type"`
	URL               string         `json:"url"`
	Source            string         `json:"source"`
	SourceVersion     string         `json:"sourceVersion"`
	DerivedFrom       string         `json:"derivedFrom,omitempty"`
	Expression        string         `json:"expr,omitempty"`
	TypeExpression    string         `json:"typeExpr,omitempty"`
	Targets           []string       `json:"targets,omitempty"`
	Modifiers         []string       `json:"modifiers,omitempty"`
	Comparators       []coded        `json:"comparators,omitempty"`
	MultipleOr        *bool          `json:"multipleOr,omitempty"`
	MultipleOrExpect  string         `json:"multipleOrExp,omitempty"`
	MultipleAnd       *bool          `json:"multipleAnd,omitempty"`
	MultipleAndExpect string         `json:"multipleAndExp,omitempty"`
	Chains            []chainOut     `json:"chains,omitempty"`
	Components        []componentOut `json:"components,omitempty"`
	Expect            expectations   `json:"exp,omitempty"`
}

type chainOut struct {
	Param  string `json:"param"`
	Expect string `json:"exp,omitempty"`
}

type componentOut struct {
	URL        string `json:"url"`
	Code       string `json:"code"`
	Expression string `json:"expr"`
}

// buildSearch joins the R4 and US Core SearchParameters with what each US
// Core server CapabilityStatement expects. It fails on anything the search
// engine could not interpret: a listed parameter whose definition was not
// kept, a combination or include naming an unknown parameter, a reference
// parameter without targets, a parameter without an expression.
func buildSearch(r4 []searchParameter, releases []usCoreRelease) (*searchTable, error) {
	byURL := map[string]*searchParameter{}
	for i := range r4 {
		byURL[r4[i].URL] = &r4[i]
	}
	t := &searchTable{}
	commonURL := map[string]string{}
	for _, code := range commonCodes {
		sp := byURL["http://hl7.org/fhir/SearchParameter/Resource-"+strings.TrimPrefix(code, "_")]
		if sp == nil || sp.Code != code {
			return nil, fmt.Errorf("R4 defines no Resource SearchParameter %s", code)
		}
		p, err := paramFrom(sp, "Resource", sourceR4, sp.Version, byURL)
		if err != nil {
			return nil, err
		}
		t.common = append(t.common, p)
		commonURL[code] = sp.URL
	}

	types := slices.Concat(extraTypes, platformTypes)
	for _, rel := range releases {
		server, err := serverRest(rel)
		if err != nil {
			return nil, err
		}
		for _, r := range server.Resource {
			types = append(types, r.Type)
		}
	}
	slices.Sort(types)
	types = slices.Compact(types)

	byType := map[string]*resourceOut{}
	for _, typ := range types {
		r := &resourceOut{Type: typ}
		params := map[string]*paramOut{}
		for i := range r4 {
			if slices.Contains(r4[i].Base, typ) {
				if params[r4[i].Code] != nil {
					return nil, fmt.Errorf("R4 defines %s search parameter %s twice", typ, r4[i].Code)
				}
				p, err := paramFrom(&r4[i], typ, sourceR4, r4[i].Version, byURL)
				if err != nil {
					return nil, err
				}
				params[p.Code] = p
			}
		}
		// US Core's definition of a code replaces R4's, and a later US Core
		// version's replaces an earlier one's.
		for _, rel := range releases {
			for i := range rel.params {
				if slices.Contains(rel.params[i].Base, typ) {
					p, err := paramFrom(&rel.params[i], typ, sourceUSCore, rel.version, byURL)
					if err != nil {
						return nil, err
					}
					params[p.Code] = p
				}
			}
		}
		for _, p := range params {
			r.Params = append(r.Params, p)
		}
		byType[typ] = r
		t.resources = append(t.resources, r)
	}

	for _, rel := range releases {
		if err := t.addRelease(rel, byType, commonURL); err != nil {
			return nil, fmt.Errorf("US Core %s: %w", rel.version, err)
		}
	}
	sort.Slice(t.systemInteractions, func(i, j int) bool { return t.systemInteractions[i].Code < t.systemInteractions[j].Code })
	for _, r := range t.resources {
		r.sort()
	}
	return t, t.checkSearch(byType)
}

// serverRest returns the statement's one server rest entry, the only one
// US Core defines.
func serverRest(rel usCoreRelease) (*csRest, error) {
	rest := rel.statement.Rest
	if len(rest) != 1 || rest[0].Mode != "server" {
		return nil, fmt.Errorf("US Core %s: want one server rest entry in the CapabilityStatement, got %d", rel.version, len(rest))
	}
	return &rest[0], nil
}

// addRelease records what one version's CapabilityStatement lists, with its
// expectations, on the resources built from the definitions.
func (t *searchTable) addRelease(rel usCoreRelease, byType map[string]*resourceOut, commonURL map[string]string) error {
	cs := rel.statement
	v := rel.version
	vo := versionOut{Version: v, URL: cs.URL, Name: cs.Name, FHIRVersion: cs.FHIRVersion, Date: cs.Date}
	for i, f := range cs.Format {
		vo.Formats = append(vo.Formats, coded{f, expectationAt(cs.FormatExt, i)})
	}
	for i, f := range cs.PatchFormat {
		vo.PatchFormats = append(vo.PatchFormats, coded{f, expectationAt(cs.PatchFormatExt, i)})
	}
	t.versions = append(t.versions, vo)

	server, err := serverRest(rel)
	if err != nil {
		return err
	}
	for _, in := range server.Interaction {
		t.systemInteractions = addCode(t.systemInteractions, in.Code, v, expectation(in.Extension))
	}
	for _, cr := range server.Resource {
		r := byType[cr.Type]
		if r.Expect == nil {
			r.Expect = expectations{}
		}
		r.Expect[v] = expectation(cr.Extension)
		for i, url := range cr.SupportedProfile {
			p := findOrAdd(&r.Profiles, func(p *profileOut) bool { return p.URL == url }, func() *profileOut { return &profileOut{URL: url} })
			p.Expect = set(p.Expect, v, expectationAt(cr.SupportedProfileExt, i))
		}
		for _, in := range cr.Interaction {
			r.Interactions = addCode(r.Interactions, in.Code, v, expectation(in.Extension))
		}
		for i, rp := range cr.ReferencePolicy {
			r.ReferencePolicies = addCode(r.ReferencePolicies, rp, v, expectationAt(cr.ReferencePolicyExt, i))
		}
		for _, op := range cr.Operation {
			o := findOrAdd(&r.Operations, func(o *operationOut) bool { return o.Name == op.Name && o.Definition == op.Definition },
				func() *operationOut { return &operationOut{Name: op.Name, Definition: op.Definition} })
			o.Expect = set(o.Expect, v, expectation(op.Extension))
		}
		for i, val := range cr.SearchInclude {
			r.Includes = addInclude(r.Includes, val, v, expectationAt(cr.SearchIncludeExt, i))
		}
		for i, val := range cr.SearchRevInclude {
			r.RevIncludes = addInclude(r.RevIncludes, val, v, expectationAt(cr.SearchRevIncludeExt, i))
		}
		for _, ext := range cr.Extension {
			if ext.URL != combinationURL {
				continue
			}
			var params []string
			for _, sub := range ext.Extension {
				switch sub.URL {
				case "required":
					params = append(params, sub.ValueString)
				case "optional":
					return fmt.Errorf("%s: optional parameters in a combination are not supported", cr.Type)
				}
			}
			key := combinationKey(params)
			c := findOrAdd(&r.Combinations, func(c *combinationOut) bool { return combinationKey(c.Params) == key },
				func() *combinationOut { return &combinationOut{Params: params} })
			c.Expect = set(c.Expect, v, expectation(ext.Extension))
		}
		for _, sp := range cr.SearchParam {
			p := r.param(sp.Name)
			if p == nil && commonURL[sp.Name] == sp.Definition {
				// A common parameter the statement sets an expectation on
				// gets its own entry on the type to carry it.
				p = clone(t.commonParam(sp.Name))
				r.Params = append(r.Params, p)
			}
			switch {
			case p == nil:
				return fmt.Errorf("%s: searchParam %s (%s) has no definition", cr.Type, sp.Name, sp.Definition)
			case p.URL != sp.Definition:
				return fmt.Errorf("%s: searchParam %s is defined by %s, but the table keeps %s", cr.Type, sp.Name, sp.Definition, p.URL)
			case p.Type != sp.Type:
				return fmt.Errorf("%s: searchParam %s has type %s, its definition %s", cr.Type, sp.Name, sp.Type, p.Type)
			}
			p.Expect = set(p.Expect, v, expectation(sp.Extension))
		}
	}
	return nil
}

// combinationKey identifies a combination by its set of parameters, so one
// listed in another order by a later version still matches.
func combinationKey(params []string) string {
	s := slices.Clone(params)
	slices.Sort(s)
	return strings.Join(s, "+")
}

func set(e expectations, version, exp string) expectations {
	if e == nil {
		e = expectations{}
	}
	e[version] = exp
	return e
}

// findOrAdd returns the first item of list that matches, appending a new
// one when none does: what versions list is merged by identity.
func findOrAdd[T any](list *[]*T, match func(*T) bool, newItem func() *T) *T {
	for _, x := range *list {
		if match(x) {
			return x
		}
	}
	x := newItem()
	*list = append(*list, x)
	return x
}

func addCode(list []*versionedCode, code, version, exp string) []*versionedCode {
	c := findOrAdd(&list, func(c *versionedCode) bool { return c.Code == code }, func() *versionedCode { return &versionedCode{Code: code} })
	c.Expect = set(c.Expect, version, exp)
	return list
}

func addInclude(list []*includeOut, value, version, exp string) []*includeOut {
	in := findOrAdd(&list, func(in *includeOut) bool { return in.Value == value }, func() *includeOut { return &includeOut{Value: value} })
	in.Expect = set(in.Expect, version, exp)
	return list
}

func clone(p *paramOut) *paramOut {
	c := *p
	c.Expect = nil
	return &c
}

func (t *searchTable) commonParam(code string) *paramOut {
	for _, p := range t.common {
		if p.Code == code {
			return p
		}
	}
	return nil
}

func (r *resourceOut) param(code string) *paramOut {
	for _, p := range r.Params {
		if p.Code == code {
			return p
		}
	}
	return nil
}

// sort puts every list in a stable order so regenerating from unchanged
// definitions writes the same bytes.
func (r *resourceOut) sort() {
	sort.Slice(r.Params, func(i, j int) bool { return r.Params[i].Code < r.Params[j].Code })
	sort.Slice(r.Profiles, func(i, j int) bool { return r.Profiles[i].URL < r.Profiles[j].URL })
	sort.Slice(r.Interactions, func(i, j int) bool { return r.Interactions[i].Code < r.Interactions[j].Code })
	sort.Slice(r.ReferencePolicies, func(i, j int) bool { return r.ReferencePolicies[i].Code < r.ReferencePolicies[j].Code })
	sort.Slice(r.Operations, func(i, j int) bool { return r.Operations[i].Name < r.Operations[j].Name })
	sort.Slice(r.Includes, func(i, j int) bool { return r.Includes[i].Value < r.Includes[j].Value })
	sort.Slice(r.RevIncludes, func(i, j int) bool { return r.RevIncludes[i].Value < r.RevIncludes[j].Value })
	sort.Slice(r.Combinations, func(i, j int) bool {
		a, b := r.Combinations[i].Params, r.Combinations[j].Params
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return strings.Join(a, "+") < strings.Join(b, "+")
	})
}

// checkSearch rejects a registry the search engine could not interpret.
func (t *searchTable) checkSearch(byType map[string]*resourceOut) error {
	all := append([]*paramOut(nil), t.common...)
	for _, r := range t.resources {
		all = append(all, r.Params...)
	}
	for _, p := range all {
		if p.Expression == "" {
			return fmt.Errorf("search parameter %s (%s) has no expression", p.Code, p.URL)
		}
		if p.Type == "reference" && len(p.Targets) == 0 {
			return fmt.Errorf("reference search parameter %s (%s) has no targets", p.Code, p.URL)
		}
	}
	for _, r := range t.resources {
		for _, c := range r.Combinations {
			for _, code := range c.Params {
				if r.param(code) == nil && t.commonParam(code) == nil {
					return fmt.Errorf("%s: combination %s names unknown parameter %s", r.Type, strings.Join(c.Params, "+"), code)
				}
			}
		}
		for _, in := range append(slices.Clone(r.Includes), r.RevIncludes...) {
			if err := checkInclude(in.Value, byType); err != nil {
				return fmt.Errorf("%s: %w", r.Type, err)
			}
		}
	}
	return nil
}

// checkInclude checks an _include/_revinclude value, Type:param[:Target],
// against the reference parameters it follows.
func checkInclude(value string, byType map[string]*resourceOut) error {
	parts := strings.Split(value, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("include %q is not Type:param[:Target]", value)
	}
	src := byType[parts[0]]
	if src == nil {
		return fmt.Errorf("include %q starts from a type the table lacks", value)
	}
	p := src.param(parts[1])
	if p == nil || p.Type != "reference" {
		return fmt.Errorf("include %q follows no reference parameter", value)
	}
	if len(parts) == 3 && !slices.Contains(p.Targets, parts[2]) {
		return fmt.Errorf("include %q names a target outside %v", value, p.Targets)
	}
	return nil
}

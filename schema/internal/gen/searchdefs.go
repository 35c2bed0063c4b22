package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// usCoreVersions are the US Core releases whose server CapabilityStatement
// and SearchParameters the search table describes, oldest first: when both
// define a SearchParameter, the later definition is the one kept.
var usCoreVersions = []string{"4.0.0", "6.1.0"}

const (
	expectationURL = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
	combinationURL = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
)

// searchParameter holds the parts of a SearchParameter the generator reads.
// The underscore fields carry US Core's expectation extensions, parallel to
// the primitives they describe.
type searchParameter struct {
	URL            string      `json:"url"`
	Version        string      `json:"version"`
	Code           string      `json:"code"`
	Base           []string    `json:"base"`
	Type           string      `json:"type"`
	Expression     string      `json:"expression"`
	DerivedFrom    string      `json:"derivedFrom"`
	Target         []string    `json:"target"`
	Modifier       []string    `json:"modifier"`
	Comparator     []string    `json:"comparator"`
	ComparatorExt  []extended  `json:"_comparator"`
	Chain          []string    `json:"chain"`
	ChainExt       []extended  `json:"_chain"`
	MultipleOr     *bool       `json:"multipleOr"`
	MultipleOrExt  *extended   `json:"_multipleOr"`
	MultipleAnd    *bool       `json:"multipleAnd"`
	MultipleAndExt *extended   `json:"_multipleAnd"`
	Component      []component `json:"component"`
}

type component struct {
	Definition string `json:"definition"`
	Expression string `json:"expression"`
}

// extended is the shadow object of a primitive (`_name`), or any element
// that carries extensions.
type extended struct {
	Extension []extension `json:"extension"`
}

type extension struct {
	URL         string      `json:"url"`
	ValueCode   string      `json:"valueCode"`
	ValueString string      `json:"valueString"`
	Extension   []extension `json:"extension"`
}

// capabilityStatement holds the parts of a US Core server
// CapabilityStatement the generator reads.
type capabilityStatement struct {
	URL            string     `json:"url"`
	Version        string     `json:"version"`
	Name           string     `json:"name"`
	FHIRVersion    string     `json:"fhirVersion"`
	Date           string     `json:"date"`
	Format         []string   `json:"format"`
	FormatExt      []extended `json:"_format"`
	PatchFormat    []string   `json:"patchFormat"`
	PatchFormatExt []extended `json:"_patchFormat"`
	Rest           []csRest   `json:"rest"`
}

type csRest struct {
	Mode        string          `json:"mode"`
	Interaction []csInteraction `json:"interaction"`
	Resource    []csResource    `json:"resource"`
}

type csInteraction struct {
	Code      string      `json:"code"`
	Extension []extension `json:"extension"`
}

type csResource struct {
	Type                string          `json:"type"`
	Extension           []extension     `json:"extension"`
	SupportedProfile    []string        `json:"supportedProfile"`
	SupportedProfileExt []extended      `json:"_supportedProfile"`
	Interaction         []csInteraction `json:"interaction"`
	ReferencePolicy     []string        `json:"referencePolicy"`
	ReferencePolicyExt  []extended      `json:"_referencePolicy"`
	SearchInclude       []string        `json:"searchInclude"`
	SearchIncludeExt    []extended      `json:"_searchInclude"`
	SearchRevInclude    []string        `json:"searchRevInclude"`
	SearchRevIncludeExt []extended      `json:"_searchRevInclude"`
	SearchParam         []csSearchParam `json:"searchParam"`
	Operation           []csOperation   `json:"operation"`
}

type csSearchParam struct {
	Name       string      `json:"name"`
	Definition string      `json:"definition"`
	Type       string      `json:"type"`
	Extension  []extension `json:"extension"`
}

type csOperation struct {
	Name       string      `json:"name"`
	Definition string      `json:"definition"`
	Extension  []extension `json:"extension"`
}

// expectation returns the capabilitystatement-expectation code among exts,
// or "" when none is stated.
func expectation(exts []extension) string {
	for _, e := range exts {
		if e.URL == expectationURL {
			return e.ValueCode
		}
	}
	return ""
}

// expectationAt reads the expectation of the i-th entry of a primitive
// array from its parallel `_name` array, which may be shorter or absent.
func expectationAt(shadow []extended, i int) string {
	if i >= len(shadow) {
		return ""
	}
	return expectation(shadow[i].Extension)
}

func (e *extended) expectation() string {
	if e == nil {
		return ""
	}
	return expectation(e.Extension)
}

// usCoreRelease is what one US Core version contributes to the table.
type usCoreRelease struct {
	version   string
	params    []searchParameter
	statement capabilityStatement
}

// readSearchInputs reads the R4 SearchParameters and, for every US Core
// version, its SearchParameters and server CapabilityStatement.
func readSearchInputs(defs string) (r4 []searchParameter, releases []usCoreRelease, err error) {
	r4, err = readSearchParameters(filepath.Join(defs, "r4", "search-parameters.json"))
	if err != nil {
		return nil, nil, err
	}
	for _, v := range usCoreVersions {
		dir := filepath.Join(defs, "us-core-"+v)
		rel := usCoreRelease{version: v}
		if rel.params, err = readSearchParameters(filepath.Join(dir, "searchparameters.json")); err != nil {
			return nil, nil, err
		}
		path := filepath.Join(dir, "capabilitystatement-us-core-server.json")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(data, &rel.statement); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if rel.statement.Version != v {
			return nil, nil, fmt.Errorf("%s: version %q, want %s", path, rel.statement.Version, v)
		}
		releases = append(releases, rel)
	}
	return r4, releases, nil
}

func readSearchParameters(path string) ([]searchParameter, error) {
	var sps []searchParameter
	err := bundleEntries(path, func(resourceType string, raw json.RawMessage) error {
		if resourceType != "SearchParameter" {
			return fmt.Errorf("unexpected %s entry", resourceType)
		}
		var sp searchParameter
		if err := json.Unmarshal(raw, &sp); err != nil {
			return err
		}
		sps = append(sps, sp)
		return nil
	})
	return sps, err
}

// Package schema holds the tables generated from the FHIR definitions and
// committed, so the server builds without the definitions themselves.
//
// fhir-r4-elements.json is the structure of every FHIR R4 resource and
// datatype, written by ./internal/gen from the R4 StructureDefinitions;
// package fhir/validate interprets it. search-params.json is the search
// registry (see Search), written by the same generator from the R4 and US
// Core SearchParameters and the US Core server CapabilityStatements.
// fhir.graphqls is the GraphQL schema (gqlgen.yml reads it), written by the
// same generator from the R4 definitions, the US Core profiles and the
// search registry.
// Regenerate them all with `go generate ./schema` from the repository root (it
// reads ../shared/fhir-defs).
package schema

//go:generate go run ./internal/gen -defs ../../shared/fhir-defs -out .

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

//go:embed fhir-r4-elements.json
var r4JSON []byte

// Table is the FHIR R4 element table.
type Table struct {
	FHIRVersion string `json:"fhirVersion"`
	// ResourceTypes lists the instantiable resource types, sorted; the
	// abstract Resource and DomainResource are not in it.
	ResourceTypes []string `json:"resourceTypes"`
	// Types holds every resource, complex datatype and primitive datatype,
	// sorted by name, abstract ones (Element, Resource, …) included.
	Types []Type `json:"types"`

	byName map[string]*Type
}

// Type is one resource or datatype.
type Type struct {
	Name string `json:"name"`
	// Kind is "resource", "complex-type" or "primitive-type".
	Kind     string `json:"kind"`
	Abstract bool   `json:"abstract,omitempty"`
	// JSON is, for primitives, the JSON form of the value: "boolean",
	// "number" or "string".
	JSON string `json:"json,omitempty"`
	// Regex is, for primitives, the definition's regular expression for the
	// value's lexical form (unanchored, to be matched in full). xhtml has none.
	Regex string `json:"regex,omitempty"`
	// MaxLength is, for primitives, the maximum length in characters; 0 when
	// the definition sets none.
	MaxLength int `json:"maxLength,omitempty"`
	// Elements are the type's elements in definition order, including the
	// inherited ones (id, meta, extension, …) and those of backbone
	// elements. For primitives they are the members of the JSON `_name`
	// shadow object (id, extension); the value itself is not an element.
	Elements []Element `json:"elements"`
}

// Element is one element of a type.
type Element struct {
	// Path is relative to the type and dotted through backbone elements:
	// "name", "contact.name". Choice elements are expanded, one Element per
	// allowed type: "value[x]" becomes "valueQuantity", "valueString", ….
	Path string `json:"path"`
	Min  int    `json:"min"`
	// Max is "0", "1" or "*".
	Max string `json:"max"`
	// Type is the FHIR type code: a primitive ("string"), a complex datatype
	// ("HumanName"), "BackboneElement" or "Element" when the element has
	// children listed under its path, or "Resource" for a nested resource
	// typed by its own resourceType. Empty when Ref is set.
	Type string `json:"type,omitempty"`
	// Choice is the [x] name this element is one expansion of ("value[x]");
	// at most one expansion of a choice may appear, and Min applies to the
	// choice as a whole.
	Choice string `json:"choice,omitempty"`
	// Ref is the contentReference target, relative to the same type: the
	// element has the children of that element ("item" for
	// Questionnaire.item.item).
	Ref string `json:"ref,omitempty"`
	// System reports that the definition types the element with a FHIRPath
	// System type (Element.id, Extension.url, Resource.id): in JSON it is a
	// bare value with no `_name` shadow carrying id or extensions.
	System bool `json:"system,omitempty"`
	// Summary reports that the element is part of the summary form of
	// its resource (isSummary: what _summary=true keeps).
	Summary bool `json:"summary,omitempty"`
}

// Type returns the named type, or nil.
func (t *Table) Type(name string) *Type { return t.byName[name] }

// R4 returns the FHIR R4 element table, parsed on first use and shared by
// every caller, who must not modify it. The table is generated and checked
// by tests, so a table that does not parse is a build defect and panics.
func R4() *Table { return r4() }

var r4 = sync.OnceValue(func() *Table {
	t, err := parse(r4JSON)
	if err != nil {
		panic(err)
	}
	return t
})

func parse(data []byte) (*Table, error) {
	var t Table
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("schema: embedded R4 table: %w", err)
	}
	t.byName = make(map[string]*Type, len(t.Types))
	for i := range t.Types {
		t.byName[t.Types[i].Name] = &t.Types[i]
	}
	for _, rt := range t.ResourceTypes {
		if ty := t.byName[rt]; ty == nil || ty.Kind != "resource" || ty.Abstract {
			return nil, fmt.Errorf("schema: embedded R4 table: resource type %s has no definition", rt)
		}
	}
	return &t, nil
}

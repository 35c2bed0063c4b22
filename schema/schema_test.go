package schema

import (
	"slices"
	"testing"
)

func TestR4TableDescribesElements(t *testing.T) {
	tests := []struct {
		name, typ, path string
		want            Element
	}{
		{"repeating complex element", "Patient", "name", Element{Path: "name", Max: "*", Type: "HumanName", Summary: true}},
		{"required primitive", "Observation", "status", Element{Path: "status", Min: 1, Max: "1", Type: "code", Summary: true}},
		{"choice expanded per type", "Observation", "valueQuantity", Element{Path: "valueQuantity", Max: "1", Type: "Quantity", Choice: "value[x]", Summary: true}},
		{"required choice keeps its min", "Questionnaire", "item.enableWhen.answerBoolean", Element{Path: "item.enableWhen.answerBoolean", Min: 1, Max: "1", Type: "boolean", Choice: "answer[x]"}},
		{"backbone child", "Patient", "contact.name", Element{Path: "contact.name", Max: "1", Type: "HumanName"}},
		{"backbone element", "Bundle", "entry", Element{Path: "entry", Max: "*", Type: "BackboneElement", Summary: true}},
		{"datatype child of type Element", "Timing", "repeat", Element{Path: "repeat", Max: "1", Type: "Element", Summary: true}},
		{"recursive contentReference", "Questionnaire", "item.item", Element{Path: "item.item", Max: "*", Ref: "item"}},
		{"contentReference to a sibling branch", "Bundle", "entry.link", Element{Path: "entry.link", Max: "*", Ref: "link", Summary: true}},
		{"nested resource", "Bundle", "entry.resource", Element{Path: "entry.resource", Max: "1", Type: "Resource", Summary: true}},
		{"contained resources", "Patient", "contained", Element{Path: "contained", Max: "*", Type: "Resource"}},
		{"resource id is an id without shadow", "Patient", "id", Element{Path: "id", Max: "1", Type: "id", System: true, Summary: true}},
		{"element id is a plain string", "Patient", "contact.id", Element{Path: "contact.id", Max: "1", Type: "string", System: true}},
		{"extension url is required", "Extension", "url", Element{Path: "url", Min: 1, Max: "1", Type: "uri", System: true}},
		{"extension value of any type", "Extension", "valueMeta", Element{Path: "valueMeta", Max: "1", Type: "Meta", Choice: "value[x]"}},
		{"primitive shadow members", "date", "extension", Element{Path: "extension", Max: "*", Type: "Extension"}},
		{"summary: not in the summary form", "Observation", "note", Element{Path: "note", Max: "*", Type: "Annotation"}},
		{"xhtml takes no extensions", "xhtml", "extension", Element{Path: "extension", Max: "0", Type: "Extension"}},
	}
	tbl := R4()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ty := tbl.Type(tt.typ)
			if ty == nil {
				t.Fatalf("type %s missing", tt.typ)
			}
			i := slices.IndexFunc(ty.Elements, func(e Element) bool { return e.Path == tt.path })
			if i < 0 {
				t.Fatalf("%s.%s missing", tt.typ, tt.path)
			}
			if got := ty.Elements[i]; got != tt.want {
				t.Errorf("%s.%s = %+v, want %+v", tt.typ, tt.path, got, tt.want)
			}
		})
	}
}

func TestR4TableOmitsChoiceAndValueElements(t *testing.T) {
	tests := []struct{ typ, path string }{
		{"Observation", "value[x]"}, // only its expansions
		{"string", "value"},         // the JSON value itself
		{"Patient", ""},             // the root
	}
	for _, tt := range tests {
		ty := R4().Type(tt.typ)
		if slices.ContainsFunc(ty.Elements, func(e Element) bool { return e.Path == tt.path }) {
			t.Errorf("%s has element %q", tt.typ, tt.path)
		}
	}
}

func TestR4TableDescribesPrimitives(t *testing.T) {
	tests := []struct {
		name, json, regex string
	}{
		{"boolean", "boolean", "true|false"},
		{"integer", "number", "-?([0]|([1-9][0-9]*))"},
		{"positiveInt", "number", "[1-9][0-9]*"}, // JSON number although R4 types it System.String
		{"unsignedInt", "number", "[0]|([1-9][0-9]*)"},
		{"decimal", "number", "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?"},
		{"id", "string", "[A-Za-z0-9\\-\\.]{1,64}"},
		{"xhtml", "string", ""},
	}
	for _, tt := range tests {
		ty := R4().Type(tt.name)
		if ty == nil || ty.Kind != "primitive-type" || ty.JSON != tt.json || ty.Regex != tt.regex {
			t.Errorf("%s = %+v, want json %q regex %q", tt.name, ty, tt.json, tt.regex)
		}
	}
}

func TestR4ResourceTypesAreTheInstantiableOnes(t *testing.T) {
	rts := R4().ResourceTypes
	for _, want := range []string{"Patient", "Bundle", "Parameters", "Binary", "VisionPrescription"} {
		if !slices.Contains(rts, want) {
			t.Errorf("resource types lack %s", want)
		}
	}
	for _, not := range []string{"Resource", "DomainResource", "MetadataResource", "Element", "HumanName"} {
		if slices.Contains(rts, not) {
			t.Errorf("resource types include %s", not)
		}
	}
	if len(rts) != 146 || !slices.IsSorted(rts) {
		t.Errorf("got %d resource types (sorted %v), want the 146 of R4, sorted", len(rts), slices.IsSorted(rts))
	}
}

func TestParseRejectsUnknownResourceType(t *testing.T) {
	_, err := parse([]byte(`{"resourceTypes":["Patient"],"types":[]}`))
	if err == nil {
		t.Fatal("parse accepted a resource type without a definition")
	}
}

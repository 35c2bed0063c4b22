package validate

import (
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/schema"
)

func TestCompileReadsTheR4Table(t *testing.T) {
	m, err := compile(schema.R4())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.resources) != len(schema.R4().ResourceTypes) {
		t.Errorf("%d resource nodes for %d resource types", len(m.resources), len(schema.R4().ResourceTypes))
	}
	item := m.resources["Questionnaire"].fields["item"].node
	if item.fields["item"].node != item {
		t.Error("Questionnaire.item.item does not lead back to Questionnaire.item")
	}
	ext := m.resources["Patient"].fields["extension"].node
	if ext.fields["valueString"].choiceBit != ext.fields["valueQuantity"].choiceBit || ext.fields["valueString"].choiceBit == 0 {
		t.Error("Extension value[x] expansions do not share a choice group")
	}
	if ext.fields["url"].reqBit == 0 || ext.reqMask != ext.fields["url"].reqBit {
		t.Error("Extension.url is not the one required element of Extension")
	}
}

func TestCompileRejectsTablesItCannotInterpret(t *testing.T) {
	str := schema.Type{Name: "string", Kind: "primitive-type", JSON: "string"}
	res := func(els ...schema.Element) schema.Type {
		return schema.Type{Name: "Thing", Kind: "resource", Elements: els}
	}
	tests := []struct {
		name  string
		types []schema.Type
		want  string
	}{
		{"unknown element type", []schema.Type{res(schema.Element{Path: "x", Max: "1", Type: "Nope"})}, "no definition for Nope"},
		{"contentReference to nowhere", []schema.Type{res(schema.Element{Path: "x", Max: "1", Ref: "y"})}, "no definition for y"},
		{"child without parent", []schema.Type{str, res(schema.Element{Path: "a.b", Max: "1", Type: "string"})}, "no parent element"},
		{"element twice", []schema.Type{str, res(schema.Element{Path: "x", Max: "1", Type: "string"}, schema.Element{Path: "x", Max: "*", Type: "string"})}, "defined twice"},
		{"primitive without JSON form", []schema.Type{{Name: "odd", Kind: "primitive-type"}}, `JSON form ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compile(&schema.Table{Types: tt.types})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("compile error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		if _, err := compile(schema.R4()); err != nil {
			b.Fatal(err)
		}
	}
}

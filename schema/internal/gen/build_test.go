package main

import (
	"strings"
	"testing"
)

func sd(typ, kind, derivation string, elems ...elementDefinition) structureDefinition {
	s := structureDefinition{ResourceType: "StructureDefinition", ID: typ, Type: typ, Kind: kind, Derivation: derivation, FHIRVersion: "4.0.1"}
	s.Snapshot.Element = append([]elementDefinition{{Path: typ, Max: "*"}}, elems...)
	return s
}

func ed(path string, min int, max string, codes ...string) elementDefinition {
	e := elementDefinition{Path: path, Min: min, Max: max}
	for _, c := range codes {
		e.Type = append(e.Type, typeRef{Code: c})
	}
	return e
}

func systemString(path, fhirType, base string) elementDefinition {
	e := ed(path, 0, "1", systemPrefix+"String")
	e.Type[0].Extension = append(e.Type[0].Extension, typeExtension{URL: "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type", ValueURL: fhirType})
	e.Base.Path = base
	return e
}

func TestBuildWritesElementsValidatorsNeed(t *testing.T) {
	sds := []structureDefinition{
		sd("string", "primitive-type", "specialization"),
		sd("id", "primitive-type", "specialization"),
		sd("Quantity", "complex-type", "specialization"),
		sd("SimpleQuantity", "complex-type", "constraint", ed("SimpleQuantity.comparator", 0, "0", "code")),
		sd("Thing", "resource", "specialization",
			systemString("Thing.id", "string", "Resource.id"),
			ed("Thing.value[x]", 1, "1", "string", "Quantity"),
			summary(ed("Thing.part", 0, "*", "BackboneElement")),
			elementDefinition{Path: "Thing.part.part", Max: "*", ContentReference: "#Thing.part"},
		),
		sd("BackboneElement", "complex-type", ""),
	}
	tbl, err := build(sds)
	if err != nil {
		t.Fatal(err)
	}
	got := string(tbl.encode())
	for _, want := range []string{
		`"resourceTypes":["Thing"]`,
		`{"path":"id","min":0,"max":"1","type":"id","system":true}`,
		`{"path":"valueString","min":1,"max":"1","type":"string","choice":"value[x]"}`,
		`{"path":"valueQuantity","min":1,"max":"1","type":"Quantity","choice":"value[x]"}`,
		`{"path":"part.part","min":0,"max":"*","ref":"part"}`,
		`{"path":"part","min":0,"max":"*","type":"BackboneElement","summary":true}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s\n%s", want, got)
		}
	}
	if strings.Contains(got, "SimpleQuantity") {
		t.Error("constraint profile SimpleQuantity was written")
	}
}

func summary(e elementDefinition) elementDefinition {
	e.IsSummary = true
	return e
}

func TestBuildRejectsWhatTheValidatorCannotInterpret(t *testing.T) {
	tests := []struct {
		name string
		sds  []structureDefinition
		want string
	}{
		{"unknown type code", []structureDefinition{sd("Thing", "resource", "specialization", ed("Thing.x", 0, "1", "Nope"))}, `unknown type "Nope"`},
		{"contentReference to nowhere", []structureDefinition{sd("Thing", "resource", "specialization", elementDefinition{Path: "Thing.x", Max: "1", ContentReference: "#Thing.y"})}, "contentReference to unknown y"},
		{"several types without [x]", []structureDefinition{sd("string", "primitive-type", "specialization"), sd("Thing", "resource", "specialization", ed("Thing.x", 0, "1", "string", "string"))}, "not a choice"},
		{"numeric max", []structureDefinition{sd("string", "primitive-type", "specialization"), sd("Thing", "resource", "specialization", ed("Thing.x", 0, "2", "string"))}, `max "2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(tt.sds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("build error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

func TestWriteDescriptionSurvivesQuotesAndLines(t *testing.T) {
	var b strings.Builder
	text := "Says \"\"\"quoted\"\"\" and ends with a quote\"\nsecond line  "
	writeDescription(&b, "  ", text)
	sdl := "type Query {\n" + b.String() + "  x: Int\n}\n"
	s, err := gqlparser.LoadSchema(&ast.Source{Input: sdl})
	if err != nil {
		t.Fatalf("%v\n%s", err, sdl)
	}
	want := "Says \"\"\"quoted\"\"\" and ends with a quote\"\nsecond line"
	if got := s.Query.Fields.ForName("x").Description; got != want {
		t.Errorf("description %q, want %q", got, want)
	}
}

func TestSearchArgsRejectsNamesThatCollideOnceMapped(t *testing.T) {
	g := &gqlGen{search: &searchTable{}}
	r := &resourceOut{Type: "Patient", Params: []*paramOut{
		{Code: "death-date", Type: "date"}, {Code: "death_date", Type: "date"},
	}}
	g.searchArgs(r, "")
	if g.err == nil || !strings.Contains(g.err.Error(), "death_date") {
		t.Errorf("err = %v, want a collision on death_date", g.err)
	}
	g = &gqlGen{search: &searchTable{}}
	args := g.searchArgs(&resourceOut{Type: "Patient", Params: []*paramOut{{Code: "death-date", Type: "date"}}}, "")
	if g.err != nil || !strings.Contains(args, "death_date: String") || !strings.Contains(args, "FHIR search parameter death-date (date)") {
		t.Errorf("err %v, args %s", g.err, args)
	}
}

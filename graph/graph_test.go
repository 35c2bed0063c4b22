package graph

import (
	"os"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/fhirgraph/fhirgraph/graph/internal/gensum"
)

// The generated code must be what gqlgen makes of the schema and
// gqlgen.yml today, untouched: regenerate with go generate ./graph.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	want, err := os.ReadFile("../" + gensum.File)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gensum.Compute("..", gensum.GqlgenVersion(".."))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("graph's generated code is stale or was edited by hand: run `go generate ./graph`\nrecorded:\n%s\nnow:\n%s", want, got)
	}
}

func TestDepthCountsNestedSelectionsThroughFragments(t *testing.T) {
	for _, c := range []struct {
		query string
		want  int
	}{
		{`{ a }`, 1},
		{`{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`, 5},
		{`{ a { b { c } } d }`, 3},
		{`{ a { ... on T { b { c } } } }`, 3},
		{`{ a { ...F } } fragment F on T { b { c { d } } }`, 4},
	} {
		doc, err := parser.ParseQuery(&ast.Source{Input: c.query})
		if err != nil {
			t.Fatal(err)
		}
		// Link spreads to their definitions as validation does.
		for _, op := range doc.Operations {
			link(op.SelectionSet, doc.Fragments)
			if got := depth(op.SelectionSet, 0, 100); got != c.want {
				t.Errorf("depth(%s) = %d, want %d", c.query, got, c.want)
			}
		}
	}
}

func link(set ast.SelectionSet, frags ast.FragmentDefinitionList) {
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			link(s.SelectionSet, frags)
		case *ast.InlineFragment:
			link(s.SelectionSet, frags)
		case *ast.FragmentSpread:
			s.Definition = frags.ForName(s.Name)
			link(s.Definition.SelectionSet, frags)
		}
	}
}

func TestSearchNameMapsArgumentsBackToFHIRNames(t *testing.T) {
	for arg, want := range map[string]string{
		"family":               "family",
		"_lastUpdated":         "_lastUpdated",
		"_count":               "_count",
		"code_value_quantity":  "code-value-quantity",
		"general_practitioner": "general-practitioner",
	} {
		if got := searchName(arg); got != want {
			t.Errorf("searchName(%q) = %q, want %q", arg, got, want)
		}
	}
	if strings.Contains(searchName("_source"), "-") {
		t.Error("a leading underscore is kept")
	}
}

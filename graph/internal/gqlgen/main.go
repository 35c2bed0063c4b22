// Command gqlgen generates package graph from gqlgen.yml: gqlgen v0.17.98
// (the module's tool dependency) with one plugin. Run it from the
// repository root: go run ./graph/internal/gqlgen (see graph/doc.go).
//
// Why not plain `go tool gqlgen generate`: gqlgen names a Go parameter
// after each GraphQL argument with leading underscores dropped, so a type
// searchable by both _source and source (AuditEvent,
// QuestionnaireResponse) gets two parameters named source and the
// generated code does not compile. The plugin below renames such
// colliding parameters before any code is written; it changes Go names
// only, never the schema.
//
// It also marks, from the schema, the fields the server resolves rather
// than reads from a decoded resource (see resolvedFields), so gqlgen.yml
// need not list hundreds of them.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fhirgraph/fhirgraph/graph/internal/gensum"
)

func main() {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(2)
	}
	if err := resolvedFields(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(3)
	}
	if err := api.Generate(cfg, api.PrependPlugin(argNames{})); err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(3)
	}
	if err := writeSums(); err != nil {
		fmt.Fprintln(os.Stderr, "gqlgen:", err)
		os.Exit(4)
	}
}

// resolvedFields marks as resolvers every field that is not part of a
// stored resource's JSON: Reference.resource (in every typed reference,
// *Reference) and the reverse lists inside resources (Patient.ConditionList
// and the like). Their resolvers run concurrently, which is what lets the
// per-request loaders batch them.
func resolvedFields(cfg *config.Config) error {
	if err := cfg.LoadSchema(); err != nil {
		return err
	}
	for name, def := range cfg.Schema.Types {
		if def.Kind != ast.Object || name == "Query" || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			reference := f.Name == "resource" && strings.HasSuffix(name, "Reference")
			reverse := strings.HasSuffix(f.Name, "List") && f.Arguments.ForName("_reference") != nil
			if !reference && !reverse {
				continue
			}
			entry := cfg.Models[name]
			if entry.Fields == nil {
				entry.Fields = map[string]config.TypeMapField{}
			}
			field := entry.Fields[f.Name]
			field.Resolver = true
			entry.Fields[f.Name] = field
			cfg.Models[name] = entry
		}
	}
	return nil
}

// argNames gives arguments that collide with another of the same field
// after gqlgen's naming a distinct Go name: _source → underscoreSource.
type argNames struct{}

func (argNames) Name() string { return "fhirgraph-arg-names" }

func (argNames) GenerateCode(data *codegen.Data) error {
	for _, obj := range data.Objects {
		for _, f := range obj.Fields {
			seen := map[string]int{}
			for _, a := range f.Args {
				seen[a.VarName]++
			}
			for _, a := range f.Args {
				if seen[a.VarName] > 1 && strings.HasPrefix(a.Name, "_") {
					a.VarName = "underscore" + strings.ToUpper(a.VarName[:1]) + a.VarName[1:]
				}
			}
		}
	}
	return nil
}

// writeSums records the fingerprint of inputs and outputs (gensum.File)
// that graph's staleness test checks.
func writeSums() error {
	sum, err := gensum.Compute(".", gensum.GqlgenVersion("."))
	if err != nil {
		return err
	}
	return os.WriteFile(gensum.File, []byte(sum), 0o644)
}

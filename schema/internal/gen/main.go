// Command gen writes the tables package schema embeds:
//
//   - fhir-r4-elements.json, the FHIR R4 element table. It reads the base R4
//     StructureDefinitions from the HL7 definitions bundles and keeps, per
//     resource and datatype, only what a structural validator needs: element
//     paths, cardinality, type codes, contentReference targets and the
//     primitive formats.
//   - fhir.graphqls, the GraphQL schema (see graphql.go): one type per
//     resource type of the search registry and every datatype they use,
//     described from the US Core 4.0.0 and 6.1.0 profiles, with FHIR
//     GraphQL read, list, connection and reverse-reference fields.
//   - search-params.json, the search registry. It joins the R4 and US Core
//     SearchParameters of every resource type a US Core server
//     CapabilityStatement lists with what each US Core version expects of
//     them: parameters, combinations, _include/_revinclude, profiles,
//     interactions and operations; and R4's parameters of Group (bulk
//     export) and of the types the server writes itself (AuditEvent).
//
// Usage (from the schema directory, as go:generate runs it):
//
//	go run ./internal/gen -defs ../../shared/fhir-defs -out .
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// OutputName is the file the table is written to inside -out.
const OutputName = "fhir-r4-elements.json"

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defs := fs.String("defs", "", "folder holding the r4/ and us-core-<version>/ definitions")
	out := fs.String("out", ".", "folder to write "+OutputName+", "+SearchOutputName+" and "+GraphQLOutputName+" into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *defs == "" {
		return fmt.Errorf("-defs is required")
	}
	var sds []structureDefinition
	var compartment map[string][]string
	for _, name := range []string{"profiles-types.json", "profiles-resources.json"} {
		got, comp, err := readBundle(filepath.Join(*defs, "r4", name))
		if err != nil {
			return err
		}
		sds = append(sds, got...)
		if comp != nil {
			compartment = comp
		}
	}
	if compartment == nil {
		return fmt.Errorf("r4/profiles-resources.json: no Patient CompartmentDefinition")
	}
	tbl, err := build(sds)
	if err != nil {
		return err
	}
	r4, releases, err := readSearchInputs(*defs)
	if err != nil {
		return err
	}
	search, err := buildSearch(r4, releases)
	if err != nil {
		return err
	}
	for _, r := range search.resources {
		r.PatientCompartment = compartment[r.Type]
	}
	var profiles []usCoreProfiles
	for _, v := range usCoreVersions {
		got, _, err := readBundle(filepath.Join(*defs, "us-core-"+v, "structuredefinitions.json"))
		if err != nil {
			return err
		}
		profiles = append(profiles, usCoreProfiles{version: v, sds: got})
	}
	sdl, err := buildGraphQL(tbl, sds, profiles, search)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, OutputName), tbl.encode(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, SearchOutputName), search.encode(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*out, GraphQLOutputName), sdl, 0o644)
}

// structureDefinition holds the parts of an R4 StructureDefinition the
// generator reads; everything else in the bundles is ignored.
type structureDefinition struct {
	ResourceType   string `json:"resourceType"`
	ID             string `json:"id"`
	URL            string `json:"url"`
	Title          string `json:"title"`
	Description    string `json:"description"`
	Type           string `json:"type"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Derivation     string `json:"derivation"`
	BaseDefinition string `json:"baseDefinition"`
	FHIRVersion    string `json:"fhirVersion"`
	Snapshot       struct {
		Element []elementDefinition `json:"element"`
	} `json:"snapshot"`
	Differential struct {
		Element []elementDefinition `json:"element"`
	} `json:"differential"`
}

type elementDefinition struct {
	ID               string `json:"id"`
	Path             string `json:"path"`
	Short            string `json:"short"`
	MustSupport      bool   `json:"mustSupport"`
	Min              int    `json:"min"`
	Max              string `json:"max"`
	ContentReference string `json:"contentReference"`
	MaxLength        int    `json:"maxLength"`
	IsSummary        bool   `json:"isSummary"`
	Base             struct {
		Path string `json:"path"`
	} `json:"base"`
	Type    []typeRef `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`
}

type typeRef struct {
	Code          string          `json:"code"`
	TargetProfile []string        `json:"targetProfile"`
	Extension     []typeExtension `json:"extension"`
}

type typeExtension struct {
	URL         string `json:"url"`
	ValueURL    string `json:"valueUrl"`
	ValueString string `json:"valueString"`
}

// ext returns the value of the type extension whose url ends the given way
// (the R4 definitions use fhir-type and regex extensions on System types).
func (t typeRef) ext(suffix string) string {
	for _, e := range t.Extension {
		if len(e.URL) >= len(suffix) && e.URL[len(e.URL)-len(suffix):] == suffix {
			if e.ValueURL != "" {
				return e.ValueURL
			}
			return e.ValueString
		}
	}
	return ""
}

// readBundle returns the StructureDefinitions of one definitions bundle and,
// when the bundle holds it, R4's Patient CompartmentDefinition as the
// search parameters that put each resource type in a patient's compartment.
func readBundle(path string) ([]structureDefinition, map[string][]string, error) {
	var sds []structureDefinition
	var compartment map[string][]string
	err := bundleEntries(path, func(resourceType string, raw json.RawMessage) error {
		switch resourceType {
		case "StructureDefinition":
			var sd structureDefinition
			if err := json.Unmarshal(raw, &sd); err != nil {
				return err
			}
			sds = append(sds, sd)
		case "CompartmentDefinition":
			var cd struct {
				ID       string `json:"id"`
				Resource []struct {
					Code  string   `json:"code"`
					Param []string `json:"param"`
				} `json:"resource"`
			}
			if err := json.Unmarshal(raw, &cd); err != nil {
				return err
			}
			if cd.ID != "patient" {
				return nil
			}
			compartment = map[string][]string{}
			for _, r := range cd.Resource {
				if len(r.Param) > 0 {
					compartment[r.Code] = r.Param
				}
			}
		}
		return nil
	})
	return sds, compartment, err
}

// bundleEntries reads a definitions bundle and calls each with the
// resourceType and JSON of every entry's resource.
func bundleEntries(path string, each func(resourceType string, raw json.RawMessage) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range bundle.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := each(head.ResourceType, e.Resource); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

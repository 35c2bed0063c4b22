package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// GraphQLOutputName is the GraphQL schema written inside -out.
const GraphQLOutputName = "fhir.graphqls"

// usCoreProfiles is one US Core version's StructureDefinitions (profiles and
// extensions, with snapshots).
type usCoreProfiles struct {
	version string
	sds     []structureDefinition
}

// gqlGen turns the element table, the base definitions, the US Core profiles
// and the search registry into one SDL document.
type gqlGen struct {
	tbl       map[string]*typeEntry
	defs      map[string]*elementDefinition // base definitions by full path ("Observation.value[x]")
	notes     map[string]map[string]map[string][]string
	search    *searchTable
	profiles  []usCoreProfiles
	resources map[string]bool
	objects   map[string]string   // rendered object types by name
	unions    map[string][]string // union name → member resource types
	queue     []string            // datatypes still to render
	// pendingRefs are the typed Reference types (name, resource field type),
	// written from Reference's rendering once it is complete.
	pendingRefs [][2]string
	extDocs     map[string]string // Patient convenience field → description
	err         error
}

const fhirSD = "http://hl7.org/fhir/StructureDefinition/"

// scalars maps FHIR primitives to GraphQL scalars. The custom ones keep the
// FHIR lexical form as a string: a date may be partial ("2020-03"), a
// decimal keeps its precision ("1.50").
var scalars = map[string]string{
	"boolean": "Boolean", "integer": "Int", "positiveInt": "Int", "unsignedInt": "Int",
	"string": "String", "code": "String", "id": "String", "uri": "String", "url": "String",
	"canonical": "String", "markdown": "String", "oid": "String", "uuid": "String", "xhtml": "String",
	"date": "date", "dateTime": "dateTime", "instant": "instant", "time": "time",
	"decimal": "decimal", "base64Binary": "base64Binary",
}

var customScalars = []struct{ name, doc string }{
	{"base64Binary", "FHIR base64Binary: base64-encoded content, as in FHIR JSON."},
	{"date", "FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, as in FHIR JSON (partial dates kept)."},
	{"dateTime", "FHIR dateTime: a date, or a date and time with timezone, as in FHIR JSON (partial values kept)."},
	{"decimal", "FHIR decimal, kept exact: the JSON number's text, serialized as a string (\"1.50\" stays \"1.50\")."},
	{"instant", "FHIR instant: a full date and time with timezone, as in FHIR JSON."},
	{"time", "FHIR time: hh:mm:ss, as in FHIR JSON."},
}

// patientExtensions are the US Core extensions offered as typed fields on
// Patient; subs are the sub-extensions of complex ones with their type.
var patientExtensions = []struct {
	field, typ, url string
	subs            [][2]string
}{
	{"usCoreBirthSex", "String", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", nil},
	{"usCoreEthnicity", "USCoreEthnicity", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
		[][2]string{{"ombCategory", "[Coding]"}, {"detailed", "[Coding]"}, {"text", "String"}}},
	{"usCoreGenderIdentity", "[CodeableConcept]", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-genderIdentity", nil},
	{"usCoreRace", "USCoreRace", "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
		[][2]string{{"ombCategory", "[Coding]"}, {"detailed", "[Coding]"}, {"text", "String"}}},
}

// buildGraphQL writes the schema; it fails when the result does not
// validate with gqlparser, the parser gqlgen uses.
func buildGraphQL(tbl *table, base []structureDefinition, profiles []usCoreProfiles, search *searchTable) ([]byte, error) {
	g := &gqlGen{
		tbl: map[string]*typeEntry{}, defs: map[string]*elementDefinition{},
		notes: map[string]map[string]map[string][]string{}, search: search, profiles: profiles,
		resources: map[string]bool{}, objects: map[string]string{}, unions: map[string][]string{},
	}
	for i := range tbl.types {
		g.tbl[tbl.types[i].name] = &tbl.types[i]
	}
	for i := range base {
		sd := &base[i]
		if sd.Kind == "logical" || sd.Derivation == "constraint" {
			continue
		}
		for j := range sd.Snapshot.Element {
			ed := &sd.Snapshot.Element[j]
			g.defs[ed.Path] = ed
		}
	}
	for _, r := range search.resources {
		if g.tbl[r.Type] == nil {
			return nil, fmt.Errorf("graphql: resource %s has no definition", r.Type)
		}
		g.resources[r.Type] = true
	}
	g.collectNotes()
	if err := g.renderPatientExtensions(); err != nil {
		return nil, err
	}
	for _, r := range search.resources {
		g.renderType(r.Type)
	}
	for len(g.queue) > 0 {
		name := g.queue[0]
		g.queue = g.queue[1:]
		g.renderType(name)
	}
	if g.err != nil {
		return nil, g.err
	}
	sdl := g.document()
	if _, err := gqlparser.LoadSchema(&ast.Source{Name: GraphQLOutputName, Input: sdl}); err != nil {
		return nil, fmt.Errorf("graphql: generated schema does not validate: %w", err)
	}
	return []byte(sdl), nil
}

// collectNotes gathers, per base element path, what each US Core profile
// says about the element: must-support, cardinality and binding. Slices are
// left out: they constrain part of a list, not the element.
func (g *gqlGen) collectNotes() {
	for _, p := range g.profiles {
		for _, sd := range p.sds {
			if sd.Derivation != "constraint" || !g.resources[sd.Type] {
				continue
			}
			inDiff := map[string]bool{}
			for _, ed := range sd.Differential.Element {
				inDiff[ed.ID] = true
			}
			for _, ed := range sd.Snapshot.Element {
				if strings.Contains(ed.ID, ":") || ed.Path == sd.Type || !(ed.MustSupport || inDiff[ed.ID]) {
					continue
				}
				path := ed.Path
				var parts []string
				if g.defs[path] == nil {
					// A datatype's child (Patient.name.family): the field is
					// on the shared datatype, so the note goes on the
					// element holding it.
					for g.defs[path] == nil && strings.Contains(path, ".") {
						path = path[:strings.LastIndex(path, ".")]
					}
					if !ed.MustSupport || g.defs[path] == nil {
						continue
					}
					parts = append(parts, "US Core must-support of sub-element: "+strings.TrimPrefix(ed.Path, path+"."))
				} else if ed.MustSupport {
					parts = append(parts, "US Core must-support")
				}
				if ed.Path == path {
					parts = append(parts, fmt.Sprintf("cardinality %d..%s", ed.Min, ed.Max))
				}
				if ed.Path == path && ed.Binding != nil && ed.Binding.ValueSet != "" {
					parts = append(parts, fmt.Sprintf("binding %s to %s", ed.Binding.Strength, ed.Binding.ValueSet))
				}
				text := strings.Join(parts, "; ")
				byText := g.notes[path]
				if byText == nil {
					byText = map[string]map[string][]string{}
					g.notes[path] = byText
				}
				if byText[text] == nil {
					byText[text] = map[string][]string{}
				}
				byText[text][sd.ID] = append(byText[text][sd.ID], p.version)
			}
		}
	}
}

// noteLines renders the notes of one element, one line per distinct note,
// naming the profiles and versions that state it.
func (g *gqlGen) noteLines(path string) []string {
	byText := g.notes[path]
	var lines []string
	for _, text := range sortedKeys(byText) {
		var who []string
		for _, id := range sortedKeys(byText[text]) {
			who = append(who, id+" "+strings.Join(byText[text][id], ", "))
		}
		lines = append(lines, text+" ("+strings.Join(who, "; ")+")")
	}
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// renderType renders a resource or datatype and its backbone elements once.
func (g *gqlGen) renderType(name string) {
	if _, done := g.objects[name]; done {
		return
	}
	te := g.tbl[name]
	if te == nil || te.kind == "primitive-type" {
		g.fail("graphql: %s is not a complex type", name)
		return
	}
	g.objects[name] = "" // mark before recursing
	g.renderObject(te, "", name)
}

func (g *gqlGen) fail(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
}

// renderObject renders the object type gqlName holding the children of the
// element at prefix ("" for the type itself) of te.
func (g *gqlGen) renderObject(te *typeEntry, prefix, gqlName string) {
	if prev, ok := g.objects[gqlName]; ok && prev != "" {
		g.fail("graphql: type name %s is used twice", gqlName)
		return
	}
	var b strings.Builder
	rootPath := te.name
	if prefix != "" {
		rootPath += "." + prefix
	}
	if d := g.defs[rootPath]; d != nil {
		writeDescription(&b, "", d.Short)
	}
	b.WriteString("type " + gqlName)
	if prefix == "" && g.resources[te.name] {
		b.WriteString(" implements Resource")
	}
	b.WriteString(" {\n")
	for _, el := range te.elements {
		rel, ok := el.path, true
		if prefix != "" {
			rel, ok = strings.CutPrefix(el.path, prefix+".")
		}
		if !ok || strings.Contains(rel, ".") || el.max == "0" {
			continue
		}
		g.writeField(&b, te, el, rel)
	}
	if prefix == "" && te.name == "Patient" {
		g.writePatientExtras(&b)
	}
	if prefix == "" && te.name == "Reference" {
		writeDescription(&b, "  ", "The referenced resource, resolved by the server (FHIR GraphQL). With optional: true a reference that cannot be resolved gives null instead of an error.")
		b.WriteString("  " + referenceResourceField + "Resource\n")
	}
	b.WriteString("}\n")
	g.objects[gqlName] = b.String()
}

// backboneName names the type of a backbone element by its owner and path,
// as FHIR GraphQL does: Observation.component → ObservationComponent.
func backboneName(owner, path string) string {
	var b strings.Builder
	b.WriteString(owner)
	for _, seg := range strings.Split(path, ".") {
		b.WriteString(upperFirst(seg))
	}
	return b.String()
}

func (g *gqlGen) writeField(b *strings.Builder, te *typeEntry, el element, name string) {
	defPath := te.name + "." + el.path
	if el.choice != "" {
		defPath = te.name + "." + el.path[:len(el.path)-len(name)] + el.choice
	}
	def := g.defs[defPath]
	var typ string
	switch {
	case el.ref != "":
		typ = backboneName(te.name, el.ref)
	case el.typ == "BackboneElement" || el.typ == "Element":
		typ = backboneName(te.name, el.path)
		g.renderObject(te, el.path, typ)
	case el.typ == "Resource":
		typ = "Resource"
	case el.typ == "Reference":
		typ = g.referenceType(def)
	case el.path == "id" && g.resources[te.name]:
		typ = "ID"
	case scalars[el.typ] != "":
		typ = scalars[el.typ]
	case g.tbl[el.typ] != nil && g.tbl[el.typ].kind == "complex-type":
		typ = el.typ
		if _, done := g.objects[typ]; !done {
			g.queue = append(g.queue, typ)
		}
	default:
		g.fail("graphql: %s has type %q with no GraphQL mapping", defPath, el.typ)
		return
	}
	if el.max == "*" {
		typ = "[" + typ + "]"
	}
	var doc []string
	if def != nil && def.Short != "" {
		doc = append(doc, def.Short)
	}
	if el.choice != "" {
		doc = append(doc, fmt.Sprintf("One of the choices of %s.", el.choice))
	}
	doc = append(doc, g.noteLines(defPath)...)
	writeDescription(b, "  ", strings.Join(doc, "\n"))
	args := ""
	if el.typ == "Extension" {
		args = "(url: String)"
	}
	fmt.Fprintf(b, "  %s%s: %s\n", name, args, typ)
}

// referenceType returns the Reference type of an element: one whose
// resource field is the element's possible targets among the schema's
// resource types, or plain Reference (resource: Resource) when any resource
// may be targeted or none of the targets is in the schema.
func (g *gqlGen) referenceType(def *elementDefinition) string {
	var targets []string
	seen := map[string]bool{}
	if def != nil {
		for _, t := range def.Type {
			if t.Code != "Reference" {
				continue
			}
			for _, tp := range t.TargetProfile {
				name := strings.TrimPrefix(tp, fhirSD)
				if name == "Resource" {
					return "Reference"
				}
				if g.resources[name] && !seen[name] {
					seen[name] = true
					targets = append(targets, name)
				}
			}
		}
	}
	if len(targets) == 0 {
		g.renderType("Reference")
		return "Reference"
	}
	sort.Strings(targets)
	target := targets[0]
	if len(targets) > 1 {
		target = strings.Join(targets, "Or")
		g.unions[target] = targets
	}
	name := target + "Reference"
	if _, done := g.objects[name]; !done {
		g.renderType("Reference")
		g.objects[name] = ""
		g.pendingRefs = append(g.pendingRefs, [2]string{name, target})
	}
	return name
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// table is the generated output; its JSON form is read by package schema.
type table struct {
	fhirVersion   string
	resourceTypes []string
	types         []typeEntry
}

type typeEntry struct {
	name      string
	kind      string // primitive-type, complex-type or resource
	abstract  bool
	json      string // primitives: boolean, number or string
	regex     string // primitives: the value's regex from the definition
	maxLength int
	elements  []element
}

type element struct {
	path    string
	min     int
	max     string
	typ     string
	choice  string // the [x] name this element expands, e.g. "value[x]"
	ref     string // contentReference target, relative to the type
	system  bool   // typed with a FHIRPath System type: no _name shadow in JSON
	summary bool   // part of the summary form (_summary=true)
}

const systemPrefix = "http://hl7.org/fhirpath/System."

// build turns the base definitions into the table. Constraint profiles and
// logical models are skipped: the validator checks what every R4 instance
// must satisfy, whatever profile it claims.
func build(sds []structureDefinition) (*table, error) {
	byName := map[string]*structureDefinition{}
	var kept []*structureDefinition
	for i := range sds {
		sd := &sds[i]
		if sd.Kind == "logical" || sd.Derivation == "constraint" {
			continue
		}
		if sd.Kind != "resource" && sd.Kind != "complex-type" && sd.Kind != "primitive-type" {
			return nil, fmt.Errorf("%s: unexpected kind %q", sd.ID, sd.Kind)
		}
		if byName[sd.Type] != nil {
			return nil, fmt.Errorf("type %s is defined twice", sd.Type)
		}
		byName[sd.Type] = sd
		kept = append(kept, sd)
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Type < kept[j].Type })

	t := &table{}
	for _, sd := range kept {
		if t.fhirVersion == "" {
			t.fhirVersion = sd.FHIRVersion
		} else if sd.FHIRVersion != t.fhirVersion {
			return nil, fmt.Errorf("%s: fhirVersion %s, others are %s", sd.ID, sd.FHIRVersion, t.fhirVersion)
		}
		te, err := typeFrom(sd, byName)
		if err != nil {
			return nil, err
		}
		t.types = append(t.types, te)
		if sd.Kind == "resource" && !sd.Abstract {
			t.resourceTypes = append(t.resourceTypes, sd.Type)
		}
	}
	return t, t.check()
}

func typeFrom(sd *structureDefinition, byName map[string]*structureDefinition) (typeEntry, error) {
	te := typeEntry{name: sd.Type, kind: sd.Kind, abstract: sd.Abstract}
	if sd.Kind == "primitive-type" {
		te.json = jsonKind(sd, byName)
	}
	prefix := sd.Type + "."
	for _, ed := range sd.Snapshot.Element {
		if ed.Path == sd.Type {
			continue
		}
		rel, ok := strings.CutPrefix(ed.Path, prefix)
		if !ok {
			return te, fmt.Errorf("%s: element %s outside the type", sd.ID, ed.Path)
		}
		if ed.Max != "0" && ed.Max != "1" && ed.Max != "*" {
			return te, fmt.Errorf("%s: max %q is not 0, 1 or *", ed.Path, ed.Max)
		}
		// A primitive's value is the JSON value itself, not a member; its
		// definition carries the format instead.
		if sd.Kind == "primitive-type" && rel == "value" {
			if len(ed.Type) == 1 {
				te.regex = ed.Type[0].ext("/regex")
			}
			te.maxLength = ed.MaxLength
			continue
		}
		el := element{path: rel, min: ed.Min, max: ed.Max, summary: ed.IsSummary}
		if ed.ContentReference != "" {
			ref, ok := strings.CutPrefix(ed.ContentReference, "#"+prefix)
			if !ok {
				return te, fmt.Errorf("%s: contentReference %s leaves the type", ed.Path, ed.ContentReference)
			}
			el.ref = ref
			te.elements = append(te.elements, el)
			continue
		}
		if choice, ok := strings.CutSuffix(rel, "[x]"); ok {
			el.choice = rel[strings.LastIndex(rel, ".")+1:]
			for _, tr := range ed.Type {
				code, system := typeCode(tr, ed)
				e := el
				e.path, e.typ, e.system = choice+upperFirst(code), code, system
				te.elements = append(te.elements, e)
			}
			continue
		}
		if len(ed.Type) != 1 {
			return te, fmt.Errorf("%s: %d types on an element that is not a choice", ed.Path, len(ed.Type))
		}
		el.typ, el.system = typeCode(ed.Type[0], ed)
		te.elements = append(te.elements, el)
	}
	return te, nil
}

// typeCode maps a definition's type code to a FHIR type name. Elements that
// are XML attributes (Element.id, Extension.url, Resource.id) are typed with
// FHIRPath System types; their fhir-type extension names the FHIR type.
func typeCode(tr typeRef, ed elementDefinition) (code string, system bool) {
	if !strings.HasPrefix(tr.Code, systemPrefix) {
		return tr.Code, false
	}
	// R4's snapshots say "string" for Resource.id, but the specification
	// (resource.html, fhir.schema.json) types it as id, whose format rule
	// [A-Za-z0-9\-\.]{1,64} servers rely on.
	if ed.Base.Path == "Resource.id" {
		return "id", true
	}
	if ft := tr.ext("/structuredefinition-fhir-type"); ft != "" {
		return ft, true
	}
	return strings.ToLower(strings.TrimPrefix(tr.Code, systemPrefix)), true
}

// jsonKind follows a primitive's base definitions to the one that fixes its
// JSON form. R4 types positiveInt and unsignedInt as System.String in the
// snapshot, yet JSON carries them as numbers like integer, their base.
func jsonKind(sd *structureDefinition, byName map[string]*structureDefinition) string {
	for cur := sd; cur != nil; {
		switch cur.Type {
		case "boolean":
			return "boolean"
		case "integer", "decimal":
			return "number"
		}
		base := byName[cur.BaseDefinition[strings.LastIndex(cur.BaseDefinition, "/")+1:]]
		if base == nil || base.Kind != "primitive-type" {
			break
		}
		cur = base
	}
	return "string"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// check rejects a table the validator could not interpret: a type code with
// no definition or a contentReference to a missing element.
func (t *table) check() error {
	known := map[string]bool{}
	for _, te := range t.types {
		known[te.name] = true
	}
	for _, te := range t.types {
		paths := map[string]bool{}
		for _, el := range te.elements {
			paths[el.path] = true
		}
		for _, el := range te.elements {
			if el.ref != "" && !paths[el.ref] {
				return fmt.Errorf("%s.%s: contentReference to unknown %s", te.name, el.path, el.ref)
			}
			if el.ref == "" && !known[el.typ] {
				return fmt.Errorf("%s.%s: unknown type %q", te.name, el.path, el.typ)
			}
		}
	}
	return nil
}

// encode writes one element per line: compact, yet a regenerated table
// diffs readably.
func (t *table) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"generatedBy":"schema/internal/gen from the FHIR R4 StructureDefinitions; do not edit",` + "\n")
	b.WriteString(`"fhirVersion":` + quote(t.fhirVersion) + ",\n")
	b.WriteString(`"resourceTypes":[`)
	for i, rt := range t.resourceTypes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quote(rt))
	}
	b.WriteString("],\n\"types\":[\n")
	for i, te := range t.types {
		b.WriteString(`{"name":` + quote(te.name) + `,"kind":` + quote(te.kind))
		if te.abstract {
			b.WriteString(`,"abstract":true`)
		}
		if te.json != "" {
			b.WriteString(`,"json":` + quote(te.json))
		}
		if te.regex != "" {
			b.WriteString(`,"regex":` + quote(te.regex))
		}
		if te.maxLength > 0 {
			b.WriteString(`,"maxLength":` + strconv.Itoa(te.maxLength))
		}
		b.WriteString(`,"elements":[`)
		for j, el := range te.elements {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n" + el.encode())
		}
		b.WriteString("]}")
		if i < len(t.types)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

func (el element) encode() string {
	s := `{"path":` + quote(el.path) + `,"min":` + strconv.Itoa(el.min) + `,"max":` + quote(el.max)
	if el.typ != "" {
		s += `,"type":` + quote(el.typ)
	}
	if el.choice != "" {
		s += `,"choice":` + quote(el.choice)
	}
	if el.ref != "" {
		s += `,"ref":` + quote(el.ref)
	}
	if el.system {
		s += `,"system":true`
	}
	if el.summary {
		s += `,"summary":true`
	}
	return s + "}"
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

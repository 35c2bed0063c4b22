package fhirpath

import (
	"strings"
	"sync"

	"github.com/fhirgraph/fhirgraph/schema"
)

// typeInfo is one kind of JSON object — a resource, a complex datatype or a
// backbone element — with its elements keyed by JSON member name, so that
// navigation costs one map lookup per step.
type typeInfo struct {
	name  string               // "Observation", "Observation.component"
	elems map[string]*elemInfo // "code", "valueQuantity", …
	// choices holds the [x] base names ("value", "effective"): navigating
	// one of them picks whichever expansion the object carries.
	choices map[string]bool
}

// elemInfo is what navigating to one element yields.
type elemInfo struct {
	typ    string    // FHIR type reported in Node.Type
	ti     *typeInfo // children of a complex value; nil for primitives
	choice string    // [x] base name when this is one expansion
	// resource marks an element typed Resource (contained, entry.resource):
	// each value is typed by its own resourceType.
	resource bool
}

// model is the R4 element table turned into lookup structures once.
type model struct {
	types     map[string]*typeInfo // by type name, backbones by "Type.path"
	resources map[string]*typeInfo // instantiable resource types
	// base is each type's parent in the FHIR type hierarchy, so that
	// "is Quantity" holds for an Age and "is Resource" for a Patient.
	base map[string]string
}

var r4Model = sync.OnceValue(func() *model { return buildModel(schema.R4()) })

func buildModel(t *schema.Table) *model {
	m := &model{
		types:     map[string]*typeInfo{},
		resources: map[string]*typeInfo{},
		base:      map[string]string{},
	}
	get := func(key string) *typeInfo {
		ti := m.types[key]
		if ti == nil {
			ti = &typeInfo{name: key, elems: map[string]*elemInfo{}, choices: map[string]bool{}}
			m.types[key] = ti
		}
		return ti
	}
	kinds := make(map[string]string, len(t.Types))
	for i := range t.Types {
		kinds[t.Types[i].Name] = t.Types[i].Kind
	}
	for i := range t.Types {
		ty := &t.Types[i]
		m.base[ty.Name] = baseType(ty)
		if ty.Kind == "primitive-type" {
			continue
		}
		get(ty.Name)
		elemType := make(map[string]string, len(ty.Elements))
		for _, el := range ty.Elements {
			elemType[el.Path] = el.Type
		}
		for _, el := range ty.Elements {
			owner, name := ty.Name, el.Path
			if dot := strings.LastIndexByte(el.Path, '.'); dot >= 0 {
				owner, name = ty.Name+"."+el.Path[:dot], el.Path[dot+1:]
			}
			ei := &elemInfo{typ: el.Type, choice: strings.TrimSuffix(el.Choice, "[x]")}
			switch {
			case el.Ref != "":
				ei.typ, ei.ti = elemType[el.Ref], get(ty.Name+"."+el.Ref)
			case el.Type == "BackboneElement" || el.Type == "Element":
				ei.ti = get(ty.Name + "." + el.Path)
			case el.Type == "Resource":
				ei.resource = true
			case kinds[el.Type] == "complex-type" || kinds[el.Type] == "resource":
				ei.ti = get(el.Type)
			}
			o := get(owner)
			o.elems[name] = ei
			if ei.choice != "" {
				o.choices[ei.choice] = true
			}
		}
	}
	for _, rt := range t.ResourceTypes {
		m.resources[rt] = m.types[rt]
	}
	// Profiles on Quantity that appear as type names in definitions but
	// are not types of their own in the table.
	m.base["SimpleQuantity"] = "Quantity"
	m.base["MoneyQuantity"] = "Quantity"
	return m
}

// baseType is the parent of ty in the R4 type hierarchy.
func baseType(ty *schema.Type) string {
	switch ty.Name {
	case "Resource", "Element":
		return ""
	case "DomainResource", "Bundle", "Binary", "Parameters":
		return "Resource"
	case "Age", "Count", "Distance", "Duration":
		return "Quantity"
	case "code", "id", "markdown":
		return "string"
	case "canonical", "oid", "url", "uuid":
		return "uri"
	case "positiveInt", "unsignedInt":
		return "integer"
	}
	if ty.Kind == "resource" {
		return "DomainResource"
	}
	return "Element"
}

// isType reports whether a value of type actual is a want, subtypes included.
func (m *model) isType(actual, want string) bool {
	for t := actual; t != ""; t = m.base[t] {
		if t == want {
			return true
		}
	}
	return false
}

// typeSet is a type with its subtypes, for testing items against it.
type typeSet struct {
	name string
	// names are name and its subtypes, compared in turn: cheaper than
	// walking the hierarchy for the few types a set usually holds. Nil
	// for types with too many subtypes to scan (Resource, Element).
	names []string
}

func (m *model) typeSet(name string) *typeSet {
	s := &typeSet{name: name}
	for t := range m.base {
		if m.isType(t, name) {
			s.names = append(s.names, t)
		}
	}
	if len(s.names) > 8 {
		s.names = nil
	}
	return s
}

func (s *typeSet) has(m *model, typ string) bool {
	if s.names == nil {
		return m.isType(typ, s.name)
	}
	for _, n := range s.names {
		if n == typ {
			return true
		}
	}
	return false
}

// knownType reports whether name is a type an expression may test for.
func (m *model) knownType(name string) bool {
	_, ok := m.base[name]
	return ok
}

// systemTypes maps FHIRPath System types to the FHIR primitive they hold.
var systemTypes = map[string]string{
	"Boolean":  "boolean",
	"String":   "string",
	"Integer":  "integer",
	"Decimal":  "decimal",
	"Date":     "date",
	"DateTime": "dateTime",
	"Time":     "time",
}

// resourceTypeOf is the resource type named by a reference or canonical:
// "Patient/1", "http://x/fhir/Patient/1/_history/2", or "" when it names
// none (a contained "#id", a urn:uuid:…, an unknown type).
func (m *model) resourceTypeOf(ref string) string {
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.IndexAny(ref, "?#|"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if slash <= 0 {
		return ""
	}
	rt := ref[:slash]
	if j := strings.LastIndexByte(rt, '/'); j >= 0 {
		rt = rt[j+1:]
	}
	if m.resources[rt] == nil {
		return ""
	}
	return rt
}

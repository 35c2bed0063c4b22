package validate

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/fhirgraph/fhirgraph/schema"
)

// model is the element table of package schema turned into lookup
// structures once, so validating a resource allocates no maps and compiles
// no regexes.
type model struct {
	resources map[string]*node // instantiable resource types
	abstract  map[string]bool  // Resource, DomainResource
}

// node is one kind of JSON object: a resource, a datatype, a backbone
// element, or the `_name` shadow of a primitive.
type node struct {
	name     string // for messages: "HumanName", "Patient.contact"
	fields   map[string]*field
	required []requirement
	reqMask  uint64
	bits     uint // mask bits handed out
}

// requirement is an element (or choice group) with min ≥ 1; bit marks it in
// the per-object presence mask.
type requirement struct {
	name string
	bit  uint64
}

type fieldKind uint8

const (
	kindPrimitive fieldKind = iota
	kindComplex
	kindResource
)

// field is one element as it appears as a JSON member.
type field struct {
	name       string // JSON member name, "valueQuantity" for a choice
	shadowName string // "_" + name
	typeName   string // for messages
	many       bool   // max "*"
	prohibited bool   // max "0"
	system     bool   // no `_name` shadow
	kind       fieldKind
	prim       *primitive // kindPrimitive
	node       *node      // kindComplex
	choice     string     // "value[x]" when one expansion of a choice
	choiceBit  uint64     // marks the choice group within its node; 0 if none
	reqBit     uint64     // marks the requirement it satisfies; 0 if optional
}

type jsonKind uint8

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonBool
)

// primitive is a primitive datatype: its JSON form, its lexical check, and
// the node for its `_name` shadow object (id, extension).
type primitive struct {
	name      string
	json      jsonKind
	check     func(string) bool
	hint      string // the expected form, for messages
	maxLength int
	shadow    *node
}

var compiled = sync.OnceValue(func() *model {
	m, err := compile(schema.R4())
	if err != nil {
		// The table is generated and tested; one this code cannot read is
		// a build defect, caught by the package tests.
		panic(err)
	}
	return m
})

func compile(t *schema.Table) (*model, error) {
	m := &model{resources: map[string]*node{}, abstract: map[string]bool{}}
	prims := map[string]*primitive{}
	for i := range t.Types {
		if ty := &t.Types[i]; ty.Kind == "primitive-type" {
			p, err := newPrimitive(ty)
			if err != nil {
				return nil, err
			}
			prims[ty.Name] = p
		}
	}
	roots := map[string]*node{}
	var all []*typeNodes
	for i := range t.Types {
		ty := &t.Types[i]
		tn, err := newTypeNodes(ty)
		if err != nil {
			return nil, err
		}
		all = append(all, tn)
		root := tn.nodes[""]
		roots[ty.Name] = root
		switch {
		case ty.Kind == "primitive-type":
			prims[ty.Name].shadow = root
		case ty.Kind == "resource" && ty.Abstract:
			m.abstract[ty.Name] = true
		case ty.Kind == "resource":
			m.resources[ty.Name] = root
		}
	}
	// Element types are resolved once every type has its root node, since
	// datatypes refer to each other (Identifier ↔ Reference).
	for _, tn := range all {
		for i, f := range tn.fields {
			if err := tn.resolve(f, &tn.ty.Elements[i], prims, roots); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// typeNodes are the nodes of one type: its root ("") and one per backbone
// element path, with fields[i] made from ty.Elements[i].
type typeNodes struct {
	ty     *schema.Type
	nodes  map[string]*node
	fields []*field
}

func newTypeNodes(ty *schema.Type) (*typeNodes, error) {
	tn := &typeNodes{ty: ty, nodes: map[string]*node{"": {name: ty.Name, fields: map[string]*field{}}}}
	// An element with children listed under its path is a backbone element
	// (or a datatype's inline Element, like Timing.repeat) and gets a node.
	paths := make(map[string]bool, len(ty.Elements))
	for _, el := range ty.Elements {
		paths[el.Path] = true
		if dot := strings.LastIndexByte(el.Path, '.'); dot > 0 && tn.nodes[el.Path[:dot]] == nil {
			tn.nodes[el.Path[:dot]] = &node{name: ty.Name + "." + el.Path[:dot], fields: map[string]*field{}}
		}
	}
	for i := range ty.Elements {
		el := &ty.Elements[i]
		parent, name := "", el.Path
		if dot := strings.LastIndexByte(el.Path, '.'); dot > 0 {
			parent, name = el.Path[:dot], el.Path[dot+1:]
		}
		if parent != "" && !paths[parent] {
			return nil, fmt.Errorf("validate: %s.%s has no parent element", ty.Name, el.Path)
		}
		f := &field{name: name, shadowName: "_" + name, typeName: el.Type, many: el.Max == "*",
			prohibited: el.Max == "0", system: el.System, choice: el.Choice}
		if err := tn.nodes[parent].add(f, el); err != nil {
			return nil, err
		}
		tn.fields = append(tn.fields, f)
	}
	return tn, nil
}

// resolve says what the values of f are checked against.
func (tn *typeNodes) resolve(f *field, el *schema.Element, prims map[string]*primitive, roots map[string]*node) error {
	switch {
	case el.Ref != "":
		f.kind, f.node, f.typeName = kindComplex, tn.nodes[el.Ref], "BackboneElement"
	case tn.nodes[el.Path] != nil:
		f.kind, f.node = kindComplex, tn.nodes[el.Path]
	case el.Type == "Resource":
		f.kind = kindResource
	case prims[el.Type] != nil:
		f.kind, f.prim = kindPrimitive, prims[el.Type]
	default:
		f.kind, f.node = kindComplex, roots[el.Type]
	}
	if f.kind == kindComplex && f.node == nil {
		return fmt.Errorf("validate: %s.%s: no definition for %s%s", tn.ty.Name, el.Path, el.Type, el.Ref)
	}
	return nil
}

// add registers f in n, giving required elements and choice groups a bit of
// the per-object masks.
func (n *node) add(f *field, el *schema.Element) error {
	if n.fields[f.name] != nil {
		return fmt.Errorf("validate: %s.%s is defined twice", n.name, f.name)
	}
	group := f.name
	if f.choice != "" {
		group = f.choice
		for _, g := range n.fields {
			if g.choice == f.choice {
				f.choiceBit, f.reqBit = g.choiceBit, g.reqBit
				break
			}
		}
		if f.choiceBit == 0 {
			f.choiceBit = n.nextBit()
		}
	}
	if el.Min > 0 && f.reqBit == 0 {
		f.reqBit = n.nextBit()
		n.reqMask |= f.reqBit
		n.required = append(n.required, requirement{name: group, bit: f.reqBit})
	}
	if n.bits > 64 {
		return fmt.Errorf("validate: %s has more than 64 required elements and choices", n.name)
	}
	n.fields[f.name] = f
	return nil
}

// nextBit hands out the node's next mask bit; no R4 node needs more than a
// dozen, and add reports one that would need more than 64.
func (n *node) nextBit() uint64 {
	n.bits++
	if n.bits > 64 {
		return 0
	}
	return 1 << (n.bits - 1)
}

func newPrimitive(ty *schema.Type) (*primitive, error) {
	p := &primitive{name: ty.Name, maxLength: ty.MaxLength}
	switch ty.JSON {
	case "boolean":
		p.json = jsonBool
	case "number":
		p.json = jsonNumber
	case "string":
		p.json = jsonString
	default:
		return nil, fmt.Errorf("validate: primitive %s has JSON form %q", ty.Name, ty.JSON)
	}
	if c, ok := checkers[ty.Name]; ok {
		p.check, p.hint = c.check, c.hint
		return p, nil
	}
	// A primitive without a hand-written checker falls back to its regex.
	p.check, p.hint = func(string) bool { return true }, ty.Name
	if ty.Regex != "" {
		re, err := regexp.Compile(`^(?:` + ty.Regex + `)$`)
		if err != nil {
			return nil, fmt.Errorf("validate: primitive %s: %w", ty.Name, err)
		}
		p.check, p.hint = re.MatchString, "matching "+ty.Regex
	}
	return p, nil
}

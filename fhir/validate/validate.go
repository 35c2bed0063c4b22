// Package validate checks FHIR R4 resources structurally against the element
// table generated from the FHIR R4 definitions (see package schema): element
// names, cardinality, choice types, JSON types and primitive formats, the
// JSON representation rules (`_name` shadows, nulls, empty values), and
// nested resources. It does not check invariants, terminology bindings,
// reference targets or profiles.
//
// Issue paths are FHIRPath-like and use JSON member names: the root is the
// resource type, repeating elements carry their index, a choice element is
// named as in JSON ("Observation.valueQuantity.value"), the content of a
// `_name` shadow is reported under the primitive's own name
// ("Patient.birthDate.extension[0].url"), and a nested resource continues
// its container's path without naming its own type
// ("Bundle.entry[2].resource.name[0].given[0]").
package validate

import (
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Issue is one problem found in a resource.
type Issue struct {
	// Code is an OperationOutcome issue type:
	//   - "invalid": not a resource (resourceType missing, unknown or abstract);
	//   - "structure": unknown element, an array where one value belongs or
	//     the reverse, an object where a primitive belongs, a choice given
	//     twice, misplaced null, empty object or array, misaligned `_name`;
	//   - "required": an element with minimum cardinality 1 is missing;
	//   - "value": a primitive of the wrong JSON type or lexical form.
	Code string
	// Path is the FHIRPath location, e.g. "Patient.name[0].given[1]".
	Path    string
	Message string
}

// Issue codes.
const (
	codeInvalid   = "invalid"
	codeStructure = "structure"
	codeRequired  = "required"
	codeValue     = "value"
)

// IsResourceType reports whether name is an instantiable R4 resource type.
func IsResourceType(name string) bool {
	_, ok := compiled().resources[name]
	return ok
}

// ResourceTypes lists the R4 resource types IsResourceType accepts, in
// order.
func ResourceTypes() []string {
	return slices.Sorted(maps.Keys(compiled().resources))
}

// Resource checks one resource (including contained and nested resources)
// and returns every problem found; nil means valid. It accepts any tree,
// including ones not made by fhirjson.Parse, and never panics.
func Resource(r *fhirjson.Object) []Issue {
	if r == nil {
		return []Issue{{Code: codeInvalid, Message: "no resource given"}}
	}
	s := states.Get().(*state)
	s.m = compiled()
	s.resource(r)
	issues := s.issues
	s.issues, s.segs, s.depth, s.objects, s.stopped = nil, s.segs[:0], 0, 0, false
	states.Put(s)
	return issues
}

// states recycles the walk's path stack between calls.
var states = sync.Pool{New: func() any { return &state{segs: make([]segment, 0, 32)} }}

// state is one walk over a resource tree. The path is kept as a stack of
// segments and only turned into a string when an issue is reported.
type state struct {
	m       *model
	segs    []segment
	issues  []Issue
	depth   int
	objects int  // objects visited so far
	stopped bool // a limit was hit; the walk unwinds without checking more
}

type segment struct {
	name  string
	index int // -1 when the element does not repeat
}

// Limits for trees not made by fhirjson.Parse, which may nest without limit,
// share subtrees (so the walk grows exponentially) or contain themselves.
// Parsed documents reach them only at sizes far beyond any request: at least
// 10 bytes per object, 40 MB for maxObjects.
const (
	maxDepth   = 200
	maxObjects = 1 << 22
	// maxIssues keeps a hopeless document from producing an outcome larger
	// than itself; nobody reads past the first thousand.
	maxIssues = 1000
)

func (s *state) push(name string) { s.segs = append(s.segs, segment{name, -1}) }
func (s *state) pop()             { s.segs = s.segs[:len(s.segs)-1] }
func (s *state) index(i int)      { s.segs[len(s.segs)-1].index = i }

func (s *state) path() string {
	n := 0
	for _, sg := range s.segs {
		n += len(sg.name) + 6
	}
	b := make([]byte, 0, n)
	for i, sg := range s.segs {
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, sg.name...)
		if sg.index >= 0 {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(sg.index), 10)
			b = append(b, ']')
		}
	}
	return string(b)
}

func (s *state) add(code, msg string) {
	if s.stopped {
		return
	}
	if len(s.issues) == maxIssues {
		s.stop("more than " + strconv.Itoa(maxIssues) + " issues; stopped checking")
		return
	}
	s.issues = append(s.issues, Issue{Code: code, Path: s.path(), Message: msg})
}

// stop reports why the walk ends early and ends it.
func (s *state) stop(msg string) {
	s.issues = append(s.issues, Issue{Code: codeStructure, Path: s.path(), Message: msg})
	s.stopped = true
}

// addAt reports an issue at the current path extended by name.
func (s *state) addAt(name, code, msg string) {
	s.push(name)
	s.add(code, msg)
	s.pop()
}

// resource checks an object that must be a resource, typed by its own
// resourceType. At the top of the tree the type starts the path.
func (s *state) resource(o *fhirjson.Object) {
	v, ok := o.Get("resourceType")
	rt, isString := v.(string)
	switch {
	case !ok:
		s.addAt("resourceType", codeInvalid, "missing resourceType: a resource must name its type")
		return
	case !isString:
		s.addAt("resourceType", codeInvalid, "resourceType must be a string naming the resource type")
		return
	}
	n := s.m.resources[rt]
	if n == nil {
		msg := quote(rt) + " is not an R4 resource type"
		if s.m.abstract[rt] {
			msg = rt + " is abstract: give the concrete resource type"
		}
		s.addAt("resourceType", codeInvalid, msg)
		return
	}
	if len(s.segs) == 0 {
		s.push(rt)
		defer s.pop()
	}
	s.object(o, n, true)
}

// object checks the members of one JSON object against node n.
func (s *state) object(o *fhirjson.Object, n *node, isResource bool) {
	if len(o.Members) == 0 {
		s.add(codeStructure, "empty object: an element must have a value or children; omit it instead")
		return
	}
	if s.stopped {
		return
	}
	if s.depth >= maxDepth {
		s.add(codeStructure, "elements nested too deeply")
		return
	}
	if s.objects++; s.objects > maxObjects {
		s.stop("more than " + strconv.Itoa(maxObjects) + " objects; stopped checking")
		return
	}
	s.depth++
	defer func() { s.depth-- }()
	var present, choices uint64
	for i := range o.Members {
		m := &o.Members[i]
		if isResource && m.Name == "resourceType" {
			continue
		}
		f, shadow := n.fields[m.Name], false
		if f == nil && len(m.Name) > 1 && m.Name[0] == '_' {
			f, shadow = n.fields[m.Name[1:]], true
		}
		if f == nil || (shadow && (f.kind != kindPrimitive || f.system)) {
			s.unknown(m.Name, n, shadow && f != nil)
			continue
		}
		s.push(f.name)
		switch {
		case f.prohibited:
			s.add(codeStructure, quote(m.Name)+" is not allowed in "+n.name)
		case f.choiceBit != 0 && choices&f.choiceBit != 0 && s.choiceClash(o, i, n, f):
			// reported by choiceClash; the second type is not checked further
		default:
			choices |= f.choiceBit
			present |= f.reqBit
			if shadow {
				s.shadow(o, f, m.Value)
			} else {
				s.member(o, f, m.Value)
			}
		}
		s.pop()
	}
	if present != n.reqMask {
		for _, r := range n.required {
			if present&r.bit == 0 {
				s.addAt(r.name, codeRequired, "missing required element "+quote(r.name)+" of "+n.name)
			}
		}
	}
}

func (s *state) unknown(name string, n *node, extended bool) {
	msg := "unknown element " + quote(name) + " in " + n.name
	switch {
	case name == "fhir_comments":
		msg = "fhir_comments is not part of FHIR R4 JSON; remove it"
	case extended:
		msg = quote(name[1:]) + " cannot carry id or extensions, so " + quote(name) + " is not allowed in " + n.name
	}
	s.addAt(name, codeStructure, msg)
}

// choiceClash reports, when a member earlier in o is another type of the
// same choice, that only one may be given. The same type as value and
// `_name` shadow is no clash.
func (s *state) choiceClash(o *fhirjson.Object, i int, n *node, f *field) bool {
	for _, prev := range o.Members[:i] {
		g := n.fields[prev.Name]
		if g == nil && len(prev.Name) > 1 && prev.Name[0] == '_' {
			g = n.fields[prev.Name[1:]]
		}
		if g != nil && g.choiceBit == f.choiceBit && g != f {
			s.add(codeStructure, f.choice+" is given twice, as "+quote(g.name)+" and "+quote(f.name)+"; only one type is allowed")
			return true
		}
	}
	return false
}

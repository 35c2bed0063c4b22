// Package fhirpath evaluates the FHIRPath expressions of search parameters
// on FHIR R4 resources parsed by package fhirjson, typing every result
// from the R4 element table so that callers can normalize it.
//
// It implements the part of FHIRPath that the R4 and US Core search
// parameter expressions use:
//
//   - paths, with a leading type name ("Observation.code") that restricts
//     the expression to that resource type, and choice elements
//     ("Observation.value" is whichever value[x] is present;
//     "valueDateTime" names one expansion)
//   - the operators | (union), = and !=, and, or, xor, is, as, and [n]
//     with an integer literal
//   - the functions where, exists, empty, first, last, count, not,
//     hasValue, resolve, as, is, ofType and extension(url)
//   - string, integer, decimal and boolean literals, {}, $this, and
//     %resource (also %rootResource, %context) for the resource itself
//
// Everything else (arithmetic, comparison, date literals, other functions)
// is rejected by Compile. Departures from the FHIRPath specification: "as"
// filters a collection of several items instead of failing, as the R4
// definitions ("Observation.component.value as Quantity") require;
// resolve() fetches nothing (see Node); = compares dates as strings; and
// the id and extensions of primitives, kept in their `_name` shadows, are
// not reachable.
//
// Search indexing compiles each expression once and calls ForType once per
// resource type; the result skips, at no cost per resource, the union
// branches written for other types, and navigates with element lookups
// resolved in advance.
package fhirpath

import (
	"fmt"
	"sync"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Node is one item of a result collection.
type Node struct {
	// Value is the fhirjson value: an *Object for complex types and
	// resources, a string, json.Number or bool for primitives. It is nil
	// only for the result of resolve() on a reference to another resource,
	// which this package cannot fetch.
	Value any
	// Type is the FHIR type: a datatype ("Period", "dateTime", "code"),
	// "BackboneElement" or "Element" for a backbone element, or the
	// resource type of a resource. It is "" only for members the R4 table
	// does not define.
	Type string
}

// Expr is a compiled expression. It is immutable and safe for concurrent
// use; a nil *Expr evaluates to nothing.
type Expr struct {
	src  string
	root node
	// forType is the resource type the expression was specialized for.
	forType string
	// byType caches ForType for Eval, by resource type; values are *Expr,
	// nil when no branch applies.
	byType sync.Map
}

// Compile parses an expression once. It reports an *Error for a
// malformed expression, an unknown function or type name, and for the
// parts of FHIRPath this package does not implement.
func Compile(expr string) (*Expr, error) {
	root, err := parse(expr, r4Model())
	if err != nil {
		return nil, err
	}
	return &Expr{src: expr, root: root}, nil
}

// String returns the expression as written.
func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	return e.src
}

// ForType returns the expression specialized for resources of
// resourceType: union branches written for other types ("CarePlan.subject"
// in a parameter shared by many resources) are dropped. It returns nil
// when no branch can apply, so callers can skip the parameter.
func (e *Expr) ForType(resourceType string) *Expr {
	if e == nil {
		return nil
	}
	m := r4Model()
	if m.resources[resourceType] == nil {
		return nil
	}
	n := specialize(e.root, resourceType, m, true)
	if _, empty := n.(emptyNode); empty {
		return nil
	}
	ti := m.resources[resourceType]
	n, _ = bind(n, ti, m, ti)
	return &Expr{src: e.src, root: n, forType: resourceType}
}

// Eval evaluates the expression on a resource. It fails when the resource
// has no resourceType the R4 table knows, when the expression came from
// ForType for another resource type, and when the expression asks a
// boolean of several items (a where() whose criteria give two values).
func (e *Expr) Eval(resource *fhirjson.Object) ([]Node, error) {
	if e == nil || resource == nil {
		return nil, nil
	}
	m := r4Model()
	rt := resource.String("resourceType")
	ti := m.resources[rt]
	if ti == nil {
		return nil, fmt.Errorf("fhirpath: %q is not an R4 resource type", rt)
	}
	x := e
	switch e.forType {
	case rt:
	case "":
		if x = e.specialized(rt); x == nil {
			return nil, nil
		}
	default:
		return nil, fmt.Errorf("fhirpath: %q is specialized for %s, not %s", e.src, e.forType, rt)
	}
	c := ctxPool.Get().(*evalCtx)
	c.root[0] = item{v: resource, typ: rt, ti: ti}
	r, err := x.root.eval(c, c.root[:])
	var out []Node
	if err == nil && len(r) > 0 {
		out = make([]Node, len(r))
		for i := range r {
			out[i] = Node{Value: r[i].v, Type: r[i].typ}
		}
	}
	c.release()
	if err != nil {
		return nil, fmt.Errorf("%w, evaluating %q", err, e.src)
	}
	return out, nil
}

func (e *Expr) specialized(rt string) *Expr {
	if v, ok := e.byType.Load(rt); ok {
		return v.(*Expr)
	}
	x := e.ForType(rt)
	e.byType.Store(rt, x)
	return x
}

var ctxPool = sync.Pool{New: func() any { return &evalCtx{m: r4Model()} }}

// release clears what the evaluation left in the context, so a pooled
// context does not keep a resource alive, and returns it to the pool.
func (c *evalCtx) release() {
	c.truncate(0)
	clear(c.buf[:c.hw])
	c.hw = 0
	c.root[0] = item{}
	ctxPool.Put(c)
}

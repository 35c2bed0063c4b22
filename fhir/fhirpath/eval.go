package fhirpath

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// item is one member of a collection during evaluation: the value, its FHIR
// type, and where to find its children.
type item struct {
	v   any
	typ string
	ti  *typeInfo
}

// evalCtx is the state of one evaluation. Collections are regions of buf,
// used as a stack: a node appends its result (and any intermediate
// collections, below it) after everything still in use, and truncates
// only to lengths it saw on entry, once it no longer needs what lies
// past them. So once buf has grown to fit, evaluation allocates nothing
// but its result.
type evalCtx struct {
	buf  []item
	hw   int // the most of buf used, to clear on release
	root [1]item
	m    *model
}

// node is a compiled expression. eval returns the result of applying it to
// focus: a region of c.buf at or past its length on entry, or a slice that
// must not be written (focus itself, a literal).
type node interface {
	eval(c *evalCtx, focus []item) ([]item, error)
}

// truncate drops buf back to n items, remembering how far it reached.
func (c *evalCtx) truncate(n int) {
	if len(c.buf) > c.hw {
		c.hw = len(c.buf)
	}
	c.buf = c.buf[:n]
}

func (c *evalCtx) since(start int) []item { return c.buf[start:len(c.buf):len(c.buf)] }

var (
	trueItems  = []item{{v: true, typ: "boolean"}}
	falseItems = []item{{v: false, typ: "boolean"}}
)

func boolItems(b bool) []item {
	if b {
		return trueItems
	}
	return falseItems
}

// unknownElem types members the R4 table does not define.
var unknownElem = &elemInfo{}

// children appends the values of the member name of it, arrays flattened.
func (c *evalCtx) children(it *item, name string) {
	obj, ok := it.v.(*fhirjson.Object)
	// `_name` members are the shadows of primitives, not values.
	if !ok || name == "" || name[0] == '_' {
		return
	}
	ti := it.ti
	if ti == nil {
		if v, ok := obj.Get(name); ok {
			c.appendValue(v, unknownElem)
		}
		return
	}
	if ei := ti.elems[name]; ei != nil {
		if v, ok := obj.Get(name); ok {
			c.appendValue(v, ei)
		}
		return
	}
	if ti.choices[name] {
		c.choiceChildren(obj, ti, name)
		return
	}
	if v, ok := obj.Get(name); ok {
		c.appendValue(v, unknownElem)
	}
}

// choiceChildren appends the value of whichever expansion of the choice
// base (valueQuantity, valueString, … for "value") obj carries.
func (c *evalCtx) choiceChildren(obj *fhirjson.Object, ti *typeInfo, base string) {
	for i := range obj.Members {
		mem := &obj.Members[i]
		if len(mem.Name) > len(base) && strings.HasPrefix(mem.Name, base) {
			if ei := ti.elems[mem.Name]; ei != nil && ei.choice == base {
				c.appendValue(mem.Value, ei)
			}
		}
	}
}

func (c *evalCtx) appendValue(v any, ei *elemInfo) {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			c.appendOne(e, ei)
		}
		return
	}
	c.appendOne(v, ei)
}

func (c *evalCtx) appendOne(v any, ei *elemInfo) {
	if v == nil {
		return // a null in a primitive array, its value only in the shadow
	}
	if ei.resource || ei.typ == "" {
		if obj, ok := v.(*fhirjson.Object); ok {
			if rt := obj.String("resourceType"); c.m.resources[rt] != nil {
				c.buf = append(c.buf, item{v: v, typ: rt, ti: c.m.resources[rt]})
				return
			}
		}
	}
	c.buf = append(c.buf, item{v: v, typ: ei.typ, ti: ei.ti})
}

// memberNode navigates to an element; a choice base name ("value") yields
// whichever expansion is present (valueQuantity, valueString, …).
type memberNode struct{ name string }

func (n *memberNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		c.children(&focus[i], n.name)
	}
	return c.since(start), nil
}

// typeFilterNode is a leading type name: "Observation" in
// "Observation.code" keeps the focus items that are Observations.
type typeFilterNode struct{ t *typeSet }

func (n *typeFilterNode) eval(c *evalCtx, focus []item) ([]item, error) {
	return c.filterType(focus, n.t), nil
}

// filterType returns the items of in whose type is in t, in itself when
// all are.
func (c *evalCtx) filterType(in []item, t *typeSet) []item {
	all := true
	for i := range in {
		if !t.has(c.m, in[i].typ) {
			all = false
			break
		}
	}
	if all {
		return in
	}
	start := len(c.buf)
	for i := range in {
		if t.has(c.m, in[i].typ) {
			c.buf = append(c.buf, in[i])
		}
	}
	return c.since(start)
}

type thisNode struct{}

func (thisNode) eval(_ *evalCtx, focus []item) ([]item, error) { return focus, nil }

// rootNode is %resource, %rootResource and %context: search parameters
// are evaluated on the resource itself.
type rootNode struct{}

func (rootNode) eval(c *evalCtx, _ []item) ([]item, error) { return c.root[:], nil }

type emptyNode struct{}

func (emptyNode) eval(*evalCtx, []item) ([]item, error) { return nil, nil }

type literalNode struct{ items []item }

func (n *literalNode) eval(*evalCtx, []item) ([]item, error) { return n.items, nil }

// pathNode is head.steps[0].steps[1]…, each step applied to the result of
// the one before.
type pathNode struct {
	head  node
	steps []node
	// emptyFrom is the first step from which on an empty collection can
	// only give empty (see newPath).
	emptyFrom int
}

func (n *pathNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	r, err := n.head.eval(c, focus)
	for i, s := range n.steps {
		if err != nil {
			break
		}
		if len(r) == 0 && i >= n.emptyFrom {
			c.truncate(start)
			return nil, nil
		}
		// Intermediate collections stay in buf below the result; whoever
		// truncates buf after using the result reclaims them.
		r, err = s.eval(c, r)
	}
	if err != nil {
		c.truncate(start)
		return nil, err
	}
	return r, nil
}

// unionNode is a | b | …: the items of each, in order, without duplicates.
type unionNode struct{ ops []node }

func (n *unionNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start, k := len(c.buf), 0
	for _, op := range n.ops {
		r, err := op.eval(c, focus)
		if err != nil {
			c.truncate(start)
			return nil, err
		}
		// r lies past the k items kept so far (or outside buf), so writing
		// each kept item at start+k never overwrites one not yet read.
		for i := range r {
			if containsEqual(c.buf[start:start+k], &r[i]) {
				continue
			}
			if start+k < len(c.buf) {
				c.buf[start+k] = r[i]
			} else {
				c.buf = append(c.buf, r[i])
			}
			k++
		}
		c.truncate(start + k)
	}
	return c.since(start), nil
}

func containsEqual(set []item, it *item) bool {
	for i := range set {
		if valuesEqual(set[i].v, it.v) {
			return true
		}
	}
	return false
}

// eqNode is = and !=: collections are equal when they have the same
// length and equal items in order; an empty side gives empty.
type eqNode struct {
	l, r node
	neg  bool
}

func (n *eqNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	defer c.truncate(start)
	l, err := n.l.eval(c, focus)
	if err != nil || len(l) == 0 {
		return nil, err
	}
	r, err := n.r.eval(c, focus)
	if err != nil || len(r) == 0 {
		return nil, err
	}
	eq := len(l) == len(r)
	for i := 0; eq && i < len(l); i++ {
		eq = valuesEqual(l[i].v, r[i].v)
	}
	return boolItems(eq != n.neg), nil
}

type logicOp uint8

const (
	logicAnd logicOp = iota
	logicOr
	logicXor
)

// logicNode is and, or, xor with FHIRPath's three-valued logic, where an
// empty operand is unknown.
type logicNode struct {
	op   logicOp
	l, r node
}

func (n *logicNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	defer c.truncate(start)
	lv, lok, err := c.evalBool(n.l, focus)
	if err != nil {
		return nil, err
	}
	// and/or are decided by one operand alone in these cases.
	if lok && (n.op == logicAnd && !lv || n.op == logicOr && lv) {
		return boolItems(lv), nil
	}
	rv, rok, err := c.evalBool(n.r, focus)
	if err != nil {
		return nil, err
	}
	switch {
	case n.op == logicAnd && rok && !rv:
		return falseItems, nil
	case n.op == logicOr && rok && rv:
		return trueItems, nil
	case !lok || !rok:
		return nil, nil
	case n.op == logicXor:
		return boolItems(lv != rv), nil
	}
	return boolItems(rv), nil // both known, and the left did not decide
}

func (c *evalCtx) evalBool(n node, focus []item) (val, known bool, err error) {
	r, err := n.eval(c, focus)
	if err != nil {
		return false, false, err
	}
	return toBool(r)
}

// toBool is FHIRPath's singleton evaluation: empty is unknown, one boolean
// is itself, any other single item is true, more than one is an error.
func toBool(r []item) (val, known bool, err error) {
	switch len(r) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := r[0].v.(bool); ok {
			return b, true, nil
		}
		return true, true, nil
	}
	return false, false, fmt.Errorf("fhirpath: expected a single boolean, got %d items", len(r))
}

// isNode is "x is T" and x.is(T).
type isNode struct {
	x node
	t *typeSet
}

func (n *isNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	defer c.truncate(start)
	r, err := n.x.eval(c, focus)
	switch {
	case err != nil || len(r) == 0:
		return nil, err
	case len(r) > 1:
		return nil, fmt.Errorf("fhirpath: 'is %s' on %d items, expected one", n.t.name, len(r))
	}
	return boolItems(n.t.has(c.m, r[0].typ)), nil
}

// asNode is "x as T", x.as(T) and x.ofType(T). FHIRPath wants a single
// item for as; R4 search parameters apply it to repeating elements
// ("Observation.component.value as Quantity"), so here it filters, as
// ofType does.
type asNode struct {
	x node
	t *typeSet
}

func (n *asNode) eval(c *evalCtx, focus []item) ([]item, error) {
	r, err := n.x.eval(c, focus)
	if err != nil {
		return nil, err
	}
	return c.filterType(r, n.t), nil
}

// indexNode is x[i].
type indexNode struct{ i int }

func (n *indexNode) eval(_ *evalCtx, focus []item) ([]item, error) {
	if n.i < 0 || n.i >= len(focus) {
		return nil, nil
	}
	return focus[n.i : n.i+1 : n.i+1], nil
}

// valuesEqual is FHIRPath equality on tree values: primitives by value
// (decimals numerically), complex values member by member.
func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numbersEqual(x, y)
	case *fhirjson.Object:
		y, ok := b.(*fhirjson.Object)
		if !ok || y == nil || x == nil {
			return ok && x == y
		}
		return x == y || objectsEqual(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func objectsEqual(x, y *fhirjson.Object) bool {
	if len(x.Members) != len(y.Members) {
		return false
	}
	for _, m := range x.Members {
		v, ok := y.Get(m.Name)
		if !ok || !valuesEqual(m.Value, v) {
			return false
		}
	}
	return true
}

func numbersEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	// Correctly rounded floats of equal decimals are equal, so differing
	// floats settle it without allocating; equal ones may still be
	// different decimals ("0.1" and "0.10000000000000000001").
	fx, errx := strconv.ParseFloat(string(x), 64)
	fy, erry := strconv.ParseFloat(string(y), 64)
	if errx == nil && erry == nil && fx != fy {
		return false
	}
	var a, b big.Rat
	if _, ok := a.SetString(string(x)); !ok {
		return false
	}
	if _, ok := b.SetString(string(y)); !ok {
		return false
	}
	return a.Cmp(&b) == 0
}

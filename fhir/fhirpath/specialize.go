package fhirpath

import "github.com/fhirgraph/fhirgraph/fhir/fhirjson"

// specialize rewrites n for a root resource of type rt, deciding every
// leading type name whose focus is that root: "CarePlan.subject" becomes
// empty and "Observation.subject" becomes "$this.subject". Empty results
// are folded upward through everything that maps empty to empty, so a
// union keeps only the branches that can yield something. atRoot says
// whether n's focus is the root resource.
func specialize(n node, rt string, m *model, atRoot bool) node {
	switch n := n.(type) {
	case *typeFilterNode:
		switch {
		case !atRoot:
			return n
		case n.t.has(m, rt):
			return thisNode{}
		}
		return emptyNode{}
	case *pathNode:
		head := specialize(n.head, rt, m, atRoot)
		steps := make([]node, len(n.steps))
		for i, s := range n.steps {
			steps[i] = specialize(s, rt, m, false)
		}
		p := newPath(head, steps)
		if isEmpty(head) && p.emptyFrom == 0 {
			return emptyNode{}
		}
		return p
	case *unionNode:
		var ops []node
		for _, op := range n.ops {
			if s := specialize(op, rt, m, atRoot); !isEmpty(s) {
				ops = append(ops, s)
			}
		}
		if len(ops) == 0 {
			return emptyNode{}
		}
		// Even a single remaining branch stays a union: the union also
		// removes duplicates, and results must not depend on whether the
		// expression was specialized.
		return &unionNode{ops: ops}
	case *eqNode:
		l, r := specialize(n.l, rt, m, atRoot), specialize(n.r, rt, m, atRoot)
		if isEmpty(l) || isEmpty(r) {
			return emptyNode{}
		}
		return &eqNode{l: l, r: r, neg: n.neg}
	case *logicNode:
		return &logicNode{op: n.op, l: specialize(n.l, rt, m, atRoot), r: specialize(n.r, rt, m, atRoot)}
	case *isNode:
		if x := specialize(n.x, rt, m, atRoot); !isEmpty(x) {
			return &isNode{x: x, t: n.t}
		}
		return emptyNode{}
	case *asNode:
		if x := specialize(n.x, rt, m, atRoot); !isEmpty(x) {
			return &asNode{x: x, t: n.t}
		}
		return emptyNode{}
	}
	// Function arguments (where, exists) have the items as their focus,
	// never the root, so they hold nothing to decide.
	return n
}

func isEmpty(n node) bool {
	_, ok := n.(emptyNode)
	return ok
}

// newPath builds a path, noting from which step on an empty collection
// can only give empty, so evaluation stops there.
func newPath(head node, steps []node) *pathNode {
	p := &pathNode{head: head, steps: steps, emptyFrom: len(steps)}
	for i := len(steps) - 1; i >= 0 && preservesEmpty(steps[i]); i-- {
		p.emptyFrom = i
	}
	return p
}

// preservesEmpty reports whether step, applied to an empty collection,
// always gives an empty one (exists(), empty() and count() do not).
func preservesEmpty(step node) bool {
	switch step.(type) {
	case *memberNode, *typeFilterNode, *asNode, *isNode, *indexNode, *whereNode,
		firstFn, lastFn, notFn, resolveFn, *extensionNode, emptyNode, *boundMemberNode, *boundChoiceNode:
		return true
	}
	return false
}

// bind replaces the member steps whose input type is known by then — the
// root's type, and each element's type along a path — with steps that
// know their element in advance, sparing a map lookup per item. It
// returns the rewritten node and the type of its results when known.
// Known types are hints: bound steps check them per item and fall back to
// the general lookup, so a wrong hint costs time, never correctness.
func bind(n node, in *typeInfo, m *model, root *typeInfo) (node, *typeInfo) {
	switch n := n.(type) {
	case *memberNode:
		if in == nil {
			return n, nil
		}
		if ei := in.elems[n.name]; ei != nil {
			var out *typeInfo
			if !ei.resource {
				out = ei.ti
			}
			return &boundMemberNode{name: n.name, in: in, ei: ei}, out
		}
		if in.choices[n.name] {
			return &boundChoiceNode{base: n.name, in: in}, nil
		}
		return n, nil
	case thisNode, *typeFilterNode, *indexNode, firstFn, lastFn:
		return n, in
	case rootNode:
		return n, root
	case *pathNode:
		head, cur := bind(n.head, in, m, root)
		steps := make([]node, len(n.steps))
		for i, s := range n.steps {
			steps[i], cur = bind(s, cur, m, root)
		}
		return newPath(head, steps), cur
	case *unionNode:
		ops := make([]node, len(n.ops))
		var out *typeInfo
		for i, op := range n.ops {
			var t *typeInfo
			ops[i], t = bind(op, in, m, root)
			if i == 0 {
				out = t
			} else if t != out {
				out = nil
			}
		}
		return &unionNode{ops: ops}, out
	case *whereNode:
		crit, _ := bind(n.crit, in, m, root)
		return &whereNode{crit: crit}, in
	case existsNode:
		if n.crit != nil {
			n.crit, _ = bind(n.crit, in, m, root)
		}
		return n, nil
	case *eqNode:
		l, _ := bind(n.l, in, m, root)
		r, _ := bind(n.r, in, m, root)
		return &eqNode{l: l, r: r, neg: n.neg}, nil
	case *logicNode:
		l, _ := bind(n.l, in, m, root)
		r, _ := bind(n.r, in, m, root)
		return &logicNode{op: n.op, l: l, r: r}, nil
	case *isNode:
		x, _ := bind(n.x, in, m, root)
		return &isNode{x: x, t: n.t}, nil
	case *asNode:
		x, _ := bind(n.x, in, m, root)
		return &asNode{x: x, t: n.t}, nil
	case *extensionNode:
		return n, m.types["Extension"]
	}
	return n, nil
}

// boundMemberNode is a memberNode whose element is known for inputs of
// type in.
type boundMemberNode struct {
	name string
	in   *typeInfo
	ei   *elemInfo
}

func (n *boundMemberNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		it := &focus[i]
		if it.ti != n.in {
			c.children(it, n.name)
			continue
		}
		if obj, ok := it.v.(*fhirjson.Object); ok {
			if v, ok := obj.Get(n.name); ok {
				c.appendValue(v, n.ei)
			}
		}
	}
	return c.since(start), nil
}

// boundChoiceNode is a memberNode naming a choice ("value") of inputs of
// type in: only members starting with the base name are looked up.
type boundChoiceNode struct {
	base string
	in   *typeInfo
}

func (n *boundChoiceNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		it := &focus[i]
		if it.ti != n.in {
			c.children(it, n.base)
			continue
		}
		if obj, ok := it.v.(*fhirjson.Object); ok {
			c.choiceChildren(obj, n.in, n.base)
		}
	}
	return c.since(start), nil
}

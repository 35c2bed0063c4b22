package fhirpath

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxNesting bounds parenthesis and function-argument nesting, and
// maxLength the length of operator chains, so that a hostile expression
// cannot make parsing or evaluation recurse without end. The longest
// definition (R4 context-quantity) has 1,386 bytes.
const (
	maxNesting = 64
	maxLength  = 16 << 10
)

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
	m     *model
}

func parse(src string, m *model) (node, error) {
	if len(src) > maxLength {
		return nil, &Error{Expr: src[:64] + "…", Msg: fmt.Sprintf("expression longer than %d bytes", maxLength)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks, m: m}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(t, "unexpected %s", describe(t))
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{Expr: p.src, Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return "string literal"
	}
	return strconv.Quote(t.text)
}

// isOp reports whether the next token is the operator or keyword op. A
// backtick-quoted identifier is never a keyword.
func (p *parser) isOp(op string) bool {
	t := p.peek()
	return (t.kind == tokPunct || t.kind == tokIdent && !t.quoted) && t.text == op
}

func (p *parser) expect(op string) error {
	if !p.isOp(op) {
		t := p.peek()
		return p.errAt(t, "expected %q, found %s", op, describe(t))
	}
	p.next()
	return nil
}

// unsupported names the operators of FHIRPath that no search parameter
// expression uses, so that they fail at compile time with a clear message
// rather than as a syntax error.
var unsupported = []string{"implies", "in", "contains", "<", "<=", ">", ">=", "~", "!~", "+", "-", "&", "*", "/", "div", "mod"}

// expr parses one expression; precedence from loosest to tightest is
// or/xor, and, = !=, |, is/as, then invocation and indexing.
func (p *parser) expr() (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxNesting {
		return nil, p.errAt(p.peek(), "expression nested too deeply")
	}
	n, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	for _, op := range unsupported {
		if p.isOp(op) {
			return nil, p.errAt(p.peek(), "operator %q is not supported", op)
		}
	}
	return n, nil
}

func (p *parser) orExpr() (node, error) {
	l, err := p.andExpr()
	for err == nil && (p.isOp("or") || p.isOp("xor")) {
		op := logicOr
		if p.next().text == "xor" {
			op = logicXor
		}
		var r node
		if r, err = p.andExpr(); err == nil {
			l = &logicNode{op: op, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) andExpr() (node, error) {
	l, err := p.eqExpr()
	for err == nil && p.isOp("and") {
		p.next()
		var r node
		if r, err = p.eqExpr(); err == nil {
			l = &logicNode{op: logicAnd, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) eqExpr() (node, error) {
	l, err := p.unionExpr()
	for err == nil && (p.isOp("=") || p.isOp("!=")) {
		neg := p.next().text == "!="
		var r node
		if r, err = p.unionExpr(); err == nil {
			l = &eqNode{l: l, r: r, neg: neg}
		}
	}
	return l, err
}

func (p *parser) unionExpr() (node, error) {
	l, err := p.typeExpr()
	if err != nil || !p.isOp("|") {
		return l, err
	}
	u := &unionNode{ops: []node{l}}
	for p.isOp("|") {
		p.next()
		r, err := p.typeExpr()
		if err != nil {
			return nil, err
		}
		u.ops = append(u.ops, r)
	}
	return u, nil
}

func (p *parser) typeExpr() (node, error) {
	l, err := p.postfix()
	for err == nil && (p.isOp("is") || p.isOp("as")) {
		is := p.next().text == "is"
		var typ string
		if typ, err = p.typeSpec(); err == nil {
			if is {
				l = &isNode{x: l, t: p.m.typeSet(typ)}
			} else {
				l = &asNode{x: l, t: p.m.typeSet(typ)}
			}
		}
	}
	return l, err
}

// typeSpec parses a type name, optionally qualified by FHIR or System.
func (p *parser) typeSpec() (string, error) {
	t := p.next()
	if t.kind != tokIdent {
		return "", p.errAt(t, "expected a type name, found %s", describe(t))
	}
	name := t.text
	if (name == "FHIR" || name == "System") && p.isOp(".") {
		p.next()
		q := p.next()
		if q.kind != tokIdent {
			return "", p.errAt(q, "expected a type name, found %s", describe(q))
		}
		if name == "System" {
			if prim, ok := systemTypes[q.text]; ok {
				return prim, nil
			}
			return "", p.errAt(q, "unknown type System.%s", q.text)
		}
		name = q.text
	}
	if p.m.knownType(name) {
		return name, nil
	}
	if prim, ok := systemTypes[name]; ok {
		return prim, nil
	}
	return "", p.errAt(t, "unknown type %s", name)
}

// postfix parses a term followed by any number of .invocation and [index].
func (p *parser) postfix() (node, error) {
	head, err := p.term()
	if err != nil {
		return nil, err
	}
	var steps []node
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tokIdent {
				return nil, p.errAt(t, "expected a name after '.', found %s", describe(t))
			}
			step, err := p.invocation(t)
			if err != nil {
				return nil, err
			}
			steps = append(steps, step)
		case p.isOp("["):
			p.next()
			t := p.next()
			i, err := strconv.Atoi(t.text)
			if t.kind != tokNumber || err != nil {
				return nil, p.errAt(t, "only an integer literal may index a collection")
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			steps = append(steps, &indexNode{i: i})
		default:
			if len(steps) == 0 {
				return head, nil
			}
			return newPath(head, steps), nil
		}
	}
}

func (p *parser) term() (node, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return &literalNode{items: []item{{v: t.text, typ: "string"}}}, nil
	case tokNumber:
		typ := "integer"
		if strings.Contains(t.text, ".") {
			typ = "decimal"
		}
		return &literalNode{items: []item{{v: json.Number(t.text), typ: typ}}}, nil
	case tokVar:
		if t.text != "this" {
			return nil, p.errAt(t, "variable $%s is not supported", t.text)
		}
		return thisNode{}, nil
	case tokExt:
		switch t.text {
		case "resource", "rootResource", "context":
			return rootNode{}, nil
		}
		return nil, p.errAt(t, "environment variable %%%s is not supported", t.text)
	case tokIdent:
		if !t.quoted {
			switch t.text {
			case "true", "false":
				return &literalNode{items: []item{{v: t.text == "true", typ: "boolean"}}}, nil
			}
		}
		if p.isOp("(") {
			return p.invocation(t)
		}
		// A leading capitalized name is a type: "Observation.code" applies
		// to Observations only. FHIR element names are never capitalized.
		if c := t.text[0]; c >= 'A' && c <= 'Z' {
			if !p.m.knownType(t.text) {
				return nil, p.errAt(t, "unknown type %s", t.text)
			}
			return &typeFilterNode{t: p.m.typeSet(t.text)}, nil
		}
		return &memberNode{name: t.text}, nil
	case tokPunct:
		switch t.text {
		case "(":
			n, err := p.expr()
			if err != nil {
				return nil, err
			}
			return n, p.expect(")")
		case "{":
			return emptyNode{}, p.expect("}")
		case "@":
			return nil, p.errAt(t, "date and time literals are not supported")
		}
	}
	return nil, p.errAt(t, "unexpected %s", describe(t))
}

// invocation parses what follows a name: a member when no '(' follows,
// otherwise a function call with its arguments.
func (p *parser) invocation(name token) (node, error) {
	if !p.isOp("(") {
		return &memberNode{name: name.text}, nil
	}
	p.next()
	switch name.text {
	case "as", "is", "ofType":
		typ, err := p.typeSpec()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		if name.text == "is" {
			return &isNode{x: thisNode{}, t: p.m.typeSet(typ)}, nil
		}
		return &asNode{x: thisNode{}, t: p.m.typeSet(typ)}, nil
	}
	var args []node
	for !p.isOp(")") {
		if len(args) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		a, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
	}
	p.next()
	return p.function(name, args)
}

// function builds the call of a supported function, checking its arity.
func (p *parser) function(name token, args []node) (node, error) {
	f, ok := functions[name.text]
	if !ok {
		return nil, p.errAt(name, "unknown function %s()", name.text)
	}
	if len(args) < f.minArgs || len(args) > f.maxArgs {
		return nil, p.errAt(name, "%s() takes %s, got %d", name.text, f.arity(), len(args))
	}
	n, err := f.build(args)
	if err != nil {
		return nil, p.errAt(name, "%s(): %s", name.text, err)
	}
	return n, nil
}

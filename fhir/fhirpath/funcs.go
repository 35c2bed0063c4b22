package fhirpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// funcDef is a supported function: as, is and ofType, which take a type,
// are parsed apart; the others take expressions.
type funcDef struct {
	minArgs, maxArgs int
	build            func(args []node) (node, error)
}

func (f funcDef) arity() string {
	switch {
	case f.maxArgs == 0:
		return "no arguments"
	case f.minArgs == f.maxArgs:
		return fmt.Sprintf("%d argument(s)", f.minArgs)
	}
	return fmt.Sprintf("%d to %d arguments", f.minArgs, f.maxArgs)
}

func fixed(n node) func([]node) (node, error) {
	return func([]node) (node, error) { return n, nil }
}

var functions = map[string]funcDef{
	"where": {1, 1, func(a []node) (node, error) { return &whereNode{crit: a[0]}, nil }},
	"exists": {0, 1, func(a []node) (node, error) {
		if len(a) == 0 {
			return existsNode{}, nil
		}
		return existsNode{crit: a[0]}, nil
	}},
	"empty":     {0, 0, fixed(emptyFn{})},
	"first":     {0, 0, fixed(firstFn{})},
	"last":      {0, 0, fixed(lastFn{})},
	"count":     {0, 0, fixed(countFn{})},
	"not":       {0, 0, fixed(notFn{})},
	"hasValue":  {0, 0, fixed(hasValueFn{})},
	"resolve":   {0, 0, fixed(resolveFn{})},
	"extension": {1, 1, buildExtension},
}

// whereNode keeps the items for which the criteria are true.
type whereNode struct{ crit node }

func (n *whereNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		// The item is pushed as the criteria's focus and stays as part of
		// the result only if they hold.
		slot := len(c.buf)
		c.buf = append(c.buf, focus[i])
		v, ok, err := c.evalBool(n.crit, c.buf[slot:slot+1:slot+1])
		if err != nil {
			c.truncate(start)
			return nil, fmt.Errorf("%w (in where())", err)
		}
		if ok && v {
			c.truncate(slot + 1)
		} else {
			c.truncate(slot)
		}
	}
	return c.since(start), nil
}

// existsNode is exists() and exists(criteria).
type existsNode struct{ crit node }

func (n existsNode) eval(c *evalCtx, focus []item) ([]item, error) {
	if n.crit == nil {
		return boolItems(len(focus) > 0), nil
	}
	start := len(c.buf)
	defer c.truncate(start)
	for i := range focus {
		v, ok, err := c.evalBool(n.crit, focus[i:i+1:i+1])
		if err != nil {
			return nil, fmt.Errorf("%w (in exists())", err)
		}
		if ok && v {
			return trueItems, nil
		}
		c.truncate(start)
	}
	return falseItems, nil
}

type emptyFn struct{}

func (emptyFn) eval(_ *evalCtx, focus []item) ([]item, error) { return boolItems(len(focus) == 0), nil }

type firstFn struct{}

func (firstFn) eval(_ *evalCtx, focus []item) ([]item, error) {
	if len(focus) == 0 {
		return nil, nil
	}
	return focus[:1:1], nil
}

type lastFn struct{}

func (lastFn) eval(_ *evalCtx, focus []item) ([]item, error) {
	if len(focus) == 0 {
		return nil, nil
	}
	return focus[len(focus)-1:], nil
}

type countFn struct{}

func (countFn) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	c.buf = append(c.buf, item{v: json.Number(strconv.Itoa(len(focus))), typ: "integer"})
	return c.since(start), nil
}

type notFn struct{}

func (notFn) eval(_ *evalCtx, focus []item) ([]item, error) {
	v, ok, err := toBool(focus)
	if err != nil || !ok {
		return nil, err
	}
	return boolItems(!v), nil
}

// hasValueFn is true for a single primitive that has a value (not only
// extensions in its shadow, which navigation never yields anyway).
type hasValueFn struct{}

func (hasValueFn) eval(_ *evalCtx, focus []item) ([]item, error) {
	if len(focus) != 1 {
		return falseItems, nil
	}
	switch focus[0].v.(type) {
	case string, json.Number, bool:
		return trueItems, nil
	}
	return falseItems, nil
}

// resolveFn follows references as far as a single resource allows: "#id"
// yields the contained resource; any other reference whose type can be
// read ("Patient/1", "http://x/fhir/Patient/1", or failing that
// Reference.type) yields a node with no value whose Type is the target's
// resource type, enough for "resolve() is Patient".
type resolveFn struct{}

func (resolveFn) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		var ref, declared string
		switch v := focus[i].v.(type) {
		case *fhirjson.Object:
			ref, declared = v.String("reference"), v.String("type")
		case string:
			ref = v
		default:
			continue
		}
		if strings.HasPrefix(ref, "#") {
			if it, ok := c.contained(ref[1:]); ok {
				c.buf = append(c.buf, it)
			}
			continue
		}
		rt := c.m.resourceTypeOf(ref)
		if rt == "" && declared != "" {
			rt = declared[strings.LastIndexByte(declared, '/')+1:]
		}
		if ti := c.m.resources[rt]; ti != nil {
			c.buf = append(c.buf, item{typ: rt, ti: ti})
		}
	}
	return c.since(start), nil
}

// contained finds the resource a "#id" reference names: a contained
// resource of the root, or the root itself for "#".
func (c *evalCtx) contained(id string) (item, bool) {
	if id == "" {
		return c.root[0], true
	}
	obj, _ := c.root[0].v.(*fhirjson.Object)
	if obj == nil {
		return item{}, false
	}
	list, _ := obj.Get("contained")
	arr, _ := list.([]any)
	for _, e := range arr {
		r, ok := e.(*fhirjson.Object)
		if !ok || r.String("id") != id {
			continue
		}
		rt := r.String("resourceType")
		return item{v: r, typ: rt, ti: c.m.resources[rt]}, true
	}
	return item{}, false
}

// extensionNode is extension(url): the extensions with that url.
type extensionNode struct{ url string }

func buildExtension(a []node) (node, error) {
	lit, ok := a[0].(*literalNode)
	if ok && len(lit.items) == 1 {
		if url, ok := lit.items[0].v.(string); ok {
			return &extensionNode{url: url}, nil
		}
	}
	return nil, errors.New("the url must be a string literal")
}

func (n *extensionNode) eval(c *evalCtx, focus []item) ([]item, error) {
	start := len(c.buf)
	for i := range focus {
		from := len(c.buf)
		c.children(&focus[i], "extension")
		kept := from
		for j := from; j < len(c.buf); j++ {
			if obj, ok := c.buf[j].v.(*fhirjson.Object); ok && obj.String("url") == n.url {
				c.buf[kept] = c.buf[j]
				kept++
			}
		}
		c.truncate(kept)
	}
	return c.since(start), nil
}

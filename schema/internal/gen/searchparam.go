package main

import (
	"fmt"
	"slices"
	"strings"
)

var paramTypes = []string{"composite", "date", "number", "quantity", "reference", "special", "string", "token", "uri"}

// paramFrom turns one SearchParameter into its entry for one resource type.
func paramFrom(sp *searchParameter, typ, source, version string, r4 map[string]*searchParameter) (*paramOut, error) {
	if !slices.Contains(paramTypes, sp.Type) {
		return nil, fmt.Errorf("%s: unknown search parameter type %q", sp.URL, sp.Type)
	}
	p := &paramOut{
		Code: sp.Code, Type: sp.Type, URL: sp.URL, Source: source, SourceVersion: version,
		DerivedFrom: sp.DerivedFrom, Expression: sp.Expression,
		MultipleOr: sp.MultipleOr, MultipleOrExpect: sp.MultipleOrExt.expectation(),
		MultipleAnd: sp.MultipleAnd, MultipleAndExpect: sp.MultipleAndExt.expectation(),
	}
	if te := typeExpression(sp.Expression, typ); te != sp.Expression {
		p.TypeExpression = te
	}
	p.Targets = slices.Sorted(slices.Values(sp.Target))
	if len(sp.Modifier) > 0 {
		p.Modifiers = slices.Clone(sp.Modifier)
	} else {
		p.Modifiers = defaultModifiers(sp.Type, typ, p.Targets, typeExpression(sp.Expression, typ))
	}
	for i, c := range sp.Comparator {
		p.Comparators = append(p.Comparators, coded{c, expectationAt(sp.ComparatorExt, i)})
	}
	for i, c := range sp.Chain {
		p.Chains = append(p.Chains, chainOut{c, expectationAt(sp.ChainExt, i)})
	}
	for _, c := range sp.Component {
		def := r4[c.Definition]
		if def == nil {
			return nil, fmt.Errorf("%s: component definition %s is not an R4 SearchParameter", sp.URL, c.Definition)
		}
		p.Components = append(p.Components, componentOut{URL: def.URL, Code: def.Code, Expression: c.Expression})
	}
	return p, nil
}

// defaultModifiers lists the modifiers R4's search page allows for a
// parameter type; the R4 and US Core definitions declare none themselves.
// Codes are those of SearchParameter.modifier: "type" is the `:[type]`
// modifier and "ofType" is written `:of-type`. R4 allows no modifiers on
// composite and special parameters.
func defaultModifiers(paramType, typ string, targets []string, typeExpr string) []string {
	switch paramType {
	case "string":
		return []string{"missing", "exact", "contains"}
	case "token":
		m := []string{"missing", "text", "not", "above", "below", "in", "not-in"}
		// :of-type matches Identifier.type, so only identifier paths take it.
		if identifierValued(typeExpr) {
			m = append(m, "ofType")
		}
		return m
	case "reference":
		m := []string{"missing", "type", "identifier"}
		// :above and :below walk a hierarchy, which only a reference to the
		// same type (Location.partOf) builds.
		if slices.Contains(targets, typ) {
			m = append(m, "above", "below")
		}
		return m
	case "uri":
		return []string{"missing", "above", "below"}
	case "date", "number", "quantity":
		return []string{"missing"}
	}
	return nil
}

func identifierValued(expr string) bool {
	for _, b := range splitUnion(expr) {
		if !strings.HasSuffix(b, ".identifier") {
			return false
		}
	}
	return true
}

// typeExpression keeps, of an expression that unions paths of several
// resource types (clinical-patient covers thirty), the branches rooted at
// typ, so the engine evaluates only what can match. It returns expr itself
// when there is nothing to drop, when no branch is rooted at typ (Resource.id),
// or when a branch holds an operator looser than `|`, which splitting would
// regroup.
func typeExpression(expr, typ string) string {
	branches := splitUnion(expr)
	if len(branches) < 2 {
		return expr
	}
	var mine []string
	for _, b := range branches {
		if hasLooseOperator(b) {
			return expr
		}
		if rootOf(b) == typ {
			mine = append(mine, b)
		}
	}
	if len(mine) == 0 || len(mine) == len(branches) {
		return expr
	}
	return strings.Join(mine, " | ")
}

// splitUnion splits a FHIRPath expression at the `|` operators outside
// parentheses, strings and delimited identifiers.
func splitUnion(expr string) []string {
	var out []string
	start := 0
	scanTopLevel(expr, func(i int) {
		if expr[i] == '|' {
			out = append(out, strings.TrimSpace(expr[start:i]))
			start = i + 1
		}
	})
	return append(out, strings.TrimSpace(expr[start:]))
}

// hasLooseOperator reports a top-level comparison, equality, membership or
// boolean operator: each binds looser than `|`.
func hasLooseOperator(branch string) bool {
	var top strings.Builder
	scanTopLevel(branch, func(i int) { top.WriteByte(branch[i]) })
	s := " " + top.String() + " "
	if strings.ContainsAny(s, "=<>~") {
		return true
	}
	for _, kw := range []string{" and ", " or ", " xor ", " implies ", " in ", " contains "} {
		if strings.Contains(s, kw) {
			return true
		}
	}
	return false
}

// scanTopLevel calls fn with the index of every byte of expr that is
// outside parentheses, brackets, 'strings' and `identifiers`.
func scanTopLevel(expr string, fn func(i int)) {
	depth := 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case depth == 0:
			fn(i)
		}
	}
}

// rootOf returns the identifier a path expression starts from.
func rootOf(branch string) string {
	s := strings.TrimLeft(branch, "( ")
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
	if end < 0 {
		return s
	}
	return s[:end]
}

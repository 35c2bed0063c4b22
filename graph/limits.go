package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fhirgraph/fhirgraph/graph/model"
)

// depthLimit refuses, before anything runs, an operation whose selections
// nest deeper than max (fragments followed; a fragment cycle is refused by
// validation before this runs).
type depthLimit struct{ max int }

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := depth(oc.Operation.SelectionSet, 0, d.max); n > d.max {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("the query is nested deeper than %d levels", d.max),
			Extensions: map[string]any{"code": "QUERY_TOO_DEEP"},
		}
	}
	return nil
}

// depth is how deep set nests below level, counted no further than past
// limit.
func depth(set ast.SelectionSet, level, limit int) int {
	if level > limit {
		return level
	}
	deepest := level
	for _, s := range set {
		var n int
		switch s := s.(type) {
		case *ast.Field:
			n = level + 1
			if len(s.SelectionSet) > 0 {
				n = depth(s.SelectionSet, level+1, limit)
			}
		case *ast.InlineFragment:
			n = depth(s.SelectionSet, level, limit)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n = depth(s.Definition.SelectionSet, level, limit)
			}
		}
		deepest = max(deepest, n)
	}
	return deepest
}

// fieldRules serves what the generated code binds to plain model fields
// but the schema gives arguments or meaning the model does not carry:
//
//   - reverse lists and connections (Patient.ConditionList, …) and
//     Reference.resource, bound to model fields that decoding never fills,
//     answer NOT_IMPLEMENTED until they have resolvers (Patient's
//     ObservationList has one);
//   - extension(url:) and modifierExtension(url:) keep the extensions with
//     that url.
func fieldRules(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.IsResolver || fc.Object == "Query" || fc.Field.Field == nil {
		return next(ctx)
	}
	name := fc.Field.Name
	if strings.HasSuffix(name, "List") || strings.HasSuffix(name, "Connection") ||
		(name == "resource" && strings.HasSuffix(fc.Object, "Reference")) {
		return nil, gqlError(ctx, codeNotImplemented, fc.Object+"."+name+" is not implemented yet")
	}
	if name != "extension" && name != "modifierExtension" {
		return next(ctx)
	}
	url, _ := fc.Args["url"].(*string)
	v, err := next(ctx)
	if err != nil || url == nil {
		return v, err
	}
	all, ok := v.([]*model.Extension)
	if !ok {
		return v, err
	}
	var kept []*model.Extension
	for _, e := range all {
		if e != nil && e.URL != nil && *e.URL == *url {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/graph/model"
	"github.com/fhirgraph/fhirgraph/store"
)

// priced is the schema with the cost of a query (gqlgen complexity)
// reckoned by what it may fetch: a list or connection costs its page size
// (_count, else the search default) times what each of its resources
// selects, so PatientList(_count: 1000) { ObservationList { … } } is
// priced as the many lookups it is, not as two fields.
type priced struct{ graphql.ExecutableSchema }

func (p priced) Complexity(ctx context.Context, typeName, field string, child int, args map[string]any) (int, bool) {
	if !strings.HasSuffix(field, "List") && !strings.HasSuffix(field, "Connection") {
		return p.ExecutableSchema.Complexity(ctx, typeName, field, child, args)
	}
	n := search.DefaultCount
	if v, ok := args["_count"]; ok {
		n = countArg(v)
	}
	n = min(max(n, 1), store.MaxPageSize)
	// Saturates instead of overflowing however deep lists nest.
	return int(min(1+float64(n)*float64(child), math.MaxInt32)), true
}

// countArg reads an Int argument as gqlgen hands it to Complexity (parsed
// literal or variable value).
func countArg(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	case *int:
		if v != nil {
			return *v
		}
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return search.DefaultCount
}

// depthLimit refuses, before anything runs, an operation whose selections
// nest deeper than max (fragments followed; a fragment cycle is refused by
// validation before this runs). Introspection's __Type.ofType does not
// count: a chain of them only unwraps one type (a list of non-null X), and
// GraphiQL's introspection query nests nine; what fans out (fields, types)
// counts as any field does.
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
			next := level + 1
			if s.Name == "ofType" {
				next = level
			}
			n = next
			if len(s.SelectionSet) > 0 {
				n = depth(s.SelectionSet, next, limit)
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
// but the schema gives arguments the model does not carry:
// extension(url:) and modifierExtension(url:) keep the extensions with
// that url.
func fieldRules(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.IsResolver || fc.Object == "Query" || fc.Field.Field == nil {
		return next(ctx)
	}
	if name := fc.Field.Name; name != "extension" && name != "modifierExtension" {
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

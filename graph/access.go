package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/graph/model"
	"github.com/fhirgraph/fhirgraph/store"
)

// How GraphQL asks package authz, as FHIR REST does (fhir/authz.go): the
// handler authenticates the bearer token once per request (handler.go);
// each root read or list, and each reverse list, asks the Guard for a
// decision on its own type and pushes the filter into its store query.
// A resource outside the filter is answered as a missing one: null and a
// NOT_FOUND error with the same message.

// Error codes (extensions.code) of the errors resolvers return.
const (
	codeForbidden      = "FORBIDDEN"
	codeNotFound       = "NOT_FOUND"
	codeBadInput       = "BAD_USER_INPUT"
	codeNotImplemented = "NOT_IMPLEMENTED"
	codeInternal       = "INTERNAL_SERVER_ERROR"
	codeTimeout        = "TIMEOUT"
)

func gqlError(ctx context.Context, code, msg string) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Path: graphql.GetPath(ctx), Extensions: map[string]any{"code": code}}
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *authz.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// decide asks the guard about in on typ: the filter, or a FORBIDDEN error
// with the policy's reason.
func (r *Resolver) decide(ctx context.Context, in policy.Interaction, typ string) (authz.Filter, error) {
	p, _ := ctx.Value(principalKey{}).(*authz.Principal)
	if p == nil {
		return authz.Filter{}, gqlError(ctx, "UNAUTHENTICATED", "an access token is required")
	}
	a, err := r.guard.Decide(p, in, typ)
	if err != nil {
		return authz.Filter{}, r.internal(ctx, err)
	}
	if !a.Allowed {
		return authz.Filter{}, gqlError(ctx, codeForbidden, a.Reason)
	}
	return a.Filter, nil
}

func (r *Resolver) internal(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return gqlError(ctx, codeTimeout, "the request took too long and was abandoned")
	}
	if r.log != nil {
		r.log.Error("graphql: internal error", "err", err)
	}
	return gqlError(ctx, codeInternal, "internal error")
}

// read is the root Type(id) field: the current version of typ/id when
// the token may read it, else null with an error that does not tell a
// resource outside the token's reach from a missing one.
func read[T any](ctx context.Context, r *Resolver, typ, id string) (*T, error) {
	f, err := r.decide(ctx, policy.Read, typ)
	if err != nil {
		return nil, err
	}
	q := store.Query{Type: typ, IDs: []string{id}, Count: 1}
	f.Apply(&q)
	page, err := r.store.Search(ctx, q)
	if err != nil {
		return nil, r.storeError(ctx, err)
	}
	if len(page.Resources) == 0 {
		return nil, gqlError(ctx, codeNotFound, typ+"/"+id+": resource not found")
	}
	return decode[T](ctx, page.Resources[0].Body), nil
}

// list is a TypeList field: its arguments as a FHIR search of typ (with
// extra parameters set, for reverse references), compiled and scoped as
// REST search compiles and scopes it.
func list[T any](ctx context.Context, r *Resolver, typ string, extra url.Values) ([]*T, error) {
	params := searchParams(ctx)
	if params.Has("_cursor") {
		return nil, gqlError(ctx, codeNotImplemented, "_cursor is not implemented yet on lists")
	}
	for k, vs := range extra {
		params[k] = append(params[k], vs...)
	}
	f, err := r.decide(ctx, policy.SearchType, typ)
	if err != nil {
		return nil, err
	}
	compiled, err := search.Compile(typ, params, search.Options{Strict: true, BaseURL: r.baseURL})
	if err != nil {
		// Compile fails only on the request: malformed or unknown
		// parameters.
		return nil, gqlError(ctx, codeBadInput, err.Error())
	}
	p, _ := ctx.Value(principalKey{}).(*authz.Principal)
	a, err := r.guard.ScopeNested(p, compiled.Query.Where)
	if err != nil {
		return nil, r.internal(ctx, err)
	}
	if !a.Allowed {
		return nil, gqlError(ctx, codeForbidden, a.Reason)
	}
	f.Apply(&compiled.Query)
	page, err := r.store.Search(ctx, compiled.Query)
	if err != nil {
		return nil, r.storeError(ctx, err)
	}
	out := make([]*T, 0, len(page.Resources))
	for _, res := range page.Resources {
		out = append(out, decode[T](ctx, res.Body))
	}
	return out, nil
}

func (r *Resolver) storeError(ctx context.Context, err error) error {
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrUnsupported) {
		return gqlError(ctx, codeBadInput, err.Error())
	}
	return r.internal(ctx, err)
}

// searchParams turns the field's arguments into FHIR search parameters:
// the schema names a parameter with '-' replaced by '_' after its first
// character (schema/fhir.graphqls header), so the reverse gives it back.
// _reference names the reverse reference and is not a parameter.
func searchParams(ctx context.Context) url.Values {
	params := url.Values{}
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return params
	}
	for name, v := range fc.Args {
		if name == "_reference" || v == nil {
			continue
		}
		var s string
		switch v := v.(type) {
		case *string:
			if v == nil {
				continue
			}
			s = *v
		case string:
			s = v
		case *int:
			if v == nil {
				continue
			}
			s = itoa(*v)
		case int:
			s = itoa(v)
		default:
			continue
		}
		params.Add(searchName(name), s)
	}
	return params
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// decode reads a stored resource into its generated model. Elements the
// model cannot hold (contained resources, typed as the Resource
// interface) are left out with an error entry rather than failing the
// field.
func decode[T any](ctx context.Context, body []byte) *T {
	var v T
	if bytes.Contains(body, []byte(`"contained"`)) {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			delete(m, "contained")
			body, _ = json.Marshal(m)
		}
	}
	if err := json.Unmarshal(body, &v); err != nil {
		graphql.AddError(ctx, gqlError(ctx, codeInternal, "part of the resource could not be served: "+err.Error()))
	}
	return &v
}

// searchName is the FHIR name of a search argument (see searchParams).
func searchName(arg string) string {
	if arg == "" {
		return arg
	}
	return arg[:1] + strings.ReplaceAll(arg[1:], "_", "-")
}

// deviceList serves Query.DeviceList, whose generated signature has an
// argument named model that hides the model package.
func deviceList(ctx context.Context, r *Resolver) ([]*model.Device, error) {
	return list[model.Device](ctx, r, "Device", nil)
}

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
	codeForbidden = "FORBIDDEN"
	codeNotFound  = "NOT_FOUND"
	codeBadInput  = "BAD_USER_INPUT"
	codeInternal  = "INTERNAL_SERVER_ERROR"
	codeTimeout   = "TIMEOUT"
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

// list is a TypeList field: the first page of the search its arguments
// make (a connection pages on), compiled and scoped as REST search
// compiles and scopes it.
func list[T any](ctx context.Context, r *Resolver, typ string) ([]*T, error) {
	params := searchParams(ctx)
	if params.Has("_cursor") {
		return nil, gqlError(ctx, codeBadInput, "_cursor pages connections (TypeConnection); a list holds the first _count resources")
	}
	compiled, err := r.compileList(ctx, typ, params)
	if err != nil {
		return nil, err
	}
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

// compileList turns a search of typ into its store query with the
// token's filter applied, or the field's error.
func (r *Resolver) compileList(ctx context.Context, typ string, params url.Values) (*search.Search, error) {
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
	if err := r.scopeNested(ctx, compiled.Query.Where); err != nil {
		return nil, err
	}
	f.Apply(&compiled.Query)
	return compiled, nil
}

// scopeNested asks the guard about the chains and _has of a search (their
// types need their own grants), as REST does.
func (r *Resolver) scopeNested(ctx context.Context, where []store.Clause) error {
	p, _ := ctx.Value(principalKey{}).(*authz.Principal)
	a, err := r.guard.ScopeNested(p, where)
	if err != nil {
		return r.internal(ctx, err)
	}
	if !a.Allowed {
		return gqlError(ctx, codeForbidden, a.Reason)
	}
	return nil
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
	if err := json.Unmarshal(servable(body), &v); err != nil {
		graphql.AddError(ctx, gqlError(ctx, codeInternal, "part of the resource could not be served: "+err.Error()))
	}
	return &v
}

// servable is a stored resource's body without what the models do not
// hold (contained resources).
func servable(body []byte) []byte {
	if !bytes.Contains(body, []byte(`"contained"`)) {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	delete(m, "contained")
	out, _ := json.Marshal(m)
	return out
}

// searchName is the FHIR name of a search argument (see searchParams).
func searchName(arg string) string {
	if arg == "" {
		return arg
	}
	return arg[:1] + strings.ReplaceAll(arg[1:], "_", "-")
}

// The Device fields' generated signatures have an argument named model
// that hides the model package: these serve them.

func deviceList(ctx context.Context, r *Resolver) ([]*model.Device, error) {
	return list[model.Device](ctx, r, "Device")
}

func deviceConnection(ctx context.Context, r *Resolver) (*model.DeviceConnection, error) {
	return connection[model.DeviceConnection](ctx, r, "Device")
}

func patientDeviceList(ctx context.Context, r *Resolver, obj *model.Patient, reference string) ([]*model.Device, error) {
	return reverse[model.Device](ctx, r, "Device", "Patient", obj.ID, reference)
}

// decoders decode a stored resource of each type the API serves into its
// model, as the value a Reference.resource field returns.
var decoders = map[string]func(context.Context, []byte) any{
	"AllergyIntolerance": decodeAny[model.AllergyIntolerance], "AuditEvent": decodeAny[model.AuditEvent],
	"CarePlan": decodeAny[model.CarePlan], "CareTeam": decodeAny[model.CareTeam],
	"Condition": decodeAny[model.Condition], "Coverage": decodeAny[model.Coverage],
	"Device": decodeAny[model.Device], "DiagnosticReport": decodeAny[model.DiagnosticReport],
	"DocumentReference": decodeAny[model.DocumentReference], "Encounter": decodeAny[model.Encounter],
	"Endpoint": decodeAny[model.Endpoint], "Goal": decodeAny[model.Goal],
	"Group": decodeAny[model.Group], "HealthcareService": decodeAny[model.HealthcareService],
	"Immunization": decodeAny[model.Immunization], "Location": decodeAny[model.Location],
	"Media": decodeAny[model.Media], "Medication": decodeAny[model.Medication],
	"MedicationDispense": decodeAny[model.MedicationDispense], "MedicationRequest": decodeAny[model.MedicationRequest],
	"Observation": decodeAny[model.Observation], "Organization": decodeAny[model.Organization],
	"Patient": decodeAny[model.Patient], "Practitioner": decodeAny[model.Practitioner],
	"PractitionerRole": decodeAny[model.PractitionerRole], "Procedure": decodeAny[model.Procedure],
	"Provenance": decodeAny[model.Provenance], "Questionnaire": decodeAny[model.Questionnaire],
	"QuestionnaireResponse": decodeAny[model.QuestionnaireResponse], "RelatedPerson": decodeAny[model.RelatedPerson],
	"ServiceRequest": decodeAny[model.ServiceRequest], "Specimen": decodeAny[model.Specimen],
	"ValueSet": decodeAny[model.ValueSet],
}

func decodeAny[T any](ctx context.Context, body []byte) any { return decode[T](ctx, body) }

// resolve serves Reference.resource (FHIR GraphQL): the resource a literal
// reference names, when the token may read it, as the field's type T (a
// model pointer, or the union of the element's target types). A reference
// that cannot be followed (contained, external, of a type the field does
// not allow, missing or outside the token's reach) is null with an error,
// or null alone when the query says optional: true. Missing and out of
// reach give the same error. No literal reference: null, no error.
func resolve[T any](ctx context.Context, r *Resolver, reference *string, optional *bool) (T, error) {
	var zero T
	if reference == nil || *reference == "" {
		return zero, nil
	}
	fail := func(code, msg string) (T, error) {
		if optional != nil && *optional {
			return zero, nil
		}
		return zero, gqlError(ctx, code, msg)
	}
	key := search.NormalizeReference(*reference, r.baseURL)
	typ, id, ok := strings.Cut(key, "/")
	decodeAs := decoders[typ]
	if !ok || id == "" || strings.Contains(id, "/") || decodeAs == nil {
		return fail(codeNotFound, *reference+": only references to resources on this server are resolved")
	}
	res, err := loadersFrom(ctx).refs.Load(ctx, key)
	var deny denied
	switch {
	case errors.As(err, &deny):
		return fail(codeForbidden, deny.reason)
	case err != nil:
		return zero, r.storeError(ctx, err)
	case res == nil:
		return fail(codeNotFound, key+": resource not found")
	}
	v, ok := decodeAs(ctx, res.Body).(T)
	if !ok {
		return fail(codeNotFound, key+": this reference may not point at a "+typ)
	}
	return v, nil
}

// reverse serves a reverse list inside a resource (Patient.ConditionList
// and the like, FHIR GraphQL): resources of typ whose _reference parameter
// points at the parent, searched with the field's other arguments, as
// Type?<_reference>=Patient/<id>&… would search them over REST, with the
// same filter. Lists of sibling parents are fetched together (loader.go).
func reverse[T any](ctx context.Context, r *Resolver, typ, parent string, id *string, reference string) ([]*T, error) {
	if id == nil {
		return nil, nil
	}
	params := searchParams(ctx)
	if params.Has("_cursor") {
		return nil, gqlError(ctx, codeBadInput, "_cursor pages connections; a list inside a resource holds its first _count resources")
	}
	param := searchName(reference)
	in, err := search.ParseInclude(parent, "_revinclude", typ+":"+param+":"+parent, true)
	if err != nil {
		return nil, gqlError(ctx, codeBadInput, "_reference: "+param+" is not a reference parameter of "+typ+" that points at a "+parent)
	}
	f, err := r.decide(ctx, policy.SearchType, typ)
	if err != nil {
		return nil, err
	}
	// Compiled once for this parent alone, so that a bad argument is this
	// field's error and the nested parameters are scoped as in a list.
	one := url.Values{}
	for k, vs := range params {
		one[k] = vs
	}
	one.Set(param, parent+"/"+*id)
	compiled, err := search.Compile(typ, one, search.Options{Strict: true, BaseURL: r.baseURL})
	if err != nil {
		return nil, gqlError(ctx, codeBadInput, err.Error())
	}
	if err := r.scopeNested(ctx, compiled.Query.Where); err != nil {
		return nil, err
	}
	if compiled.Query.CountOnly {
		// _count: 0 asks for no resources.
		return []*T{}, nil
	}
	found, err := loadersFrom(ctx).loadReverse(ctx, reverseList{include: in, params: params, filter: f, limit: compiled.Query.Count}, parent+"/"+*id)
	if err != nil {
		return nil, r.storeError(ctx, err)
	}
	out := make([]*T, 0, len(found))
	for _, res := range found {
		out = append(out, decode[T](ctx, res.Body))
	}
	return out, nil
}

// connection serves a TypeConnection field (FHIR GraphQL): one page of the
// search its arguments make, the number of matches, and signed cursors
// for the first, previous and next pages (pass one back as _cursor, with
// the same arguments). C is the type's generated connection model, filled
// from the page's JSON.
func connection[C any](ctx context.Context, r *Resolver, typ string) (*C, error) {
	params := searchParams(ctx)
	cursor := params.Get("_cursor")
	params.Del("_cursor")
	compiled, err := r.compileList(ctx, typ, params)
	if err != nil {
		return nil, err
	}
	q := compiled.Query
	if cursor != "" {
		if q.Cursor, err = r.cursors.Open(ctx, r.store, cursor); err != nil {
			if errors.Is(err, search.ErrForeignCursor) {
				return nil, gqlError(ctx, codeBadInput, err.Error())
			}
			return nil, r.internal(ctx, err)
		}
	}
	q.Total = true
	page, err := r.store.Search(ctx, q)
	if err != nil {
		return nil, r.storeError(ctx, err)
	}
	type edge struct {
		Mode     string          `json:"mode"`
		Resource json.RawMessage `json:"resource"`
	}
	conn := struct {
		Count    int    `json:"count"`
		Pagesize int    `json:"pagesize"`
		First    string `json:"first,omitempty"`
		Previous string `json:"previous,omitempty"`
		Next     string `json:"next,omitempty"`
		Edges    []edge `json:"edges"`
	}{Count: page.Total, Pagesize: q.Count, Edges: []edge{}}
	for _, res := range page.Resources {
		conn.Edges = append(conn.Edges, edge{Mode: "match", Resource: servable(res.Body)})
	}
	for _, c := range []struct {
		store string
		to    *string
	}{{"", &conn.First}, {page.Prev, &conn.Previous}, {page.Next, &conn.Next}} {
		if c.store == "" && c.to != &conn.First {
			continue
		}
		if *c.to, err = r.cursors.Sign(ctx, r.store, c.store); err != nil {
			return nil, r.internal(ctx, err)
		}
	}
	body, _ := json.Marshal(conn)
	var out C
	if err := json.Unmarshal(body, &out); err != nil {
		graphql.AddError(ctx, gqlError(ctx, codeInternal, "part of the page could not be served: "+err.Error()))
	}
	return &out, nil
}

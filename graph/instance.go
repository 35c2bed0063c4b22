package graph

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
)

// FHIR GraphQL's instance form: a query sent to [base]/[type]/[id]/$graphql
// selects fields of that resource, e.g. { name { family } }. It runs as
// the same query inside the root read, { Patient(id: "…") { name { family } } },
// so it goes through the same validation, limits and authorization, and the
// answer is unwrapped: data holds the resource's fields, and error paths
// start inside it.

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// instancePath reads /…/fhir/{type}/{id}/$graphql.
func instancePath(path string) (typ, id string, ok bool) {
	rest, found := strings.CutSuffix(path, "/$graphql")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 3 || parts[len(parts)-3] != "fhir" {
		return "", "", false
	}
	return parts[len(parts)-2], parts[len(parts)-1], true
}

// serveInstance rewrites the request's query into the root read of typ/id,
// lets srv answer it, and unwraps the answer.
func serveInstance(w http.ResponseWriter, r *http.Request, srv http.Handler, typ, id string) {
	if decoders[typ] == nil || !fhirID.MatchString(id) {
		writeErrors(w, http.StatusNotFound, typ+"/"+id+" is not a resource this API serves", codeNotFound)
		return
	}
	var params struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName,omitempty"`
		Variables     map[string]any `json:"variables,omitempty"`
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		params.Query, params.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &params.Variables); err != nil {
				writeErrors(w, http.StatusBadRequest, "variables is not a JSON object", "BAD_REQUEST")
				return
			}
		}
	case http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(body, &params)
		}
		if err != nil {
			writeErrors(w, http.StatusBadRequest, "the body is not a GraphQL request (JSON with a query)", "BAD_REQUEST")
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeErrors(w, http.StatusMethodNotAllowed, "use GET or POST", "BAD_REQUEST")
		return
	}
	if op, _ := r.Context().Value(operationKey{}).(*operation); op != nil {
		op.query, op.variables = params.Query, params.Variables
	}
	query, gerr := wrapInstance(params.Query, typ, id)
	if gerr != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{gerr}})
		return
	}
	params.Query = query
	body, _ := json.Marshal(params)
	inner := r.Clone(r.Context())
	inner.Method, inner.URL = http.MethodPost, &url.URL{Path: r.URL.Path}
	inner.Header.Set("Content-Type", "application/json")
	inner.Body, inner.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))

	rec := &recorder{header: http.Header{}}
	srv.ServeHTTP(rec, inner)
	var resp struct {
		Data       map[string]json.RawMessage `json:"data,omitempty"`
		Errors     []map[string]any           `json:"errors,omitempty"`
		Extensions map[string]any             `json:"extensions,omitempty"`
	}
	out := rec.body.Bytes()
	if json.Unmarshal(out, &resp) == nil {
		for _, e := range resp.Errors {
			if path, ok := e["path"].([]any); ok && len(path) > 0 && path[0] == typ {
				e["path"] = path[1:]
			}
		}
		unwrapped := struct {
			Data       json.RawMessage  `json:"data,omitempty"`
			Errors     []map[string]any `json:"errors,omitempty"`
			Extensions map[string]any   `json:"extensions,omitempty"`
		}{Errors: resp.Errors, Extensions: resp.Extensions}
		if resp.Data != nil {
			unwrapped.Data = resp.Data[typ]
		}
		out, _ = json.Marshal(unwrapped)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.status)
	_, _ = w.Write(out)
}

// wrapInstance puts every operation's selections inside typ(id: "id").
func wrapInstance(query, typ, id string) (string, *gqlerror.Error) {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		ge, ok := err.(*gqlerror.Error)
		if !ok {
			ge = gqlerror.Errorf("%s", err.Error())
		}
		ge.Extensions = map[string]any{"code": "GRAPHQL_PARSE_FAILED"}
		return "", ge
	}
	for _, op := range doc.Operations {
		op.SelectionSet = ast.SelectionSet{&ast.Field{
			Name:         typ,
			Arguments:    ast.ArgumentList{{Name: "id", Value: &ast.Value{Kind: ast.StringValue, Raw: id}}},
			SelectionSet: op.SelectionSet,
		}}
	}
	var b strings.Builder
	formatter.NewFormatter(&b).FormatQueryDocument(doc)
	return b.String(), nil
}

// recorder keeps the inner answer for unwrapping.
type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

package graph

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/audit"
)

// Auditor records GraphQL requests, as FHIR REST records its own
// (authz/audit.Recorder is one).
type Auditor interface {
	Record(audit.Event)
}

// Every authenticated GraphQL request is one AuditEvent: the restful
// interaction "operation" (action E), the client, the user and the
// patient in context as in REST, the query text and variables as the
// query entity, and for the instance form ($graphql on a resource) that
// resource. An answer that carries errors (a field refused, a reference
// out of reach, a query refused outright) is recorded with status 400, a
// minor failure, even where GraphQL over HTTP answered 200.

// operation is what the executor tells the audit of one request (the
// instance form sets the query as the client sent it, before rewriting).
type operation struct {
	query     string
	variables map[string]any
	errors    bool
}

type operationKey struct{}

// recordOperation notes the operation's text for the audit.
func recordOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if op, _ := ctx.Value(operationKey{}).(*operation); op != nil && op.query == "" {
		oc := graphql.GetOperationContext(ctx)
		op.query, op.variables = oc.RawQuery, oc.Variables
	}
	return next(ctx)
}

// recordErrors notes whether the answer carries errors.
func recordErrors(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if op, _ := ctx.Value(operationKey{}).(*operation); op != nil && resp != nil && len(resp.Errors) > 0 {
		op.errors = true
	}
	return resp
}

func auditEvent(r *http.Request, p *authz.Principal, status int, op *operation, typ, id string) audit.Event {
	e := audit.Answered(r, p.Claims, status)
	e.Interaction, e.Type = "operation", typ
	if id != "" {
		e.IDs = []string{id}
	}
	if op.errors && e.Status < 300 {
		e.Status = http.StatusBadRequest
	}
	q := url.Values{}
	if op.query != "" {
		q.Set("query", op.query)
	}
	if len(op.variables) > 0 {
		vars, _ := json.Marshal(op.variables)
		q.Set("variables", string(vars))
	}
	e.Query = q.Encode()
	return e
}

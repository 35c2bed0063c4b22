package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// Error is a client-facing failure: the HTTP status and the OperationOutcome
// issues that explain it. Handlers return it; writeError turns it into a
// response, so every FHIR error leaves the server the same way.
type Error struct {
	Status int
	Issues []Issue
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

func (e *Error) Error() string {
	if len(e.Issues) == 0 {
		return http.StatusText(e.Status)
	}
	return e.Issues[0].Diagnostics
}

// errorf builds an Error with one issue of severity "error".
func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Issues: []Issue{{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}}}
}

// invalid reports validation issues as 422 Unprocessable Entity, naming the
// location of each problem.
func invalid(issues []validate.Issue) *Error {
	e := &Error{Status: http.StatusUnprocessableEntity}
	for _, is := range issues {
		e.Issues = append(e.Issues, Issue{Severity: "error", Code: is.Code, Diagnostics: is.Message, Expression: []string{is.Path}})
	}
	return e
}

// outcome is the OperationOutcome resource for issues.
func outcome(issues []Issue) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": issues}
}

// informational is a one-issue OperationOutcome that reports success.
func informational(format string, args ...any) map[string]any {
	return outcome([]Issue{{Severity: "information", Code: "informational", Diagnostics: fmt.Sprintf(format, args...)}})
}

// asError maps any error to a client-facing Error. Store errors become their
// HTTP counterparts; anything unknown is a 500 that reveals no detail.
func asError(err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	var pe *search.ParamError
	if errors.As(err, &pe) {
		fe := errorf(http.StatusBadRequest, "invalid", "%v", err)
		fe.Issues[0].Expression = []string{pe.Param}
		return fe
	}
	switch {
	case errors.Is(err, store.ErrInvalid):
		return errorf(http.StatusBadRequest, "invalid", "%v", err)
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "not-found", "resource not found")
	case errors.Is(err, store.ErrGone):
		return errorf(http.StatusGone, "deleted", "resource deleted")
	case errors.Is(err, store.ErrConflict):
		return errorf(http.StatusPreconditionFailed, "conflict", "version conflict: the resource has changed since the version given in If-Match")
	case errors.Is(err, store.ErrExists):
		return errorf(http.StatusConflict, "duplicate", "a resource with this id already exists")
	case errors.Is(err, store.ErrUnsupported):
		return errorf(http.StatusNotImplemented, "not-supported", "%v", err)
	}
	return errorf(http.StatusInternalServerError, "exception", "internal server error")
}

// writeError sends err as an OperationOutcome; internal errors are logged
// with their detail, which never reaches the client.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	fe := asError(err)
	if fe.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body, _ := json.Marshal(outcome(fe.Issues))
	writeBody(w, r, fe.Status, body)
}

package fhir

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/google/uuid"
)

// Conditional interactions (FHIR R4 http.html: conditional create, update
// and delete) name what they change by a search instead of an id. Every
// one of them, over REST or in a Bundle, resolves its search here, through
// the search engine and store.Search like any other search, so that what
// "no match", "one match" and "several matches" mean is decided once.

// conditionParams reads the search of a conditional interaction (where
// names it in errors: a header, the URL, a Bundle entry). Only filters may
// select what a write changes: result parameters are refused, _format and
// _pretty (which shape the response) are set aside, and a condition with no
// filter is refused, since it would match every resource of the type.
func conditionParams(where, raw string) (url.Values, error) {
	params, err := url.ParseQuery(strings.TrimPrefix(raw, "?"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid", "%s: the condition is not a valid query string: %v", where, err)
	}
	delete(params, "_format")
	delete(params, "_pretty")
	for key := range params {
		if search.IsResultParam(key) {
			fe := errorf(http.StatusBadRequest, "invalid", "%s: %s is not a search filter, and a condition takes filters only", where, key)
			fe.Issues[0].Expression = []string{key}
			return nil, fe
		}
	}
	if len(params) == 0 {
		return nil, errorf(http.StatusBadRequest, "invalid", "%s: a conditional interaction needs search parameters that select the resource, e.g. identifier=urn:mrn|123", where)
	}
	return params, nil
}

// resolveCondition runs a condition on typ: nil when nothing matches, the
// one match, or 412 when the condition is not selective enough. Unknown
// parameters are errors (never ignored), as is any malformed value; the
// search has the time limit of any other.
//
// The search runs under f, the filter of the interaction it serves: what
// the token may not see never matches (a conditional create then creates,
// a conditional delete deletes nothing).
// Chains and reverse chains in it get the search filter of their type.
func (s *server) resolveCondition(r *http.Request, f authz.Filter, base, typ, where string, params url.Values) (*store.Resource, error) {
	ctx := r.Context()
	compiled, err := search.Compile(typ, params, search.Options{Strict: true, BaseURL: base})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := s.scopeNested(r, compiled.Query.Where); err != nil {
		return nil, err
	}
	q := compiled.Query
	f.Apply(&q)
	// Two matches are enough to know there are several.
	q.Count, q.Cursor, q.Total, q.CountOnly = 2, "", false, false
	ctx, cancel := context.WithTimeout(ctx, s.searchTimeout)
	defer cancel()
	page, err := s.store.Search(ctx, q)
	if err != nil {
		return nil, s.searchFailed(ctx, err)
	}
	switch len(page.Resources) {
	case 0:
		return nil, nil
	case 1:
		return &page.Resources[0], nil
	}
	return nil, errorf(http.StatusPreconditionFailed, "multiple-matches", "%s matches more than one %s: the condition must select a single resource", where, typ)
}

// conditionalTarget decides what a conditional update writes, given the
// condition's match (nil for none) and the id in the body ("" for none).
// One match is updated, at the version found unless ifMatch names one, so
// that a change made since the search fails with 412 rather than be
// overwritten; the body's id, if any, must be the match's. With no match
// the resource is created, under the body's id when it has one (409 if that
// id is taken by a resource the condition did not match).
func conditionalTarget(match *store.Resource, bodyID string, ifMatch int64) (store.Write, error) {
	if match == nil {
		if ifMatch != 0 {
			return store.Write{}, errorf(http.StatusPreconditionFailed, "conflict", "If-Match names version %d, but no resource matches the condition", ifMatch)
		}
		if bodyID == "" {
			return store.Write{Op: store.OpCreate, ID: uuid.NewString()}, nil
		}
		return store.Write{Op: store.OpCreate, ID: bodyID}, nil
	}
	if bodyID != "" && bodyID != match.ID {
		return store.Write{}, errorf(http.StatusBadRequest, "invalid", "the resource id %s differs from the id of the resource the condition matches (%s)", bodyID, match.ID)
	}
	if ifMatch == 0 {
		ifMatch = match.VersionID
	}
	return store.Write{Op: store.OpUpdate, ID: match.ID, IfMatch: ifMatch}, nil
}

// conditionalUpdate serves PUT /fhir/{type}?search.
func (s *server) conditionalUpdate(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	f, err := s.decide(r, policy.Update, typ)
	if err != nil {
		return err
	}
	params, err := conditionParams("conditional update", r.URL.RawQuery)
	if err != nil {
		return err
	}
	obj, ifMatch, err := s.putRequest(w, r, typ)
	if err != nil {
		return err
	}
	bodyID, err := resourceID(obj.Get("id"))
	if err != nil {
		return err
	}
	match, err := s.resolveCondition(r, f, s.baseURL(r), typ, "conditional update", params)
	if err != nil {
		return err
	}
	target, err := conditionalTarget(match, bodyID, ifMatch)
	if err != nil {
		return err
	}
	wr, issues := resource.Prepare(target.Op, typ, target.ID, obj, s.baseURL(r))
	if issues != nil {
		return invalid(issues)
	}
	wr.IfMatch = target.IfMatch
	if err := s.guardWrite(r, f, &wr); err != nil {
		return err
	}
	return s.applyOne(w, r, wr)
}

// conditionalDelete serves DELETE /fhir/{type}?search with single-delete
// semantics: several matches are 412 and delete nothing. No match is 200
// with an OperationOutcome saying nothing was deleted, as HAPI answers, so
// a client can tell it from a deletion.
func (s *server) conditionalDelete(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	f, err := s.decide(r, policy.Delete, typ)
	if err != nil {
		return err
	}
	params, err := conditionParams("conditional delete", r.URL.RawQuery)
	if err != nil {
		return err
	}
	ifMatch, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	match, err := s.resolveCondition(r, f, s.baseURL(r), typ, "conditional delete", params)
	if err != nil {
		return err
	}
	if match == nil {
		writeJSON(w, r, http.StatusOK, outcome([]Issue{{Severity: "warning", Code: "not-found",
			Diagnostics: fmt.Sprintf("no %s matches the condition: nothing was deleted", typ)}}))
		return nil
	}
	if ifMatch == 0 {
		ifMatch = match.VersionID
	}
	return s.deleteOne(w, r, f, typ, match.ID, ifMatch)
}

// resourceID reads a body's id member: "" when absent, 400 when it is not a
// valid id.
func resourceID(v any, present bool) (string, error) {
	if !present {
		return "", nil
	}
	id, ok := v.(string)
	if !ok || !resource.ValidID(id) {
		return "", errorf(http.StatusBadRequest, "value", "the resource id %v is not a valid id", v)
	}
	return id, nil
}

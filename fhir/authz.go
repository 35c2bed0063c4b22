package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/store"
)

// How the FHIR API asks package authz (see authz.Guard). Every endpoint
// but the CapabilityStatement authenticates the request's bearer token
// before anything else, then asks for a decision per interaction and
// resource type, and pushes the answer's filter into every store query the
// interaction makes:
//
//   - read, vread, instance history: the resource must be in reach under
//     the filter (see reach), else 404, the same answer as for a resource
//     that does not exist. A live resource is in reach when visible (a
//     store search by id with the filter); a deleted one when it was as it
//     last was: its last live version's patient compartments (derived from
//     that version's body) and its practice (store.Resource.Practice) are
//     within the filter. Such a deleted resource reads as 410 Gone, and
//     its vread and history are served; under a granular filter (Where),
//     which is not evaluated on a deletion, a deleted resource is 404.
//     Once the resource is in reach, instance history lists, and vread
//     serves, the versions whose own membership is within the filter's
//     compartments and practices (store.HistoryQuery): a version from
//     before the resource came within reach is as missing.
//   - search (type and compartment): the filter joins the compiled query;
//     chains and reverse chains get the filter of their own type (a type
//     the token may not search makes the whole search 403); _include gets
//     the read filter of each included type and _revinclude the search
//     filter of each referring type, and a type the token may not reach is
//     left out silently. Counts, totals and pages come from the filtered
//     query.
//   - type and system history: the filter's compartments and practices
//     join the store history query, which judges each version by its own
//     membership (a deletion by its last live version's), so every listed
//     version was within reach when written; paging and _since work as
//     unfiltered. Granular filters (Where), which history cannot apply,
//     are refused with 403. System history is decided as the wildcard
//     type "*" and leaves out the types the policy denies the token on
//     their own (AuditEvent to all but staff).
//   - writes (REST, conditional, each Bundle entry): see guardWrite.

type principalKey struct{}

// authenticated runs h for requests with a valid bearer token only;
// others are answered 401 with the RFC 6750 challenge. With an Auditor,
// it answers h's error itself and then records the request with the
// status answered: every authenticated request, denials (403, 404)
// included, is audited here and nowhere else. 401s are not: they name no
// one, and anyone could fill the trail with them.
func (s *server) authenticated(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.guard.Authenticate(r)
		if err != nil {
			return unauthorized(w, err)
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		if s.audit == nil {
			return h(w, r)
		}
		sw := &audit.StatusWriter{ResponseWriter: w}
		if err := h(sw, r); err != nil {
			s.writeError(sw, r, err)
		}
		s.audit.Record(auditEvent(r, p, sw))
		return nil
	}
}

// writeInteraction is the write a method asks for, else otherwise.
func writeInteraction(method, otherwise string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodPut:
		return "update"
	case http.MethodDelete:
		return "delete"
	case http.MethodPatch:
		return "patch"
	}
	return otherwise
}

// auditEvent describes an answered request for the audit trail: the
// interaction follows from the route (routes.go) and method, the ids from
// the path or, for a create, the Location answered.
func auditEvent(r *http.Request, p *authz.Principal, w *audit.StatusWriter) audit.Event {
	e := audit.Answered(r, p.Claims, w.Status)
	e.Type = r.PathValue("type")
	id := r.PathValue("id")
	switch r.Pattern {
	case "/fhir/{$}":
		// Batch or transaction: which is in the Bundle, unread here.
		e.Interaction = "transaction"
	case "/fhir/_history":
		e.Interaction = "history-system"
	case "/fhir/{type}/_history":
		e.Interaction = "history-type"
	case "/fhir/{type}/{id}/_history":
		e.Interaction, e.IDs = "history-instance", []string{id}
	case "/fhir/{type}/{id}/_history/{vid}":
		e.Interaction, e.IDs = "vread", []string{id}
	case "/fhir/{type}/{id}/{ctype}":
		e.Interaction, e.Type, e.Compartment = "search-compartment", r.PathValue("ctype"), e.Type+"/"+id
	case "/fhir/{type}/_search":
		e.Interaction = "search-type"
	case "/fhir/$export", "/fhir/$export-poll-status", "/fhir/$export-file":
		// Bulk Data: the kick-off's parameters, or the job and file, are
		// the query.
		e.Interaction = "operation"
	case "/fhir/Patient/$export":
		e.Interaction, e.Type = "operation", "Patient"
	case "/fhir/Group/{id}/$export":
		e.Interaction, e.Type, e.IDs = "operation", "Group", []string{id}
	case "/fhir/{type}/{id}":
		e.Interaction, e.IDs = writeInteraction(r.Method, "read"), []string{id}
	default: // "/fhir/{type}": search, create, conditional update and delete
		e.Interaction = writeInteraction(r.Method, "search-type")
	}
	if strings.HasPrefix(e.Interaction, "search") || (len(e.IDs) == 0 && r.URL.RawQuery != "") {
		q := r.URL.RawQuery
		if len(r.PostForm) > 0 {
			q = strings.Trim(q+"&"+r.PostForm.Encode(), "&")
		}
		e.Query = q
	}
	// A create (and a conditional write) names what it wrote in Location:
	// .../Type/id/_history/n.
	if loc := w.Header().Get("Location"); len(e.IDs) == 0 && loc != "" {
		parts := strings.Split(loc, "/")
		if n := len(parts); n >= 4 && parts[n-2] == "_history" {
			e.IDs = []string{parts[n-3]}
		}
	}
	return e
}

// unauthorized sets the WWW-Authenticate challenge for an Authenticate
// failure and returns the 401 (or, for an internal failure, the error).
func unauthorized(w http.ResponseWriter, err error) error {
	if errors.Is(err, authz.ErrNoToken) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		return errorf(http.StatusUnauthorized, "login", "%s", "an access token is required: send Authorization: Bearer <token>")
	}
	te := token.AsError(err)
	if te == nil {
		return err
	}
	desc := strings.NewReplacer(`"`, "'", `\`, "/").Replace(te.Description)
	w.Header().Set("WWW-Authenticate", `Bearer error="`+te.Code+`", error_description="`+desc+`"`)
	return errorf(http.StatusUnauthorized, "login", "%s", te.Description)
}

func principal(r *http.Request) *authz.Principal {
	p, _ := r.Context().Value(principalKey{}).(*authz.Principal)
	return p
}

// decide asks the guard about one interaction on typ: the filter, or a
// 403 with the policy's reason.
func (s *server) decide(r *http.Request, in policy.Interaction, typ string) (authz.Filter, error) {
	p := principal(r)
	if p == nil {
		// Only a handler not wrapped in authenticated gets here: refuse
		// rather than serve it unprotected.
		return authz.Filter{}, errorf(http.StatusUnauthorized, "login", "an access token is required")
	}
	a, err := s.guard.Decide(p, in, typ)
	if err != nil {
		return authz.Filter{}, err
	}
	if !a.Allowed {
		return authz.Filter{}, forbidden("%s", a.Reason)
	}
	return a.Filter, nil
}

func forbidden(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "forbidden", format, args...)
}

// errNotFound is the one answer for a resource that does not exist and for
// one the token may not see.
func errNotFound() *Error { return errorf(http.StatusNotFound, "not-found", "resource not found") }

// visible returns the current version of typ/id when it exists, is not
// deleted and is within f; nil otherwise.
func (s *server) visible(ctx context.Context, f authz.Filter, typ, id string) (*store.Resource, error) {
	q := store.Query{Type: typ, IDs: []string{id}, Count: 1}
	f.Apply(&q)
	page, err := s.store.Search(ctx, q)
	if err != nil || len(page.Resources) == 0 {
		return nil, err
	}
	return &page.Resources[0], nil
}

// reach returns typ/id as the token sees it under f: its current version
// when that is visible, the deletion version (Deleted set) when the
// resource is deleted and was within f as it last was, nil otherwise (the
// answer for a resource that does not exist). As it last was means its
// last live version's patient compartments, derived from that version's
// body, and the practice it had (store.Resource.Practice). A granular
// filter (Where) is not evaluated on a deleted resource: under one, a
// deleted resource is nil.
func (s *server) reach(r *http.Request, f authz.Filter, typ, id string) (*store.Resource, error) {
	ctx := r.Context()
	if !f.Confines() {
		res, err := s.store.Read(ctx, typ, id)
		switch {
		case err == nil, errors.Is(err, store.ErrGone):
			return &res, nil
		case errors.Is(err, store.ErrNotFound):
			return nil, nil
		}
		return nil, err
	}
	if found, err := s.visible(ctx, f, typ, id); found != nil || err != nil {
		return found, err
	}
	if len(f.Where) > 0 {
		return nil, nil
	}
	res, err := s.store.Read(ctx, typ, id)
	switch {
	case errors.Is(err, store.ErrGone):
	case err == nil, errors.Is(err, store.ErrNotFound):
		// Live but not visible, or missing.
		return nil, nil
	default:
		return nil, err
	}
	// Deleting a deleted resource makes no version: the one before a
	// deletion is live.
	last, err := s.store.VRead(ctx, typ, id, res.VersionID-1)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrGone):
		return nil, nil
	default:
		return nil, err
	}
	derived, err := resource.Derive(typ, id, last.Body, s.baseURL(r))
	if err != nil {
		return nil, fmt.Errorf("%s/%s version %d: %w", typ, id, last.VersionID, err)
	}
	if !f.Admits(derived.Compartments, res.Practice) {
		return nil, nil
	}
	return &res, nil
}

// patientPractice is the practice that owns the patient a resource about
// to be created belongs to (the first of its compartments that names a
// stored patient): "" when there is none.
func (s *server) patientPractice(ctx context.Context, compartments []string) (string, error) {
	for _, c := range compartments {
		id, ok := strings.CutPrefix(c, "Patient/")
		if !ok {
			continue
		}
		p, err := s.store.Read(ctx, "Patient", id)
		switch {
		case err == nil:
			return p.Practice, nil
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrGone):
			return "", err
		}
	}
	return "", nil
}

// guardWrite checks one write (create, update or delete of wr.Type/wr.ID,
// as prepared) under the filter of its interaction, and sets its owning
// practice. Unless f confines nothing:
//
//   - granular filters allow no writes (403): whether a written resource
//     matches a granular query is not checked.
//   - an update or delete needs the resource in reach under f (see reach:
//     its current version visible, or, deleted, its last live version
//     within f). A delete of one that is not is answered as for a missing
//     resource (404); deleting a deleted one in reach changes nothing, as
//     in the store. An update of one that exists but is not in reach is
//     403 (an update of an id that never existed creates it); an update of
//     a deleted one in reach revives it. The write is pinned to the
//     version checked (If-Match), so a concurrent change fails with 412
//     rather than slip through.
//   - the written resource must be in f's compartments (Write.Compartments)
//     and practices, else 403.
//
// Practice: an update keeps the existing resource's practice (so an
// update never loses it, nor turns shared data into a practice's; a
// revive keeps the practice of the last live version); a create (and an
// update that creates) gets the token's practice when it reaches exactly
// one, else the practice of the patient the resource belongs to (so that
// what a patient app or a multi-practice token writes about a patient
// stays with that patient's practice), else none ("": shared data).
func (s *server) guardWrite(r *http.Request, f authz.Filter, wr *store.Write) error {
	if !f.Confines() {
		return nil
	}
	if len(f.Where) > 0 {
		return forbidden("granular scopes (with a ?query) do not allow writing %s: a write needs a scope without a query", wr.Type)
	}
	ctx := r.Context()
	practice, _ := f.OwnPractice()
	creating := wr.Op != store.OpDelete
	if wr.Op == store.OpUpdate || wr.Op == store.OpDelete {
		cur, err := s.reach(r, f, wr.Type, wr.ID)
		if err != nil {
			return err
		}
		switch {
		case cur == nil && wr.Op == store.OpDelete:
			return errNotFound()
		case cur == nil:
			// Only an id that never existed may be created by update.
			_, err := s.store.Read(ctx, wr.Type, wr.ID)
			switch {
			case err == nil, errors.Is(err, store.ErrGone):
				return forbidden("the granted scopes do not allow writing %s/%s", wr.Type, wr.ID)
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		case cur.Deleted:
			if wr.IfMatch == 0 {
				wr.IfMatch = cur.VersionID
			}
			practice = cur.Practice
		default:
			if wr.IfMatch == 0 {
				wr.IfMatch = cur.VersionID
			}
			// In reach, so its practice is the token's to keep.
			res, err := s.store.Read(ctx, wr.Type, wr.ID)
			if err != nil {
				return err
			}
			practice = res.Practice
		}
		if cur != nil {
			creating = false
		}
	}
	if creating && practice == "" {
		p, err := s.patientPractice(ctx, wr.Compartments)
		if err != nil {
			return err
		}
		practice = p
	}
	if wr.Op != store.OpDelete && !f.Admits(wr.Compartments, practice) {
		return forbidden("the granted scopes do not allow writing this %s: it is outside the token's patient compartment or practices", wr.Type)
	}
	wr.Practice = practice
	return nil
}

// scopeNested gives every chained (Target) and reverse-chained (Has) plan
// in where the search filter of its own type, recursively (see
// authz.Guard.ScopeNested): a type the token may not search makes the
// whole search 403.
func (s *server) scopeNested(r *http.Request, where []store.Clause) error {
	p := principal(r)
	if p == nil {
		return errorf(http.StatusUnauthorized, "login", "an access token is required")
	}
	a, err := s.guard.ScopeNested(p, where)
	if err != nil {
		return err
	}
	if !a.Allowed {
		return forbidden("%s", a.Reason)
	}
	return nil
}

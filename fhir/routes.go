package fhir

import (
	"net/http"

	"github.com/fhirgraph/fhirgraph/fhir/bulk"
)

// routes lists the whole FHIR REST surface. Paths are matched by shape only;
// each handler checks the method itself so an unsupported interaction gets a
// 405 OperationOutcome rather than the mux's plain-text answer. Every
// endpoint but metadata (and the catch-all 404, which reads nothing)
// authenticates first.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/fhir/metadata", s.handle(methods(s.capabilities, http.MethodGet, http.MethodHead)))
	mux.Handle("/fhir/{$}", s.handle(s.authenticated(methods(s.systemBundle, http.MethodPost))))
	mux.Handle("/fhir/_history", s.handle(s.authenticated(methods(s.history, http.MethodGet, http.MethodHead))))
	// Bulk Data $export (export.go): literal paths, more specific than the
	// REST patterns they resemble.
	mux.Handle("/fhir/$export", s.exportHandle(s.authenticated(methods(s.kickoff(bulk.SystemLevel), http.MethodGet, http.MethodPost))))
	mux.Handle("/fhir/Patient/$export", s.exportHandle(s.authenticated(methods(s.kickoff(bulk.PatientLevel), http.MethodGet, http.MethodPost))))
	mux.Handle("/fhir/Group/{id}/$export", s.exportHandle(s.authenticated(methods(s.kickoff(bulk.GroupLevel), http.MethodGet, http.MethodPost))))
	mux.Handle("/fhir/$export-poll-status", s.exportHandle(s.authenticated(methods(s.exportStatus, http.MethodGet, http.MethodDelete))))
	mux.Handle("/fhir/$export-file", s.exportHandle(s.authenticated(methods(s.exportFile, http.MethodGet, http.MethodHead))))
	mux.Handle("/fhir/{type}", s.handle(s.authenticated(s.typeLevel)))
	mux.Handle("/fhir/{type}/_search", s.handle(s.authenticated(s.withType(methods(s.search, http.MethodPost)))))
	mux.Handle("/fhir/{type}/_history", s.handle(s.authenticated(s.withType(methods(s.history, http.MethodGet, http.MethodHead)))))
	mux.Handle("/fhir/{type}/{id}", s.handle(s.authenticated(s.withType(s.instanceLevel))))
	mux.Handle("/fhir/{type}/{id}/{ctype}", s.handle(s.authenticated(s.withType(methods(s.compartmentSearch, http.MethodGet, http.MethodHead)))))
	mux.Handle("/fhir/{type}/{id}/_history", s.handle(s.authenticated(s.withType(methods(s.history, http.MethodGet, http.MethodHead)))))
	mux.Handle("/fhir/{type}/{id}/_history/{vid}", s.handle(s.authenticated(s.withType(methods(s.vread, http.MethodGet, http.MethodHead)))))
	mux.Handle("/fhir/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "not-found", "no FHIR endpoint at %s", r.URL.Path)
	}))
	return mux
}

// typeLevel serves /fhir/{type}: search (GET), create (POST), and
// conditional update (PUT) and delete (DELETE).
func (s *server) typeLevel(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkType(r); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.search(w, r)
	case http.MethodPost:
		return s.create(w, r)
	case http.MethodPut:
		return s.conditionalUpdate(w, r)
	case http.MethodDelete:
		return s.conditionalDelete(w, r)
	}
	return notAllowed(r)
}

// instanceLevel serves /fhir/{type}/{id}: read, update, delete.
func (s *server) instanceLevel(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.read(w, r)
	case http.MethodPut:
		return s.update(w, r)
	case http.MethodDelete:
		return s.delete(w, r)
	}
	return notAllowed(r)
}

// methods restricts h to the given HTTP methods.
func methods(h handlerFunc, allowed ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		for _, m := range allowed {
			if r.Method == m {
				return h(w, r)
			}
		}
		return notAllowed(r)
	}
}

// withType checks the {type} path segment before h runs.
func (s *server) withType(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.checkType(r); err != nil {
			return err
		}
		return h(w, r)
	}
}

func notAllowed(r *http.Request) error {
	return errorf(http.StatusMethodNotAllowed, "not-supported", "%s is not supported on %s", r.Method, r.URL.Path)
}

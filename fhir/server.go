// Package fhir is the FHIR R4 REST API: routing, content negotiation,
// read/vread/create/update/delete/history, transaction and batch Bundles, the
// CapabilityStatement and OperationOutcomes. It asks package store for data
// and never talks to a database itself, and asks package authz, once per
// request, who is calling and what they may see (authz.go).
package fhir

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/fhir/bulk"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// DefaultMaxBodyBytes bounds request bodies unless Config says otherwise.
const DefaultMaxBodyBytes = 16 << 20

// Config holds the FHIR API's dependencies.
type Config struct {
	Store store.Store
	// Guard authenticates every request but the CapabilityStatement's and
	// decides what it may do (see authz.go). Required: NewHandler panics
	// without one, so the API is never served unprotected.
	Guard *authz.Guard
	// BaseURL is the public URL of the FHIR base (e.g.
	// "http://localhost:8080/fhir"); when empty it is derived from each
	// request.
	BaseURL string
	// MaxBodyBytes bounds request bodies (413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Version is the software version reported in the CapabilityStatement.
	Version string
	// SearchTimeout bounds one search (default DefaultSearchTimeout).
	SearchTimeout time.Duration
	// OAuth, when set, names the SMART authorization server's endpoints,
	// which the CapabilityStatement's rest.security then announces.
	OAuth *OAuthURIs
	// Auditor, when set, is told of every authenticated request once it
	// is answered (see authenticated); it must not block.
	Auditor Auditor
	// Bulk, when set, serves Bulk Data $export (export.go); without it
	// the $export endpoints answer 501.
	Bulk *bulk.Service
}

// Auditor records FHIR accesses (authz/audit.Recorder is one).
type Auditor interface {
	Record(audit.Event)
}

// OAuthURIs are the endpoints of the authorization server that issues the
// API's tokens (SMART's oauth-uris extension).
type OAuthURIs struct {
	Authorize, Token, Introspect, Revoke string
}

// DefaultSearchTimeout bounds a search unless Config says otherwise.
const DefaultSearchTimeout = 10 * time.Second

type server struct {
	store   store.Store
	guard   *authz.Guard
	base    string
	maxBody int64
	log     *slog.Logger
	version string

	searchTimeout time.Duration
	cursors       search.CursorSigner
	oauth         *OAuthURIs
	audit         Auditor
	bulk          *exportAPI
}

// NewHandler returns the FHIR API, to be mounted at /fhir/.
func NewHandler(cfg Config) http.Handler {
	if cfg.Guard == nil {
		panic("fhir: Config.Guard is required")
	}
	s := &server{store: cfg.Store, guard: cfg.Guard, base: strings.TrimSuffix(cfg.BaseURL, "/"), maxBody: cfg.MaxBodyBytes, log: cfg.Logger, version: cfg.Version, oauth: cfg.OAuth, audit: cfg.Auditor}
	if cfg.Bulk != nil {
		s.bulk = &exportAPI{svc: cfg.Bulk}
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.version == "" {
		s.version = "dev"
	}
	s.searchTimeout = cfg.SearchTimeout
	if s.searchTimeout <= 0 {
		s.searchTimeout = DefaultSearchTimeout
	}
	return s.routes()
}

// handlerFunc is a FHIR handler that returns its failure instead of writing
// it, so every error response is built in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: it negotiates the response format first (406
// before any work) and turns a returned error into an OperationOutcome.
func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := responseType(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// baseURL is the FHIR base for links in responses.
func (s *server) baseURL(r *http.Request) string {
	if s.base != "" {
		return s.base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}

// readResourceBody reads and parses a request body holding one resource,
// enforcing the size limit (413), media type (415) and JSON well-formedness
// (400).
func (s *server) readResourceBody(w http.ResponseWriter, r *http.Request) (*fhirjson.Object, error) {
	if err := checkContentType(r); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too-costly", "request body exceeds the limit of %d bytes", s.maxBody)
		}
		return nil, errorf(http.StatusBadRequest, "structure", "request body could not be read: %v", err)
	}
	if len(body) == 0 {
		return nil, errorf(http.StatusBadRequest, "structure", "request body is empty: a FHIR resource is required")
	}
	obj, err := fhirjson.Parse(body)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "structure", "%v", err)
	}
	return obj, nil
}

package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// maxSearchForm bounds a POST _search body.
const maxSearchForm = 1 << 20

// search serves GET /fhir/{type} and POST /fhir/{type}/_search: the
// parameters are compiled into one store query and the page comes back as
// a searchset Bundle.
func (s *server) search(w http.ResponseWriter, r *http.Request) error {
	return s.searchIn(w, r, r.PathValue("type"), "")
}

// compartmentSearch serves GET /fhir/Patient/{id}/{ctype}: a search of
// ctype within one patient's compartment.
func (s *server) compartmentSearch(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("type") != "Patient" {
		return errorf(http.StatusNotFound, "not-supported", "compartment search is supported for the Patient compartment only")
	}
	ctype := r.PathValue("ctype")
	if !validate.IsResourceType(ctype) {
		return errorf(http.StatusNotFound, "not-supported", "unknown resource type %q", ctype)
	}
	return s.searchIn(w, r, ctype, "Patient/"+r.PathValue("id"))
}

// searchIn runs a search of typ, within compartment when it is set.
func (s *server) searchIn(w http.ResponseWriter, r *http.Request, typ, compartment string) error {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := readSearchForm(w, r)
		if err != nil {
			return err
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	compiled, err := search.Compile(typ, params, search.Options{Strict: preferStrict(r), BaseURL: s.baseURL(r)})
	if err != nil {
		return err
	}
	if compartment != "" {
		compiled.Query.Compartments = []string{compartment}
	}
	if compiled.Query.Cursor != "" {
		if compiled.Query.Cursor, err = s.cursors.open(r.Context(), s.store, compiled.Query.Cursor); err != nil {
			return err
		}
	}
	// No search may run without bound: past the limit it is abandoned with
	// an OperationOutcome rather than left to hold a connection.
	ctx, cancel := context.WithTimeout(r.Context(), s.searchTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	page, err := s.store.Search(ctx, compiled.Query)
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != nil {
		return errorf(http.StatusServiceUnavailable, "too-costly", "the search did not finish within %s: narrow it (for example by patient)", s.searchTimeout)
	}
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	b := bundle{ResourceType: "Bundle", Type: "searchset"}
	if page.Total >= 0 {
		total := page.Total
		b.Total = &total
	}
	self := compiled.Used
	path := typ
	if compartment != "" {
		path = compartment + "/" + typ
	}
	b.Link = append(b.Link, link{Relation: "self", URL: searchURL(base, path, self)})
	if page.Next != "" {
		next := url.Values{}
		for k, v := range self {
			if k != "_cursor" {
				next[k] = v
			}
		}
		signed, err := s.cursors.sign(r.Context(), s.store, page.Next)
		if err != nil {
			return err
		}
		next.Set("_cursor", signed)
		b.Link = append(b.Link, link{Relation: "next", URL: searchURL(base, path, next)})
	}
	for _, res := range page.Resources {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: json.RawMessage(res.Body), Search: &entrySearch{Mode: "match"}})
	}
	included, err := s.included(r, compiled, page.Resources)
	if err != nil {
		return err
	}
	for _, res := range included {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: json.RawMessage(res.Body), Search: &entrySearch{Mode: "include"}})
	}
	if len(compiled.Ignored) > 0 {
		oo, _ := json.Marshal(outcome([]Issue{{Severity: "warning", Code: "not-supported",
			Diagnostics: fmt.Sprintf("unknown search parameters ignored: %s", strings.Join(compiled.Ignored, ", "))}}))
		b.Entry = append(b.Entry, entry{Resource: oo, Search: &entrySearch{Mode: "outcome"}})
	}
	writeJSON(w, r, http.StatusOK, b)
	return nil
}

// included resolves _include and _revinclude for a page: the resources the
// matches point at, and those pointing at the matches, each once and never
// a match again.
func (s *server) included(r *http.Request, compiled *search.Search, matches []store.Resource) ([]store.Resource, error) {
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	var out []store.Resource
	add := func(res store.Resource) {
		if key := res.Type + "/" + res.ID; !seen[key] {
			seen[key] = true
			out = append(out, res)
		}
	}
	for _, in := range compiled.Includes {
		for _, m := range matches {
			for _, ref := range in.References(m.Body) {
				if seen[ref] {
					continue
				}
				typ, id, _ := strings.Cut(ref, "/")
				res, err := s.store.Read(r.Context(), typ, id)
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
					continue
				}
				if err != nil {
					return nil, err
				}
				add(res)
			}
		}
	}
	if len(compiled.RevIncludes) > 0 && len(matches) > 0 {
		refs := make([]string, len(matches))
		for i, m := range matches {
			refs[i] = m.Type + "/" + m.ID
		}
		for _, in := range compiled.RevIncludes {
			page, err := s.store.Search(r.Context(), in.RevQuery(refs, store.MaxPageSize))
			if err != nil {
				return nil, err
			}
			for _, res := range page.Resources {
				add(res)
			}
		}
	}
	return out, nil
}

func searchURL(base, typ string, q url.Values) string {
	if len(q) == 0 {
		return base + "/" + typ
	}
	return base + "/" + typ + "?" + q.Encode()
}

// readSearchForm reads an application/x-www-form-urlencoded _search body.
func readSearchForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, errorf(http.StatusUnsupportedMediaType, "not-supported", "POST _search takes application/x-www-form-urlencoded, not %q", ct)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSearchForm)
	if err := r.ParseForm(); err != nil {
		return nil, errorf(http.StatusBadRequest, "structure", "search form could not be read: %v", err)
	}
	return r.PostForm, nil
}

// preferStrict reports Prefer: handling=strict.
func preferStrict(r *http.Request) bool { return prefer(r, "handling") == "strict" }

type entrySearch struct {
	Mode string `json:"mode"`
}

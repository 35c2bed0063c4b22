package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
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
	in := policy.SearchType
	if compartment != "" {
		in = policy.SearchCompartment
	}
	f, err := s.decide(r, in, typ)
	if err != nil {
		return err
	}
	compiled, err := search.Compile(typ, params, search.Options{Strict: preferStrict(r), BaseURL: s.baseURL(r)})
	if err != nil {
		return err
	}
	if compartment != "" {
		compiled.Query.Compartments = []string{compartment}
	}
	// Nested plans first: the filter's own clauses are shared, and are
	// not the request's to scope.
	if err := s.scopeNested(r, compiled.Query.Where); err != nil {
		return err
	}
	f.Apply(&compiled.Query)
	if compiled.Query.Cursor != "" {
		if compiled.Query.Cursor, err = s.cursors.Open(r.Context(), s.store, compiled.Query.Cursor); err != nil {
			if errors.Is(err, search.ErrForeignCursor) {
				return errorf(http.StatusBadRequest, "invalid", "%s", err.Error())
			}
			return err
		}
	}
	// No search may run without bound: past the limit it is abandoned with
	// an OperationOutcome rather than left to hold a connection.
	ctx, cancel := context.WithTimeout(r.Context(), s.searchTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	page, err := s.store.Search(ctx, compiled.Query)
	if err != nil {
		return s.searchFailed(ctx, err)
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
	for _, l := range []struct{ relation, cursor string }{{"next", page.Next}, {"previous", page.Prev}} {
		if l.cursor == "" {
			continue
		}
		u, err := s.pageURL(r.Context(), base, path, self, l.cursor)
		if err != nil {
			return err
		}
		b.Link = append(b.Link, link{Relation: l.relation, URL: u})
	}
	for _, res := range page.Resources {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: compiled.Subset.Apply(res.Type, res.Body), Search: &entrySearch{Mode: "match"}})
	}
	included, truncated, err := s.included(r, compiled, page.Resources, base)
	if err != nil {
		return s.searchFailed(ctx, err)
	}
	// _elements names elements of the searched type; _summary applies to
	// any type, so to included resources too.
	inclSubset := compiled.Subset
	if inclSubset != nil && inclSubset.Elements != nil {
		inclSubset = nil
	}
	for _, res := range included {
		b.Entry = append(b.Entry, entry{FullURL: base + "/" + res.Type + "/" + res.ID, Resource: inclSubset.Apply(res.Type, res.Body), Search: &entrySearch{Mode: "include"}})
	}
	var notes []Issue
	if len(compiled.Ignored) > 0 {
		notes = append(notes, Issue{Severity: "warning", Code: "not-supported",
			Diagnostics: fmt.Sprintf("unknown search parameters ignored: %s", strings.Join(compiled.Ignored, ", "))})
	}
	if truncated != "" {
		notes = append(notes, Issue{Severity: "warning", Code: "too-costly", Diagnostics: "_include/_revinclude: " + truncated})
	}
	if len(notes) > 0 {
		oo, _ := json.Marshal(outcome(notes))
		b.Entry = append(b.Entry, entry{Resource: oo, Search: &entrySearch{Mode: "outcome"}})
	}
	writeJSON(w, r, http.StatusOK, b)
	return nil
}

// searchFailed explains a store error of a search run under ctx: past the
// search time limit, a 503 saying so.
func (s *server) searchFailed(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return errorf(http.StatusServiceUnavailable, "too-costly", "the search did not finish within %s: narrow it (for example by patient)", s.searchTimeout)
	}
	return err
}

// pageURL is the link to the page a store cursor continues at: the
// parameters in effect and the cursor, signed.
func (s *server) pageURL(ctx context.Context, base, path string, used url.Values, cursor string) (string, error) {
	q := url.Values{}
	for k, v := range used {
		if k != "_cursor" {
			q[k] = v
		}
	}
	signed, err := s.cursors.Sign(ctx, s.store, cursor)
	if err != nil {
		return "", err
	}
	q.Set("_cursor", signed)
	return searchURL(base, path, q), nil
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

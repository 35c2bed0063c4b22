package fhir

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// history serves instance, type and system history: a Bundle of type
// history, newest first, paged with next links.
func (s *server) history(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	hq := store.HistoryQuery{Type: r.PathValue("type"), ID: r.PathValue("id"), Cursor: q.Get("_cursor")}
	if c := q.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "value", "invalid _count %q: expected a non-negative integer", c)
		}
		hq.Count = store.PageSize(n)
	}
	if since := q.Get("_since"); since != "" {
		t, err := parseInstant(since)
		if err != nil {
			return errorf(http.StatusBadRequest, "value", "invalid _since %q: expected an instant such as 2024-01-31T12:00:00Z", since)
		}
		hq.Since = t
	}
	if q.Has("_at") {
		return errorf(http.StatusBadRequest, "not-supported", "_at is not supported on history")
	}
	f, err := s.mayReadHistory(r, hq)
	if err != nil {
		return err
	}
	hq.Compartments, hq.Practices = f.Compartments, f.Practices
	if hq.Type == "" {
		if hq.ExceptTypes, err = s.deniedTypes(r); err != nil {
			return err
		}
	}
	page, err := s.store.History(r.Context(), hq)
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	b := bundle{ResourceType: "Bundle", Type: "history"}
	self := *r.URL
	b.Link = append(b.Link, link{Relation: "self", URL: base + pathAfterBase(&self)})
	if page.Next != "" {
		next := *r.URL
		nq := next.Query()
		nq.Set("_cursor", page.Next)
		next.RawQuery = nq.Encode()
		b.Link = append(b.Link, link{Relation: "next", URL: base + pathAfterBase(&next)})
	}
	for _, v := range page.Versions {
		b.Entry = append(b.Entry, historyEntry(base, v))
	}
	writeJSON(w, r, http.StatusOK, b)
	return nil
}

// mayReadHistory asks the guard about a history listing and returns the
// filter whose compartments and practices the listing takes: each version
// is listed when its own membership is within them (store.HistoryQuery).
// Instance history needs the resource in reach (see mayReadInstance).
// Type and system history are refused (403) to a token with granular
// scopes, which a history query cannot take; system history is decided as
// the wildcard type "*", which only scopes of every type reach.
func (s *server) mayReadHistory(r *http.Request, hq store.HistoryQuery) (authz.Filter, error) {
	if hq.ID != "" {
		return s.mayReadInstance(r, policy.HistoryInstance)
	}
	in, what := policy.HistoryType, hq.Type
	if hq.Type == "" {
		in, what = policy.HistorySystem, "the whole system"
	}
	typ := hq.Type
	if typ == "" {
		typ = "*"
	}
	f, err := s.decide(r, in, typ)
	if err != nil {
		return f, err
	}
	if len(f.Where) > 0 {
		return f, forbidden("history of %s is not served to tokens with granular scopes (with a ?query), which history cannot apply: search with _lastUpdated instead", what)
	}
	return f, nil
}

// deniedTypes lists the resource types whose history the token may not
// read although the wildcard decision of system history allows it (a
// policy rule denying one type, as AuditEvent to all but staff): system
// history leaves them out. Each type's filter is otherwise at least as
// wide as the wildcard's (the grants that reach "*" reach every type), so
// the wildcard filter shows nothing a type's own would not.
func (s *server) deniedTypes(r *http.Request) ([]string, error) {
	p := principal(r)
	var denied []string
	for _, t := range validate.ResourceTypes() {
		a, err := s.guard.Decide(p, policy.HistoryType, t)
		if err != nil {
			return nil, err
		}
		if !a.Allowed {
			denied = append(denied, t)
		}
	}
	return denied, nil
}

func historyEntry(base string, v store.Resource) entry {
	e := entry{FullURL: base + "/" + v.Type + "/" + v.ID}
	method, url, status := http.MethodPut, v.Type+"/"+v.ID, "200 OK"
	switch {
	case v.Deleted:
		method, status = http.MethodDelete, "204 No Content"
	case v.VersionID == 1:
		method, url, status = http.MethodPost, v.Type, "201 Created"
	}
	if !v.Deleted {
		e.Resource = json.RawMessage(v.Body)
	}
	e.Request = &entryRequest{Method: method, URL: url}
	e.Response = &entryResponse{Status: status, Etag: etag(v.VersionID), LastModified: resource.Instant(v.LastUpdated)}
	return e
}

// pathAfterBase is the part of a request URL after /fhir, with its query.
func pathAfterBase(u *url.URL) string {
	p := u.EscapedPath()
	if len(p) >= len("/fhir") && p[:len("/fhir")] == "/fhir" {
		p = p[len("/fhir"):]
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}

// parseInstant accepts a FHIR instant or dateTime with a time zone, or a
// date (taken as midnight UTC).
func parseInstant(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	_, err := time.Parse(time.RFC3339, s)
	return time.Time{}, err
}

// bundle, entry and their parts are the Bundle shapes this server writes.
type bundle struct {
	ResourceType string  `json:"resourceType"`
	ID           string  `json:"id,omitempty"`
	Type         string  `json:"type"`
	Total        *int    `json:"total,omitempty"`
	Link         []link  `json:"link,omitempty"`
	Entry        []entry `json:"entry,omitempty"`
}

type link struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type entry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

package fhir

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/google/uuid"
)

// checkType answers 404 for a path whose {type} is no R4 resource type, and
// 400 for an {id} that is not a valid logical id.
func (s *server) checkType(r *http.Request) error {
	typ := r.PathValue("type")
	if !validate.IsResourceType(typ) {
		return errorf(http.StatusNotFound, "not-supported", "unknown resource type %q", typ)
	}
	if id := r.PathValue("id"); id != "" && !resource.ValidID(id) {
		return errorf(http.StatusBadRequest, "value", "invalid id %q: ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'", id)
	}
	return nil
}

func (s *server) read(w http.ResponseWriter, r *http.Request) error {
	subset, err := search.ParseSubset(r.PathValue("type"), r.URL.Query())
	if err != nil {
		return err
	}
	typ, id := r.PathValue("type"), r.PathValue("id")
	f, err := s.decide(r, policy.Read, typ)
	if err != nil {
		return err
	}
	// Under a filter, what the token may not see is answered as what does
	// not exist; a deletion it could see as it last was is 410.
	res, err := s.reach(r, f, typ, id)
	if err != nil {
		return err
	}
	if res == nil {
		return errNotFound()
	}
	if res.Deleted {
		setVersionHeaders(w, *res)
		return errorf(http.StatusGone, "deleted", "%s/%s was deleted", res.Type, res.ID)
	}
	setVersionHeaders(w, *res)
	writeBody(w, r, http.StatusOK, subset.Apply(res.Type, res.Body))
	return nil
}

func (s *server) vread(w http.ResponseWriter, r *http.Request) error {
	v, err := strconv.ParseInt(r.PathValue("vid"), 10, 64)
	if err != nil || v < 1 {
		return errorf(http.StatusBadRequest, "value", "invalid version id %q", r.PathValue("vid"))
	}
	f, err := s.mayReadInstance(r, policy.VRead)
	if err != nil {
		return err
	}
	if f.Confines() {
		// Under a filter, the version itself must be within it (its own
		// membership, as history lists it): a version of the resource from
		// before it came within reach is as one that does not exist.
		in, err := s.versionInReach(r, f, r.PathValue("type"), r.PathValue("id"), v)
		if err != nil {
			return err
		}
		if !in {
			return errNotFound()
		}
	}
	res, err := s.store.VRead(r.Context(), r.PathValue("type"), r.PathValue("id"), v)
	if errors.Is(err, store.ErrGone) {
		setVersionHeaders(w, res)
		return errorf(http.StatusGone, "deleted", "version %d of %s/%s is a deletion", v, res.Type, res.ID)
	}
	if err != nil {
		return err
	}
	setVersionHeaders(w, res)
	writeBody(w, r, http.StatusOK, res.Body)
	return nil
}

func (s *server) create(w http.ResponseWriter, r *http.Request) error {
	typ := r.PathValue("type")
	f, err := s.decide(r, policy.Create, typ)
	if err != nil {
		return err
	}
	if cond := r.Header.Get("If-None-Exist"); cond != "" {
		params, err := conditionParams("If-None-Exist", cond)
		if err != nil {
			return err
		}
		existing, err := s.resolveCondition(r, f, s.baseURL(r), typ, "If-None-Exist", params)
		if err != nil {
			return err
		}
		if existing != nil {
			// A match exists: the create is not performed (FHIR R4 http.html#ccreate).
			setVersionHeaders(w, *existing)
			w.Header().Set("Location", s.baseURL(r)+"/"+existing.Type+"/"+existing.ID+"/_history/"+strconv.FormatInt(existing.VersionID, 10))
			writeBody(w, r, http.StatusOK, existing.Body)
			return nil
		}
	}
	obj, err := s.readResourceBody(w, r)
	if err != nil {
		return err
	}
	if err := checkResourceType(obj, typ); err != nil {
		return err
	}
	// The server assigns the id of a created resource; a client-sent id is ignored.
	wr, issues := resource.Prepare(store.OpCreate, typ, uuid.NewString(), obj, s.baseURL(r))
	if issues != nil {
		return invalid(issues)
	}
	if err := s.guardWrite(r, f, &wr); err != nil {
		return err
	}
	return s.applyOne(w, r, wr)
}

// putRequest reads what an update carries: its If-Match version (0 for
// none) and a resource of typ.
func (s *server) putRequest(w http.ResponseWriter, r *http.Request, typ string) (*fhirjson.Object, int64, error) {
	ifMatch, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return nil, 0, err
	}
	obj, err := s.readResourceBody(w, r)
	if err != nil {
		return nil, 0, err
	}
	return obj, ifMatch, checkResourceType(obj, typ)
}

func (s *server) update(w http.ResponseWriter, r *http.Request) error {
	typ, id := r.PathValue("type"), r.PathValue("id")
	f, err := s.decide(r, policy.Update, typ)
	if err != nil {
		return err
	}
	obj, ifMatch, err := s.putRequest(w, r, typ)
	if err != nil {
		return err
	}
	switch bodyID, _ := obj.Get("id"); bodyID {
	case nil:
		return errorf(http.StatusBadRequest, "required", "the resource must have an id equal to the one in the URL (%s)", id)
	case id:
	default:
		return errorf(http.StatusBadRequest, "invalid", "the resource id %v does not match the id in the URL (%s)", bodyID, id)
	}
	wr, issues := resource.Prepare(store.OpUpdate, typ, id, obj, s.baseURL(r))
	if issues != nil {
		return invalid(issues)
	}
	wr.IfMatch = ifMatch
	if err := s.guardWrite(r, f, &wr); err != nil {
		return err
	}
	return s.applyOne(w, r, wr)
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) error {
	ifMatch, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return err
	}
	f, err := s.decide(r, policy.Delete, r.PathValue("type"))
	if err != nil {
		return err
	}
	return s.deleteOne(w, r, f, r.PathValue("type"), r.PathValue("id"), ifMatch)
}

// deleteOne deletes one resource, visible under f, and answers as Prefer
// asks.
func (s *server) deleteOne(w http.ResponseWriter, r *http.Request, f authz.Filter, typ, id string, ifMatch int64) error {
	wr := store.Write{Op: store.OpDelete, Type: typ, ID: id, IfMatch: ifMatch}
	if err := s.guardWrite(r, f, &wr); err != nil {
		return err
	}
	results, err := s.store.Apply(r.Context(), []store.Write{wr})
	if err != nil {
		return err
	}
	res := results[0].Resource
	w.Header().Set("ETag", etag(res.VersionID))
	if preferReturn(r) == "OperationOutcome" {
		writeJSON(w, r, http.StatusOK, informational("deleted %s/%s", res.Type, res.ID))
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mayReadInstance asks for in (vread, instance history) on the request's
// resource: under a filter, it must be in reach (see reach: its current
// version visible, or deleted with its last live version within the
// filter), else 404 as for a resource that does not exist. It returns the
// decision's filter.
func (s *server) mayReadInstance(r *http.Request, in policy.Interaction) (authz.Filter, error) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	f, err := s.decide(r, in, typ)
	if err != nil || !f.Confines() {
		return f, err
	}
	found, err := s.reach(r, f, typ, id)
	if err != nil {
		return f, err
	}
	if found == nil {
		return f, errNotFound()
	}
	return f, nil
}

// versionInReach reports whether version v of typ/id is listed by its
// instance history under f's compartments and practices.
func (s *server) versionInReach(r *http.Request, f authz.Filter, typ, id string, v int64) (bool, error) {
	hq := store.HistoryQuery{Type: typ, ID: id, Compartments: f.Compartments, Practices: f.Practices, Count: store.MaxPageSize}
	for {
		page, err := s.store.History(r.Context(), hq)
		if err != nil {
			return false, err
		}
		for _, got := range page.Versions {
			if got.VersionID == v {
				return true, nil
			}
		}
		if page.Next == "" || len(page.Versions) == 0 || page.Versions[len(page.Versions)-1].VersionID < v {
			return false, nil
		}
		hq.Cursor = page.Next
	}
}

// applyOne stores one create or update and answers as Prefer asks.
func (s *server) applyOne(w http.ResponseWriter, r *http.Request, wr store.Write) error {
	results, err := s.store.Apply(r.Context(), []store.Write{wr})
	if err != nil {
		return err
	}
	res := results[0]
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	setVersionHeaders(w, res.Resource)
	w.Header().Set("Location", s.baseURL(r)+"/"+res.Type+"/"+res.ID+"/_history/"+strconv.FormatInt(res.VersionID, 10))
	switch preferReturn(r) {
	case "minimal":
		w.WriteHeader(status)
	case "OperationOutcome":
		writeJSON(w, r, status, informational("%s %s/%s version %d", verb(res), res.Type, res.ID, res.VersionID))
	default:
		writeBody(w, r, status, res.Body)
	}
	return nil
}

func verb(res store.Result) string {
	switch {
	case res.Unchanged:
		return "unchanged"
	case res.Created:
		return "created"
	}
	return "updated"
}

// checkResourceType answers 400 when the body's resourceType disagrees with
// the URL.
func checkResourceType(obj *fhirjson.Object, typ string) error {
	got, _ := obj.Get("resourceType")
	if got != typ {
		if got == nil {
			return errorf(http.StatusBadRequest, "required", "resourceType is missing: expected %q", typ)
		}
		return errorf(http.StatusBadRequest, "invalid", "resourceType %v does not match the URL's resource type %q", got, typ)
	}
	return nil
}

// parseIfMatch reads an If-Match header, W/"3" or "3"; 0 when absent.
func parseIfMatch(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	v, ok := parseETag(h)
	if !ok {
		return 0, errorf(http.StatusBadRequest, "value", "invalid If-Match %q: expected W/\"<versionId>\"", h)
	}
	return v, nil
}

func parseETag(h string) (int64, bool) {
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(h, "W/")
	h = strings.TrimSuffix(strings.TrimPrefix(h, `"`), `"`)
	v, err := strconv.ParseInt(h, 10, 64)
	return v, err == nil && v > 0
}

func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

func setVersionHeaders(w http.ResponseWriter, res store.Resource) {
	if res.VersionID == 0 {
		return
	}
	w.Header().Set("ETag", etag(res.VersionID))
	w.Header().Set("Last-Modified", res.LastUpdated.UTC().Format(http.TimeFormat))
}

// preferReturn is the return= preference of the Prefer header.
func preferReturn(r *http.Request) string {
	if v := prefer(r, "return"); v != "" {
		return v
	}
	return "representation"
}

// prefer returns the value of one preference of the Prefer header
// (RFC 7240), "" when absent.
func prefer(r *http.Request, name string) string {
	for _, h := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(h, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), name+"="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

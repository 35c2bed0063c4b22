package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/google/uuid"
)

// bundleEntry is one entry of a transaction or batch, parsed.
type bundleEntry struct {
	index   int
	method  string
	typ, id string
	version int64 // GET …/_history/{vid}
	ifMatch int64
	fullURL string
	// condition is the search of a conditional create (ifNoneExist),
	// update or delete (request.url Type?search); resolve settles the
	// entry from it before anything is written.
	condition url.Values
	create    bool // a conditional update that matched nothing
	res       *fhirjson.Object
	write     store.Write
	// skip marks an entry with nothing to write: a delete of a resource
	// that does not exist or that no condition matches, a conditional
	// create that found its resource.
	skip bool
	resp entry
	// filter is what the token's decision for the entry's interaction
	// confines it to (see authorize).
	filter authz.Filter
}

// processing order of a transaction, after FHIR R4 http.html#trules.
var methodOrder = map[string]int{http.MethodDelete: 0, http.MethodPost: 1, http.MethodPut: 2, http.MethodGet: 3, http.MethodHead: 3}

// systemBundle serves POST /fhir: transaction and batch Bundles.
func (s *server) systemBundle(w http.ResponseWriter, r *http.Request) error {
	obj, err := s.readResourceBody(w, r)
	if err != nil {
		return err
	}
	if err := checkResourceType(obj, "Bundle"); err != nil {
		return err
	}
	kind := obj.String("type")
	if kind != "transaction" && kind != "batch" {
		return errorf(http.StatusBadRequest, "invalid", "POST to the FHIR base takes a Bundle of type transaction or batch, not %q", kind)
	}
	raw, _ := obj.Get("entry")
	list, ok := raw.([]any)
	if raw != nil && !ok {
		return errorf(http.StatusBadRequest, "structure", "Bundle.entry must be an array")
	}
	entries := make([]*bundleEntry, len(list))
	var parseErrs []Issue
	for i, item := range list {
		e, err := parseEntry(i, item)
		entries[i] = e
		if err != nil {
			if kind == "transaction" {
				parseErrs = append(parseErrs, err.Issues...)
				continue
			}
			e.resp = errorEntry(err)
		}
	}
	if len(parseErrs) > 0 {
		return &Error{Status: http.StatusBadRequest, Issues: parseErrs}
	}
	// Each entry is decided on its own; a transaction with any entry the
	// token may not do fails as a whole, a batch answers that entry 403.
	var denied []Issue
	for _, e := range entries {
		if e.resp.Response != nil {
			continue
		}
		if err := s.authorize(r, e); err != nil {
			if kind == "transaction" {
				denied = append(denied, err.Issues...)
				continue
			}
			e.resp = errorEntry(err)
		}
	}
	if len(denied) > 0 {
		return &Error{Status: http.StatusForbidden, Issues: denied}
	}
	var out bundle
	if kind == "transaction" {
		if err := s.transaction(r, entries); err != nil {
			return err
		}
		out = bundle{ResourceType: "Bundle", Type: "transaction-response"}
	} else {
		s.batch(r, entries)
		out = bundle{ResourceType: "Bundle", Type: "batch-response"}
	}
	out.ID = uuid.NewString()
	for _, e := range entries {
		out.Entry = append(out.Entry, e.resp)
	}
	writeJSON(w, r, http.StatusOK, out)
	return nil
}

// parseEntry reads one entry's request and resource. The returned entry is
// never nil so a batch can answer for it.
func parseEntry(i int, item any) (*bundleEntry, *Error) {
	e := &bundleEntry{index: i}
	at := fmt.Sprintf("Bundle.entry[%d]", i)
	fail := func(code, path, format string, args ...any) *Error {
		fe := errorf(http.StatusBadRequest, code, format, args...)
		fe.Issues[0].Expression = []string{at + path}
		return fe
	}
	obj, ok := item.(*fhirjson.Object)
	if !ok {
		return e, fail("structure", "", "entry must be an object")
	}
	e.fullURL = obj.String("fullUrl")
	req := obj.Object("request")
	if req == nil {
		return e, fail("required", ".request", "entry.request is required in a transaction or batch")
	}
	e.method = strings.ToUpper(req.String("method"))
	if _, ok := methodOrder[e.method]; !ok {
		return e, fail("not-supported", ".request.method", "request method %q is not supported (GET, HEAD, POST, PUT, DELETE)", req.String("method"))
	}
	target, err := url.Parse(req.String("url"))
	if err != nil || req.String("url") == "" {
		return e, fail("required", ".request.url", "entry.request.url is missing or not a URL")
	}
	parts := strings.Split(strings.Trim(target.Path, "/"), "/")
	if target.RawQuery != "" {
		if (e.method != http.MethodPut && e.method != http.MethodDelete) || len(parts) != 1 {
			return e, fail("not-supported", ".request.url", "searches (%q) are not supported in a Bundle; conditional update and delete are (PUT or DELETE Type?search)", req.String("url"))
		}
		cond, err := conditionParams(at+".request.url", target.RawQuery)
		if err != nil {
			fe := asError(err)
			fe.Issues[0].Expression = []string{at + ".request.url"}
			return e, fe
		}
		e.condition = cond
	}
	e.typ = parts[0]
	if !validate.IsResourceType(e.typ) {
		return e, fail("not-supported", ".request.url", "unknown resource type %q in request.url", e.typ)
	}
	wantParts := map[string][]int{http.MethodPost: {1}, http.MethodPut: {2}, http.MethodDelete: {2}, http.MethodGet: {2, 4}, http.MethodHead: {2, 4}}[e.method]
	if e.condition != nil {
		wantParts = []int{1}
	}
	if !slices.Contains(wantParts, len(parts)) || (len(parts) == 4 && parts[2] != "_history") {
		return e, fail("not-supported", ".request.url", "request.url %q does not fit %s", req.String("url"), e.method)
	}
	if len(parts) >= 2 {
		e.id = parts[1]
		if !resource.ValidID(e.id) {
			return e, fail("value", ".request.url", "invalid id %q", e.id)
		}
	}
	if len(parts) == 4 {
		v, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || v < 1 {
			return e, fail("value", ".request.url", "invalid version id %q", parts[3])
		}
		e.version = v
	}
	if cond := req.String("ifNoneExist"); cond != "" {
		if e.method != http.MethodPost {
			return e, fail("not-supported", ".request.ifNoneExist", "ifNoneExist belongs to a POST (conditional create)")
		}
		params, err := conditionParams(at+".request.ifNoneExist", cond)
		if err != nil {
			fe := asError(err)
			fe.Issues[0].Expression = []string{at + ".request.ifNoneExist"}
			return e, fe
		}
		e.condition = params
	}
	if im := req.String("ifMatch"); im != "" {
		v, ok := parseETag(im)
		if !ok {
			return e, fail("value", ".request.ifMatch", "invalid ifMatch %q", im)
		}
		e.ifMatch = v
	}
	if e.method == http.MethodPost || e.method == http.MethodPut {
		e.res = obj.Object("resource")
		if e.res == nil {
			return e, fail("required", ".resource", "%s needs a resource", e.method)
		}
		if rt := e.res.String("resourceType"); rt != e.typ {
			return e, fail("invalid", ".resource.resourceType", "resourceType %q does not match request.url %q", rt, req.String("url"))
		}
		if e.method == http.MethodPut && e.condition != nil {
			id, err := resourceID(e.res.Get("id"))
			if err != nil {
				fe := asError(err)
				fe.Issues[0].Expression = []string{at + ".resource.id"}
				return e, fe
			}
			e.id = id
		} else if e.method == http.MethodPut {
			if id := e.res.String("id"); id != e.id {
				return e, fail("invalid", ".resource.id", "resource id %q does not match request.url %q", id, req.String("url"))
			}
		}
	}
	return e, nil
}

// entryInteractions are the interactions of a Bundle entry's methods.
var entryInteractions = map[string]policy.Interaction{
	http.MethodGet: policy.Read, http.MethodHead: policy.Read, http.MethodPost: policy.Create,
	http.MethodPut: policy.Update, http.MethodDelete: policy.Delete,
}

// authorize asks the guard about one entry and keeps its filter.
func (s *server) authorize(r *http.Request, e *bundleEntry) *Error {
	in := entryInteractions[e.method]
	if in == policy.Read && e.version > 0 {
		in = policy.VRead
	}
	f, err := s.decide(r, in, e.typ)
	if err != nil {
		fe := asError(err)
		for i := range fe.Issues {
			fe.Issues[i].Expression = []string{fmt.Sprintf("Bundle.entry[%d]", e.index)}
		}
		return fe
	}
	e.filter = f
	return nil
}

// guardEntry runs guardWrite on an entry's write, naming the entry in the
// error.
func (s *server) guardEntry(r *http.Request, e *bundleEntry, wr *store.Write) *Error {
	if err := s.guardWrite(r, e.filter, wr); err != nil {
		fe := asError(err)
		for i := range fe.Issues {
			fe.Issues[i].Expression = []string{fmt.Sprintf("Bundle.entry[%d]", e.index)}
		}
		return fe
	}
	return nil
}

// prepare validates a POST or PUT entry's resource into its write; base is
// the server's FHIR base URL.
func (e *bundleEntry) prepare(base string) (store.Write, []validate.Issue) {
	op := store.OpUpdate
	if e.method == http.MethodPost || e.create {
		op = store.OpCreate
	}
	wr, problems := resource.Prepare(op, e.typ, e.id, e.res, base)
	wr.IfMatch = e.ifMatch
	return wr, problems
}

// resolve turns a conditional entry into a plain one: its id, whether it
// creates, and the version it expects (see conditionalTarget). A
// conditional create that matches, and a conditional delete that matches
// nothing, are answered here and skipped.
func (s *server) resolve(r *http.Request, e *bundleEntry) *Error {
	if e.condition == nil {
		return nil
	}
	where := fmt.Sprintf("Bundle.entry[%d].request.url", e.index)
	if e.method == http.MethodPost {
		where = fmt.Sprintf("Bundle.entry[%d].request.ifNoneExist", e.index)
	}
	fail := func(err error) *Error {
		fe := asError(err)
		for i := range fe.Issues {
			fe.Issues[i].Expression = []string{where}
		}
		return fe
	}
	match, err := s.resolveCondition(r, e.filter, s.baseURL(r), e.typ, where, e.condition)
	if err != nil {
		return fail(err)
	}
	switch e.method {
	case http.MethodPost:
		if match != nil {
			// The create is not performed (FHIR R4 http.html#ccreate).
			e.skip, e.id = true, match.ID
			e.resp = writeEntry(s.baseURL(r), r, e.method, store.Result{Resource: *match})
		}
	case http.MethodDelete:
		if match == nil {
			e.skip = true
			oo, _ := json.Marshal(outcome([]Issue{{Severity: "warning", Code: "not-found", Diagnostics: fmt.Sprintf("no %s matches the condition: nothing was deleted", e.typ)}}))
			e.resp = entry{Response: &entryResponse{Status: "200 OK", Outcome: oo}}
			return nil
		}
		e.id = match.ID
		if e.ifMatch == 0 {
			e.ifMatch = match.VersionID
		}
	case http.MethodPut:
		target, err := conditionalTarget(match, e.id, e.ifMatch)
		if err != nil {
			return fail(err)
		}
		e.id, e.ifMatch, e.create = target.ID, target.IfMatch, target.Op == store.OpCreate
	}
	return nil
}

// transaction runs entries all-or-nothing: every entry is checked and
// prepared before anything is written, and all writes go to the store in one
// atomic Apply.
func (s *server) transaction(r *http.Request, entries []*bundleEntry) error {
	base := s.baseURL(r)
	refs := map[string]string{} // fullUrl → "Type/id" for reference rewriting
	seen := map[string]int{}
	for _, e := range entries {
		if err := s.resolve(r, e); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if e.method == http.MethodPost && !e.skip {
			e.id = uuid.NewString()
		}
		key := e.typ + "/" + e.id
		// A conditional create that found its resource writes nothing, but
		// references to its fullUrl still go to what it found.
		if e.method != http.MethodGet && e.method != http.MethodHead && !e.skip {
			if prev, dup := seen[key]; dup {
				return errorf(http.StatusBadRequest, "invalid", "entries %d and %d both change %s: a transaction may change a resource only once", prev, e.index, key)
			}
			seen[key] = e.index
		}
		if e.fullURL != "" && e.res != nil && e.id != "" {
			refs[e.fullURL] = key
		}
	}
	var issues []Issue
	for _, e := range entries {
		if e.res == nil || e.skip {
			continue
		}
		if bad := resource.RewriteReferences(e.res, refs); bad != "" {
			issues = append(issues, Issue{Severity: "error", Code: "invalid", Expression: []string{fmt.Sprintf("Bundle.entry[%d].resource", e.index)},
				Diagnostics: fmt.Sprintf("reference %q points to no entry of this transaction", bad)})
			continue
		}
		wr, problems := e.prepare(base)
		for _, p := range problems {
			issues = append(issues, Issue{Severity: "error", Code: p.Code, Diagnostics: p.Message, Expression: []string{fmt.Sprintf("Bundle.entry[%d].resource.%s", e.index, strings.TrimPrefix(p.Path, e.typ+"."))}})
		}
		e.write = wr
	}
	if len(issues) > 0 {
		return &Error{Status: http.StatusUnprocessableEntity, Issues: issues}
	}
	for _, e := range entries {
		if e.res == nil || e.skip {
			continue
		}
		if fe := s.guardEntry(r, e, &e.write); fe != nil {
			return fe
		}
	}
	order := make([]*bundleEntry, len(entries))
	copy(order, entries)
	slices.SortStableFunc(order, byMethodOrder)
	var writes []store.Write
	var writers []*bundleEntry
	for _, e := range order {
		if e.skip {
			continue
		}
		switch e.method {
		case http.MethodDelete:
			// A resource the token may not see is deleted as one that does
			// not exist: not at all.
			gone := false
			if e.filter.Confines() {
				found, err := s.visible(r.Context(), e.filter, e.typ, e.id)
				if err != nil {
					return err
				}
				gone = found == nil
			} else if _, err := s.store.Read(r.Context(), e.typ, e.id); errors.Is(err, store.ErrNotFound) {
				gone = true
			}
			if gone {
				e.skip = true
				e.resp = entry{Response: &entryResponse{Status: "204 No Content"}}
				continue
			}
			e.write = store.Write{Op: store.OpDelete, Type: e.typ, ID: e.id, IfMatch: e.ifMatch}
			if fe := s.guardEntry(r, e, &e.write); fe != nil {
				return fe
			}
		case http.MethodGet, http.MethodHead:
			continue
		}
		writes = append(writes, e.write)
		writers = append(writers, e)
	}
	results, err := s.store.Apply(r.Context(), writes)
	if err != nil {
		var we *store.WriteError
		if errors.As(err, &we) && we.Index < len(writers) {
			fe := asError(we.Err)
			for i := range fe.Issues {
				fe.Issues[i].Expression = []string{fmt.Sprintf("Bundle.entry[%d]", writers[we.Index].index)}
			}
			return fe
		}
		return err
	}
	for i, e := range writers {
		e.resp = writeEntry(base, r, e.method, results[i])
	}
	for _, e := range order {
		if e.method == http.MethodGet || e.method == http.MethodHead {
			e.resp = s.readEntry(r, e)
		}
	}
	return nil
}

// batch runs each entry on its own; a failing entry answers with its
// OperationOutcome and the others go on.
func (s *server) batch(r *http.Request, entries []*bundleEntry) {
	base := s.baseURL(r)
	order := make([]*bundleEntry, len(entries))
	copy(order, entries)
	slices.SortStableFunc(order, byMethodOrder)
	for _, e := range order {
		if e.resp.Response != nil { // failed to parse
			continue
		}
		if err := s.resolve(r, e); err != nil {
			e.resp = errorEntry(err)
			continue
		}
		if e.skip {
			continue
		}
		var wr store.Write
		switch e.method {
		case http.MethodGet, http.MethodHead:
			e.resp = s.readEntry(r, e)
			continue
		case http.MethodDelete:
			wr = store.Write{Op: store.OpDelete, Type: e.typ, ID: e.id, IfMatch: e.ifMatch}
		default:
			if e.method == http.MethodPost {
				e.id = uuid.NewString()
			}
			var problems []validate.Issue
			if wr, problems = e.prepare(base); problems != nil {
				e.resp = errorEntry(invalid(problems))
				continue
			}
		}
		if fe := s.guardEntry(r, e, &wr); fe != nil {
			e.resp = errorEntry(fe)
			continue
		}
		results, err := s.store.Apply(r.Context(), []store.Write{wr})
		if err != nil {
			e.resp = errorEntry(asError(err))
			continue
		}
		e.resp = writeEntry(base, r, e.method, results[0])
	}
}

// readEntry answers a GET entry with the resource or an error.
func (s *server) readEntry(r *http.Request, e *bundleEntry) entry {
	var res store.Resource
	var err error
	switch {
	case e.filter.Confines():
		var found *store.Resource
		found, err = s.reach(r, e.filter, e.typ, e.id)
		switch {
		case err != nil:
		case found == nil:
			return errorEntry(errNotFound())
		case e.version > 0:
			// As a REST vread: the version itself must be within the filter.
			var in bool
			if in, err = s.versionInReach(r, e.filter, e.typ, e.id, e.version); err == nil && !in {
				return errorEntry(errNotFound())
			}
			if err == nil {
				res, err = s.store.VRead(r.Context(), e.typ, e.id, e.version)
			}
		case found.Deleted:
			res, err = *found, fmt.Errorf("%w: %s/%s", store.ErrGone, e.typ, e.id)
		default:
			res = *found
		}
	case e.version > 0:
		res, err = s.store.VRead(r.Context(), e.typ, e.id, e.version)
	default:
		res, err = s.store.Read(r.Context(), e.typ, e.id)
	}
	if err != nil {
		return errorEntry(asError(err))
	}
	out := entry{FullURL: s.baseURL(r) + "/" + res.Type + "/" + res.ID, Response: &entryResponse{Status: "200 OK", Etag: etag(res.VersionID), LastModified: resource.Instant(res.LastUpdated)}}
	if e.method == http.MethodGet {
		out.Resource = json.RawMessage(res.Body)
	}
	return out
}

// writeEntry is the response entry for a stored write.
func writeEntry(base string, r *http.Request, method string, res store.Result) entry {
	if method == http.MethodDelete {
		return entry{Response: &entryResponse{Status: "204 No Content", Etag: etag(res.VersionID)}}
	}
	status := "200 OK"
	if res.Created {
		status = "201 Created"
	}
	out := entry{
		FullURL: base + "/" + res.Type + "/" + res.ID,
		Response: &entryResponse{Status: status, Location: res.Type + "/" + res.ID + "/_history/" + strconv.FormatInt(res.VersionID, 10),
			Etag: etag(res.VersionID), LastModified: resource.Instant(res.LastUpdated)},
	}
	switch preferReturn(r) {
	case "minimal":
	case "OperationOutcome":
		oo, _ := json.Marshal(informational("%s %s/%s", verb(res), res.Type, res.ID))
		out.Response.Outcome = oo
	default:
		out.Resource = json.RawMessage(res.Body)
	}
	return out
}

func errorEntry(fe *Error) entry {
	oo, _ := json.Marshal(outcome(fe.Issues))
	return entry{Response: &entryResponse{Status: fmt.Sprintf("%d %s", fe.Status, http.StatusText(fe.Status)), Outcome: oo}}
}

func byMethodOrder(a, b *bundleEntry) int { return methodOrder[a.method] - methodOrder[b.method] }

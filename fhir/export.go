package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/fhir/bulk"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// Bulk Data Access 2.0.0 $export (hl7.org/fhir/uv/bulkdata/STU2/export.html):
// the kick-off endpoints (this file), the status endpoint and the output
// files (export_status.go). Package bulk runs the jobs.
//
// The status and file endpoints take the job (and file) as query
// parameters, $export-poll-status?_jobId=… and $export-file?_jobId=…&file=…:
// a path pattern with a job segment, /fhir/$export-status/{job}, would
// overlap the REST patterns /fhir/{type}/_search and /fhir/{type}/_history
// without either being more specific, which net/http refuses.

// exportParams are the kick-off parameters this server knows.
var exportParams = []string{"_outputFormat", "_since", "_type", "_typeFilter", "_elements", "patient", "includeAssociatedData"}

// ndjsonFormats are the _outputFormat values of NDJSON.
var ndjsonFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// kickoff serves GET and POST /fhir/$export, /fhir/Patient/$export and
// /fhir/Group/{id}/$export.
func (s *server) kickoff(level string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.bulk == nil {
			return errorf(http.StatusNotImplemented, "not-supported", "bulk export is not enabled on this server")
		}
		if !preferAsync(r) {
			return errorf(http.StatusBadRequest, "invalid", "$export is asynchronous: send Prefer: respond-async")
		}
		if !acceptsFHIRJSON(r) {
			return errorf(http.StatusBadRequest, "invalid", "$export answers application/fhir+json: send Accept: application/fhir+json")
		}
		params, err := s.exportParams(w, r)
		if err != nil {
			return err
		}
		p := principal(r)
		spec, notes, err := s.exportSpec(r, p, level, params)
		if err != nil {
			return err
		}
		request := s.baseURL(r) + strings.TrimPrefix(r.URL.Path, "/fhir")
		if r.URL.RawQuery != "" {
			request += "?" + r.URL.RawQuery
		}
		job, err := s.bulk.svc.Submit(r.Context(), p.Claims, *spec, request, notes)
		if errors.Is(err, bulk.ErrTooMany) {
			w.Header().Set("Retry-After", retryAfter(s.bulk.svc.RetryAfter()*5))
			return errorf(http.StatusTooManyRequests, "throttled", "%v: wait for one to finish, or cancel one (DELETE its status URL)", err)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Content-Location", s.statusURL(r, job.ID))
		issues := []Issue{{Severity: "information", Code: "informational", Diagnostics: "export job " + job.ID + " accepted: poll the Content-Location URL"}}
		for _, n := range notes {
			issues = append(issues, Issue{Severity: "warning", Code: "not-supported", Diagnostics: n})
		}
		writeJSON(w, r, http.StatusAccepted, outcome(issues))
		return nil
	}
}

// preferAsync reports Prefer: respond-async.
func preferAsync(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(h, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
				return true
			}
		}
	}
	return false
}

// acceptsFHIRJSON reports whether Accept allows the kick-off's
// application/fhir+json answer. Bulk Data 2.0.0 lets a server treat a
// missing Accept as application/fhir+json, which this one does.
func acceptsFHIRJSON(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || params["q"] == "0" || params["q"] == "0.0" {
				continue
			}
			switch strings.ToLower(mt) {
			case fhirJSON, plainJSON, "*/*", "application/*":
				return true
			}
		}
	}
	return false
}

func retryAfter(d time.Duration) string {
	return fmt.Sprint(max(int((d+time.Second-1)/time.Second), 1))
}

// exportParams reads the kick-off parameters: the query string, and for a
// POST the Parameters resource of the body.
func (s *server) exportParams(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	params := r.URL.Query()
	if r.Method != http.MethodPost {
		return params, nil
	}
	obj, err := s.readResourceBody(w, r)
	if err != nil {
		return nil, err
	}
	var body struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string                      `json:"name"`
			ValueString    *string                     `json:"valueString"`
			ValueInstant   *string                     `json:"valueInstant"`
			ValueDateTime  *string                     `json:"valueDateTime"`
			ValueCode      *string                     `json:"valueCode"`
			ValueURI       *string                     `json:"valueUri"`
			ValueCanonical *string                     `json:"valueCanonical"`
			ValueBoolean   *bool                       `json:"valueBoolean"`
			ValueReference *struct{ Reference string } `json:"valueReference"`
		} `json:"parameter"`
	}
	raw, _ := json.Marshal(obj)
	if err := json.Unmarshal(raw, &body); err != nil || body.ResourceType != "Parameters" {
		return nil, errorf(http.StatusBadRequest, "structure", "a POST $export takes a Parameters resource")
	}
	for _, p := range body.Parameter {
		var v string
		switch {
		case p.ValueString != nil:
			v = *p.ValueString
		case p.ValueInstant != nil:
			v = *p.ValueInstant
		case p.ValueDateTime != nil:
			v = *p.ValueDateTime
		case p.ValueCode != nil:
			v = *p.ValueCode
		case p.ValueURI != nil:
			v = *p.ValueURI
		case p.ValueCanonical != nil:
			v = *p.ValueCanonical
		case p.ValueBoolean != nil:
			v = fmt.Sprint(*p.ValueBoolean)
		case p.ValueReference != nil:
			// An empty value would drop out of the list it belongs to
			// (patient: every patient instead of the one meant).
			if v = p.ValueReference.Reference; strings.TrimSpace(v) == "" {
				return nil, errorf(http.StatusBadRequest, "structure", "Parameters.parameter %q has a valueReference without a reference", p.Name)
			}
		default:
			return nil, errorf(http.StatusBadRequest, "structure", "Parameters.parameter %q has no value this operation reads", p.Name)
		}
		params.Add(p.Name, v)
	}
	return params, nil
}

// typeFilterStart finds where the next of several comma-separated
// _typeFilter queries starts: a comma followed by "ResourceType?".
var typeFilterStart = regexp.MustCompile(`,([A-Z][A-Za-z]+)\?`)

func splitTypeFilters(v string) []string {
	var out []string
	for {
		loc := typeFilterStart.FindStringSubmatchIndex(v)
		if loc == nil || !validate.IsResourceType(v[loc[2]:loc[3]]) {
			return append(out, v)
		}
		out = append(out, v[:loc[0]])
		v = v[loc[0]+1:]
	}
}

// maxListValues bounds the distinct values of one list parameter
// (_type, _elements, _outputFormat) and the _typeFilter queries of a
// kick-off: far more than a client needs (there are fewer resource types),
// few enough that checking them, and the job that stores them, stay small.
const maxListValues = 1000

// splitList splits the comma lists of param, trimmed, without repeats; more
// than maxListValues distinct values are a 400.
func splitList(param string, vs []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x == "" || seen[x] {
				continue
			}
			if len(out) == maxListValues {
				return nil, errorf(http.StatusBadRequest, "too-costly", "%s lists more than %d values", param, maxListValues)
			}
			seen[x] = true
			out = append(out, x)
		}
	}
	return out, nil
}

// exportSpec checks the kick-off parameters and decides what the token
// may export. Unknown and unsupported parameters are 400 unless the client
// sent Prefer: handling=lenient: they are then ignored, and named in the
// kick-off's OperationOutcome (and in the manifest's error file), which is
// what notes returns.
func (s *server) exportSpec(r *http.Request, p *authz.Principal, level string, params url.Values) (*bulk.Spec, []string, error) {
	lenient := prefer(r, "handling") == "lenient"
	var notes []string
	unsupported := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if lenient {
			notes = append(notes, msg+" (ignored: Prefer: handling=lenient)")
			return nil
		}
		return errorf(http.StatusBadRequest, "not-supported", "%s", msg)
	}
	for k := range params {
		if !slices.Contains(exportParams, k) {
			if err := unsupported("unknown $export parameter %q", k); err != nil {
				return nil, nil, err
			}
		}
	}
	if vs := params["includeAssociatedData"]; len(vs) > 0 {
		if err := unsupported("includeAssociatedData is not supported"); err != nil {
			return nil, nil, err
		}
	}
	formats, err := splitList("_outputFormat", params["_outputFormat"])
	if err != nil {
		return nil, nil, err
	}
	for _, f := range formats {
		if !slices.Contains(ndjsonFormats, f) {
			if err := unsupported("_outputFormat %q is not supported: this server writes application/fhir+ndjson", f); err != nil {
				return nil, nil, err
			}
		}
	}
	spec := &bulk.Spec{Level: level, Base: s.baseURL(r)}
	if vs := params["_since"]; len(vs) > 0 {
		if len(vs) > 1 {
			return nil, nil, errorf(http.StatusBadRequest, "invalid", "give _since once")
		}
		t, err := time.Parse(time.RFC3339Nano, vs[0])
		if err != nil {
			return nil, nil, errorf(http.StatusBadRequest, "invalid", "_since %q is not a FHIR instant (e.g. 2024-01-02T03:04:05Z)", vs[0])
		}
		spec.Since = bulk.FormatInstant(t)
	}
	types, err := splitList("_type", params["_type"])
	if err != nil {
		return nil, nil, err
	}
	if err := s.exportTypes(p, spec, types, unsupported); err != nil {
		return nil, nil, err
	}
	filters := 0
	for _, v := range params["_typeFilter"] {
		for _, tf := range splitTypeFilters(v) {
			if filters++; filters > maxListValues {
				return nil, nil, errorf(http.StatusBadRequest, "too-costly", "_typeFilter lists more than %d queries", maxListValues)
			}
			typ, q, err := bulk.ParseTypeFilter(tf)
			if err != nil {
				return nil, nil, err
			}
			if spec.TypeFilters == nil {
				spec.TypeFilters = map[string][]string{}
			}
			spec.TypeFilters[typ] = append(spec.TypeFilters[typ], q)
		}
	}
	for typ := range spec.TypeFilters {
		if !slices.Contains(spec.Types, typ) {
			if _, err := s.decide(r, policy.SearchType, typ); err != nil {
				return nil, nil, err
			}
		}
		where, err := spec.CheckFilters(typ)
		if err != nil && lenient && slices.Contains(spec.Types, typ) {
			// Bulk Data 2.0.0: a lenient kick-off exports the type
			// unfiltered rather than fail.
			notes = append(notes, fmt.Sprintf("%v: %s exported without _typeFilter (Prefer: handling=lenient)", err, typ))
			delete(spec.TypeFilters, typ)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		// A chain may not reach through a type the token may not search.
		if err := s.scopeNested(r, where); err != nil {
			return nil, nil, err
		}
	}
	if spec.Elements, err = splitList("_elements", params["_elements"]); err != nil {
		return nil, nil, err
	}
	if err := spec.CheckElements(); err != nil {
		return nil, nil, err
	}
	// Patient lists are as long as the body allows: split and checked in
	// linear time (see exportScope).
	var patients []string
	for _, v := range params["patient"] {
		for _, ref := range strings.Split(v, ",") {
			if ref = strings.TrimSpace(ref); ref != "" {
				patients = append(patients, ref)
			}
		}
	}
	switch {
	case len(patients) > 0 && level == bulk.SystemLevel:
		if err := unsupported("patient is a parameter of Patient and Group level exports"); err != nil {
			return nil, nil, err
		}
		patients = nil
	case len(patients) > 0 && r.Method != http.MethodPost:
		if err := unsupported("patient is accepted in a POST Parameters body only"); err != nil {
			return nil, nil, err
		}
		patients = nil
	}
	if err := s.exportScope(r, p, spec, patients); err != nil {
		return nil, nil, err
	}
	return spec, notes, nil
}

// exportTypes sets spec.Types: those named (each must be one the token may
// search, else 403), or every type the token may search (at Patient and
// Group level, those a patient's compartment holds).
func (s *server) exportTypes(p *authz.Principal, spec *bulk.Spec, named []string, unsupported func(string, ...any) error) error {
	if len(named) > 0 {
		for _, typ := range named {
			if !validate.IsResourceType(typ) {
				if err := unsupported("_type %q is not a resource type this server holds", typ); err != nil {
					return err
				}
				continue
			}
			a, err := s.guard.Decide(p, policy.SearchType, typ)
			if err != nil {
				return err
			}
			if !a.Allowed {
				return forbidden("the access token may not export %s: %s", typ, a.Reason)
			}
			spec.Types = append(spec.Types, typ)
		}
		return nil
	}
	for _, typ := range validate.ResourceTypes() {
		if spec.Level != bulk.SystemLevel && !bulk.InPatientCompartment(typ) {
			continue
		}
		a, err := s.guard.Decide(p, policy.SearchType, typ)
		if err != nil {
			return err
		}
		if a.Allowed {
			spec.Types = append(spec.Types, typ)
		}
	}
	// Patients first: what the rest of an export refers to.
	if i := slices.Index(spec.Types, "Patient"); i > 0 {
		spec.Types = slices.Insert(slices.Delete(spec.Types, i, i+1), 0, "Patient")
	}
	return nil
}

// patientContext reports whether a token acts for one patient: a patient
// in context, a patient user, or patient/ scopes only.
func patientContext(p *authz.Principal) bool {
	if p.Claims.Patient != "" || p.Claims.UserKind == string(policy.PatientUser) {
		return true
	}
	for _, sc := range p.Scopes.Scopes {
		if sc.Kind == scope.Resource && sc.Context != scope.Patient {
			return false
		}
	}
	return true
}

// exportScope settles whose data the export holds: at system level
// everything the token may search (a patient-context token may not); at
// Patient level every patient in reach or those of the patient parameter
// that are; at Group level the Group's members in reach (of the patient
// parameter, when given).
func (s *server) exportScope(r *http.Request, p *authz.Principal, spec *bulk.Spec, patients []string) error {
	base := spec.Base
	ids := func(refs []string) ([]string, error) {
		var out []string
		seen := make(map[string]bool, len(refs))
		for _, ref := range refs {
			id, ok := strings.CutPrefix(search.NormalizeReference(ref, base), "Patient/")
			if !ok || !resource.ValidID(id) {
				return nil, errorf(http.StatusBadRequest, "invalid", "patient %q is not a reference to a Patient", ref)
			}
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out, nil
	}
	want, err := ids(patients)
	if err != nil {
		return err
	}
	switch spec.Level {
	case bulk.SystemLevel:
		if patientContext(p) {
			return forbidden("a system-level export needs a system/ (or user/) token: this token acts for one patient; use Patient/$export")
		}
		return nil
	case bulk.PatientLevel:
		if len(want) == 0 {
			spec.AllPatients = true
			return nil
		}
	case bulk.GroupLevel:
		id := r.PathValue("id")
		if !resource.ValidID(id) {
			return errorf(http.StatusBadRequest, "value", "invalid id %q", id)
		}
		f, err := s.decide(r, policy.Read, "Group")
		if err != nil {
			return err
		}
		g, err := s.visible(r.Context(), f, "Group", id)
		if err != nil {
			return err
		}
		if g == nil {
			return errorf(http.StatusNotFound, "not-found", "Group/%s not found", id)
		}
		spec.Group = id
		members, err := groupMembers(g.Body)
		if err != nil {
			return err
		}
		// Members that are not patients have no patient compartment.
		members = slices.DeleteFunc(members, func(m string) bool {
			id, ok := strings.CutPrefix(search.NormalizeReference(m, base), "Patient/")
			return !ok || !resource.ValidID(id)
		})
		if members, err = ids(members); err != nil {
			return err
		}
		if len(want) > 0 {
			wanted := make(map[string]bool, len(want))
			for _, id := range want {
				wanted[id] = true
			}
			members = slices.DeleteFunc(members, func(m string) bool { return !wanted[m] })
		}
		want = members
	}
	visible, err := s.visiblePatients(r, want)
	if err != nil {
		return err
	}
	spec.Patients = visible
	if spec.Patients == nil {
		spec.Patients = []string{}
	}
	return nil
}

// groupMembers lists the entity references of a Group's active members.
func groupMembers(body []byte) ([]string, error) {
	var g struct {
		Member []struct {
			Entity   struct{ Reference string } `json:"entity"`
			Inactive bool                       `json:"inactive"`
		} `json:"member"`
	}
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, err
	}
	var out []string
	for _, m := range g.Member {
		if !m.Inactive && m.Entity.Reference != "" {
			out = append(out, m.Entity.Reference)
		}
	}
	return out, nil
}

// visiblePatients keeps the ids of patients the token may search.
func (s *server) visiblePatients(r *http.Request, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	f, err := s.decide(r, policy.SearchType, "Patient")
	if err != nil {
		return nil, err
	}
	var out []string
	for lo := 0; lo < len(ids); lo += store.MaxPageSize {
		q := store.Query{Type: "Patient", IDs: ids[lo:min(lo+store.MaxPageSize, len(ids))], Count: store.MaxPageSize}
		f.Apply(&q)
		page, err := s.store.Search(r.Context(), q)
		if err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			out = append(out, res.ID)
		}
	}
	return out, nil
}

// exportHandle is how the bulk endpoints answer: no content negotiation
// first (a kick-off with the wrong Accept is a 400, a download is NDJSON),
// errors as OperationOutcomes.
func (s *server) exportHandle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

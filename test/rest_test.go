package test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func TestResourceLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")

		created := s.do("POST", "Patient", patient("Lovelace", `,"id":"client-chosen"`))
		body := expect(t, created, http.StatusCreated)
		id := str(body["id"])
		if id == "" || id == "client-chosen" {
			t.Fatalf("create must assign a server id, got %q", id)
		}
		if got, want := created.header.Get("Location"), s.base+"/Patient/"+id+"/_history/1"; got != want {
			t.Errorf("Location = %q, want %q", got, want)
		}
		if got := created.header.Get("ETag"); got != `W/"1"` {
			t.Errorf("ETag = %q", got)
		}
		if created.header.Get("Last-Modified") == "" {
			t.Error("Last-Modified missing")
		}
		meta, _ := body["meta"].(map[string]any)
		if meta["versionId"] != "1" || str(meta["lastUpdated"]) == "" {
			t.Errorf("meta = %v", meta)
		}

		read := expect(t, s.do("GET", "Patient/"+id, nil), http.StatusOK)
		if name := read["name"].([]any)[0].(map[string]any)["family"]; name != "Lovelace" {
			t.Errorf("read family = %v", name)
		}

		updated := s.do("PUT", "Patient/"+id, patient("Byron", `,"id":"`+id+`"`), `If-Match: W/"1"`)
		expect(t, updated, http.StatusOK)
		if got := updated.header.Get("ETag"); got != `W/"2"` {
			t.Errorf("ETag after update = %q", got)
		}

		stale := s.do("PUT", "Patient/"+id, patient("Stale", `,"id":"`+id+`"`), `If-Match: W/"1"`)
		expectOutcome(t, stale, http.StatusPreconditionFailed)

		v1 := expect(t, s.do("GET", "Patient/"+id+"/_history/1", nil), http.StatusOK)
		if name := v1["name"].([]any)[0].(map[string]any)["family"]; name != "Lovelace" {
			t.Errorf("vread 1 family = %v", name)
		}
		expectOutcome(t, s.do("GET", "Patient/"+id+"/_history/9", nil), http.StatusNotFound)

		del := s.do("DELETE", "Patient/"+id, nil)
		if del.status != http.StatusNoContent {
			t.Fatalf("delete status %d: %s", del.status, del.body)
		}
		// The token could see the resource as it last was: 410, with the
		// deletion's ETag; deleting it again changes nothing (204), and its
		// history lists the deletion.
		gone := s.do("GET", "Patient/"+id, nil)
		expectOutcome(t, gone, http.StatusGone)
		if got := gone.header.Get("ETag"); got != `W/"3"` {
			t.Errorf("ETag of the deleted resource = %q, want W/\"3\"", got)
		}
		if again := s.do("DELETE", "Patient/"+id, nil); again.status != http.StatusNoContent {
			t.Errorf("second delete status %d, want 204: %s", again.status, again.body)
		}
		expectOutcome(t, s.do("GET", "Patient/"+id+"/_history/3", nil), http.StatusGone)
		expect(t, s.do("GET", "Patient/"+id+"/_history/2", nil), http.StatusOK)
		hist := expect(t, s.do("GET", "Patient/"+id+"/_history", nil), http.StatusOK)
		if got := historyMethods(hist); got != "DELETE,PUT,POST" {
			t.Errorf("history of the deleted resource, newest first = %s, want DELETE,PUT,POST", got)
		}
		st := s.openStore(t)
		defer st.Close()
		page, err := st.History(context.Background(), store.HistoryQuery{Type: "Patient", ID: id})
		if err != nil {
			t.Fatal(err)
		}
		var methods []string
		for _, v := range page.Versions {
			methods = append(methods, fmt.Sprintf("%d:%v", v.VersionID, v.Deleted))
		}
		if got := strings.Join(methods, ","); got != "3:true,2:false,1:false" {
			t.Errorf("stored versions newest first = %s, want 3:true,2:false,1:false", got)
		}
		// An update revives it, in the practice it had.
		revived := s.do("PUT", "Patient/"+id, patient("Again", `,"id":"`+id+`"`))
		expect(t, revived, http.StatusCreated)
		if got := revived.header.Get("ETag"); got != `W/"4"` {
			t.Errorf("ETag of the revived resource = %q, want W/\"4\"", got)
		}
		expect(t, s.do("GET", "Patient/"+id, nil), http.StatusOK)
	})
}

// historyMethods lists a history Bundle's request methods, newest first.
func historyMethods(hist map[string]any) string {
	var methods []string
	for _, e := range hist["entry"].([]any) {
		methods = append(methods, e.(map[string]any)["request"].(map[string]any)["method"].(string))
	}
	return strings.Join(methods, ",")
}

// TestInstanceHistoryMethods: instance history tells creates, updates and
// deletes apart (read while the resource is visible: before the delete).
func TestInstanceHistoryMethods(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		id := str(expect(t, s.do("POST", "Patient", patient("Lovelace")), http.StatusCreated)["id"])
		expect(t, s.do("PUT", "Patient/"+id, patient("Byron", `,"id":"`+id+`"`)), http.StatusOK)
		hist := expect(t, s.do("GET", "Patient/"+id+"/_history", nil), http.StatusOK)
		var methods []string
		for _, e := range hist["entry"].([]any) {
			methods = append(methods, e.(map[string]any)["request"].(map[string]any)["method"].(string))
		}
		if got := strings.Join(methods, ","); got != "PUT,POST" {
			t.Errorf("history methods newest first = %s, want PUT,POST", got)
		}
	})
}

func TestUpdateCreatesWithClientID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		r := s.do("PUT", "Patient/abc-123", patient("Hopper", `,"id":"abc-123"`))
		body := expect(t, r, http.StatusCreated)
		if body["id"] != "abc-123" {
			t.Errorf("id = %v", body["id"])
		}
		expect(t, s.do("PUT", "Patient/abc-123", patient("Hopper2", `,"id":"abc-123"`)), http.StatusOK)
	})
}

func TestPreferReturn(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		minimal := s.do("POST", "Patient", patient("Min"), "Prefer: return=minimal")
		if minimal.status != http.StatusCreated || len(minimal.body) != 0 {
			t.Errorf("return=minimal: status %d body %q", minimal.status, minimal.body)
		}
		if minimal.header.Get("Location") == "" {
			t.Error("return=minimal still needs a Location")
		}
		oo := s.do("POST", "Patient", patient("OO"), "Prefer: return=OperationOutcome")
		expectOutcome(t, oo, http.StatusCreated)
		rep := expect(t, s.do("POST", "Patient", patient("Rep"), "Prefer: return=representation"), http.StatusCreated)
		if rep["resourceType"] != "Patient" {
			t.Errorf("return=representation body: %v", rep)
		}
	})
}

func TestContentNegotiation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		created := expect(t, s.do("POST", "Patient", patient("Neg")), http.StatusCreated)
		path := "Patient/" + str(created["id"])
		cases := []struct {
			name       string
			path       string
			headers    []string
			wantStatus int
			wantType   string
		}{
			{"no Accept", path, nil, 200, "application/fhir+json"},
			{"fhir json", path, []string{"Accept: application/fhir+json"}, 200, "application/fhir+json"},
			{"fhir json with version", path, []string{"Accept: application/fhir+json; fhirVersion=4.0"}, 200, "application/fhir+json"},
			{"plain json", path, []string{"Accept: application/json"}, 200, "application/json"},
			{"any", path, []string{"Accept: */*"}, 200, "application/fhir+json"},
			{"xml preferred, json allowed", path, []string{"Accept: application/fhir+xml, application/json;q=0.5"}, 200, "application/json"},
			{"xml only", path, []string{"Accept: application/fhir+xml"}, 406, "application/fhir+json"},
			{"text/html only", path, []string{"Accept: text/html"}, 406, "application/fhir+json"},
			{"_format json", path + "?_format=json", []string{"Accept: application/xml"}, 200, "application/fhir+json"},
			{"_format application/json", path + "?_format=application/json", nil, 200, "application/json"},
			{"_format xml", path + "?_format=xml", nil, 406, "application/fhir+json"},
			{"_format nonsense", path + "?_format=turtle", nil, 406, "application/fhir+json"},
			{"406 on metadata too", "metadata", []string{"Accept: application/fhir+xml"}, 406, "application/fhir+json"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.do("GET", c.path, nil, c.headers...)
				if r.status != c.wantStatus {
					t.Fatalf("status %d, want %d: %s", r.status, c.wantStatus, r.body)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
					t.Errorf("Content-Type %q, want %s", ct, c.wantType)
				}
				if c.wantStatus == 406 && r.json(t)["resourceType"] != "OperationOutcome" {
					t.Errorf("406 without OperationOutcome: %s", r.body)
				}
			})
		}
	})
}

// TestClientErrors sends every kind of bad request and checks the status,
// that the answer is an OperationOutcome, and that nothing was written.
func TestClientErrors(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "", "--max-body", "2048")
		existing := expect(t, s.do("POST", "Patient", patient("Keep")), http.StatusCreated)
		id := str(existing["id"])
		cases := []struct {
			name    string
			method  string
			path    string
			body    string
			headers []string
			status  int
			where   string // expected OperationOutcome expression, if any
		}{
			{"invalid JSON", "POST", "Patient", `{"resourceType":"Patient",`, nil, 400, ""},
			{"not an object", "POST", "Patient", `["Patient"]`, nil, 400, ""},
			{"empty body", "POST", "Patient", ``, nil, 400, ""},
			{"duplicate keys", "POST", "Patient", `{"resourceType":"Patient","gender":"male","gender":"female"}`, nil, 400, ""},
			{"unknown resource type", "POST", "Patientx", patient("X"), nil, 404, ""},
			{"unknown type on read", "GET", "Foo/1", "", nil, 404, ""},
			{"bad id", "GET", "Patient/bad_id!", "", nil, 400, ""},
			{"id too long", "GET", "Patient/" + strings.Repeat("a", 65), "", nil, 400, ""},
			{"unsupported interaction", "PATCH", "Patient/" + id, `[]`, nil, 405, ""},
			{"POST to an instance", "POST", "Patient/" + id, patient("X"), nil, 405, ""},
			{"resourceType mismatch", "POST", "Patient", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, nil, 400, ""},
			{"missing resourceType", "POST", "Patient", `{"gender":"male"}`, nil, 400, ""},
			{"update without id", "PUT", "Patient/" + id, patient("NoID"), nil, 400, ""},
			{"update id mismatch", "PUT", "Patient/" + id, patient("Other", `,"id":"other"`), nil, 400, ""},
			{"unknown element", "POST", "Patient", patient("X", `,"foo":1`), nil, 422, "Patient.foo"},
			{"bad date", "POST", "Patient", `{"resourceType":"Patient","birthDate":"1970-13-45"}`, nil, 422, "Patient.birthDate"},
			{"bad boolean", "POST", "Patient", `{"resourceType":"Patient","active":"yes"}`, nil, 422, "Patient.active"},
			{"array for single", "POST", "Patient", `{"resourceType":"Patient","gender":["male"]}`, nil, 422, "Patient.gender"},
			{"too large", "POST", "Patient", patient(strings.Repeat("x", 4000)), nil, 413, ""},
			{"wrong content type", "POST", "Patient", patient("X"), []string{"Content-Type: application/xml"}, 415, ""},
			{"bad If-Match", "PUT", "Patient/" + id, patient("X", `,"id":"`+id+`"`), []string{"If-Match: banana"}, 400, ""},
			{"bad version id", "GET", "Patient/" + id + "/_history/x", "", nil, 400, ""},
			{"never existed", "GET", "Patient/nope", "", nil, 404, ""},
			{"delete never existed", "DELETE", "Patient/nope", "", nil, 404, ""},
			{"bad _since", "GET", "Patient/_history?_since=yesterday", "", nil, 400, ""},
			{"bad _count", "GET", "_history?_count=-1", "", nil, 400, ""},
			{"no such endpoint", "GET", "Patient/" + id + "/foo/bar", "", nil, 404, ""},
			{"conditional create on an unknown parameter", "POST", "Patient", patient("X"), []string{"If-None-Exist: nonsense=x"}, 400, "nonsense"},
			{"conditional create with a malformed value", "POST", "Patient", patient("X"), []string{"If-None-Exist: birthdate=someday"}, 400, "birthdate"},
		}
		before := systemVersions(t, s)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := s.do(c.method, c.path, body, c.headers...)
				oo := expectOutcome(t, r, c.status)
				if c.where != "" {
					found := false
					for _, is := range oo["issue"].([]any) {
						for _, ex := range is.(map[string]any)["expression"].([]any) {
							found = found || ex == c.where
						}
					}
					if !found {
						t.Errorf("no issue at %s: %s", c.where, r.body)
					}
				}
			})
		}
		if after := systemVersions(t, s); after != before {
			t.Errorf("rejected requests changed the store: %d versions before, %d after", before, after)
		}
	})
}

// systemVersions counts every stored version through system history.
// It reads the store itself: system history over HTTP lists only what the
// token may see.
func systemVersions(t *testing.T, s *server) int {
	t.Helper()
	st := s.openStore(t)
	defer st.Close()
	n := 0
	q := store.HistoryQuery{Count: store.MaxPageSize}
	for {
		page, err := st.History(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Versions)
		if page.Next == "" {
			return n
		}
		q.Cursor = page.Next
	}
}

func TestHistoryPaging(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		id := str(expect(t, s.do("POST", "Patient", patient("V0")), http.StatusCreated)["id"])
		for i := 1; i <= 6; i++ {
			expect(t, s.do("PUT", "Patient/"+id, patient(fmt.Sprintf("V%d", i), `,"id":"`+id+`"`)), http.StatusOK)
		}
		expect(t, s.do("POST", "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), http.StatusCreated)
		// The token is confined to its practice, which wrote everything
		// here: every level lists every version, page by page.
		for _, path := range []string{"Patient/" + id + "/_history?_count=2", "Patient/_history?_count=3", "_history?_count=2"} {
			t.Run(path, func(t *testing.T) {
				var versions []string
				next := path
				pages := 0
				for next != "" && pages < 20 {
					pages++
					page := expect(t, s.do("GET", next, nil), http.StatusOK)
					if page["type"] != "history" {
						t.Fatalf("bundle type %v", page["type"])
					}
					for _, e := range page["entry"].([]any) {
						res := e.(map[string]any)["resource"].(map[string]any)
						versions = append(versions, res["resourceType"].(string)+"/"+res["meta"].(map[string]any)["versionId"].(string))
					}
					next = ""
					for _, l := range page["link"].([]any) {
						if l.(map[string]any)["relation"] == "next" {
							next = str(l.(map[string]any)["url"])
						}
					}
				}
				want := "Patient/7,Patient/6,Patient/5,Patient/4,Patient/3,Patient/2,Patient/1"
				if !strings.HasPrefix(path, "Patient") {
					want = "Observation/1," + want
				}
				if got := strings.Join(versions, ","); got != want {
					t.Errorf("versions over pages = %s, want %s", got, want)
				}
			})
		}
	})
}

func TestMetadata(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		cs := expect(t, s.do("GET", "metadata", nil), http.StatusOK)
		if cs["resourceType"] != "CapabilityStatement" || cs["fhirVersion"] != "4.0.1" || cs["kind"] != "instance" {
			t.Fatalf("CapabilityStatement: %v", cs)
		}
		inst := fmt.Sprint(cs["instantiates"])
		if !strings.Contains(inst, "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server") {
			t.Errorf("instantiates = %s", inst)
		}
		rest := cs["rest"].([]any)[0].(map[string]any)
		var patientRes map[string]any
		for _, r := range rest["resource"].([]any) {
			if r.(map[string]any)["type"] == "Patient" {
				patientRes = r.(map[string]any)
			}
		}
		if patientRes == nil {
			t.Fatal("Patient missing from the CapabilityStatement")
		}
		var codes []string
		for _, i := range patientRes["interaction"].([]any) {
			codes = append(codes, i.(map[string]any)["code"].(string))
		}
		for _, want := range []string{"read", "vread", "create", "update", "delete", "history-instance", "history-type", "search-type"} {
			if !strings.Contains(strings.Join(codes, ","), want) {
				t.Errorf("Patient interactions %v lack %s", codes, want)
			}
		}
		if got := fmt.Sprint(patientRes["supportedProfile"]); !strings.Contains(got, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient") {
			t.Errorf("Patient supportedProfile = %s", got)
		}
		var params []string
		for _, p := range patientRes["searchParam"].([]any) {
			params = append(params, p.(map[string]any)["name"].(string))
		}
		for _, want := range []string{"_id", "_lastUpdated", "name", "identifier", "birthdate", "gender", "family"} {
			if !slices.Contains(params, want) {
				t.Errorf("Patient searchParam %v lacks %s", params, want)
			}
		}
	})
}

func TestHealthAndMetrics(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := s.do("GET", s.root+p, nil); r.status != 200 {
				t.Errorf("%s: %d", p, r.status)
			}
		}
		if r := s.do("GET", s.root+"/readyz", nil); !strings.Contains(string(r.body), e.name) {
			t.Errorf("/readyz does not name the store kind %s: %s", e.name, r.body)
		}
		s.do("GET", "Patient/none", nil)
		m := s.do("GET", s.root+"/metrics", nil)
		for _, want := range []string{
			`fhirgraph_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="404"} 1`,
			`fhirgraph_store_operation_duration_seconds_count{op="search",outcome="ok"}`,
			`fhirgraph_http_request_duration_seconds_bucket`,
		} {
			if !strings.Contains(string(m.body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

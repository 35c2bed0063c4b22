package test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// gqlReply is a GraphQL answer over HTTP.
type gqlReply struct {
	status int
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	raw []byte
}

func (g gqlReply) codes() []string {
	var out []string
	for _, e := range g.Errors {
		out = append(out, str(e.Extensions["code"]))
	}
	return out
}

// gql posts query to /graphql with the server's token.
func gql(t *testing.T, s *server, query string) gqlReply {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	return gqlDecode(t, s.do("POST", s.root+"/graphql", body, "Content-Type: application/json"))
}

func gqlDecode(t *testing.T, r reply) gqlReply {
	t.Helper()
	if r.status >= 500 {
		t.Fatalf("GraphQL answered %d: %s", r.status, r.body)
	}
	var g gqlReply
	if err := json.Unmarshal(r.body, &g); err != nil {
		t.Fatalf("GraphQL answer is not JSON (%d): %v\n%s", r.status, err, r.body)
	}
	g.status, g.raw = r.status, r.body
	return g
}

// listIDs returns the ids of a GraphQL list of resources, sorted.
func listIDs(v any) []string {
	ids := []string{}
	items, _ := v.([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		ids = append(ids, str(m["id"]))
	}
	sort.Strings(ids)
	return ids
}

// restIDs returns the ids of the matches of a REST search, sorted.
func restIDs(t *testing.T, s *server, path string) []string {
	t.Helper()
	b := expect(t, s.do("GET", path, nil), http.StatusOK)
	ids := []string{}
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if srch, _ := m["search"].(map[string]any); str(srch["mode"]) != "match" {
			continue
		}
		res, _ := m["resource"].(map[string]any)
		ids = append(ids, str(res["id"]))
	}
	sort.Strings(ids)
	return ids
}

func TestGraphQLAnswersAsRESTSearchForTheSameToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		w := newAuthzWorld(t, e)
		tokens := map[string]*server{
			"practice PRAC1": w.systemToken("system/*.rs", "PRAC1"),
			"practice PRAC2": w.systemToken("system/*.rs", "PRAC2"),
			"patient pa":     w.patientToken("pa", "patient/*.rs"),
		}
		for name, s := range tokens {
			t.Run(name, func(t *testing.T) {
				g := gql(t, s, `{ PatientList(family: "Alpha") { id name { family } }
					ObservationList(patient: "Patient/pa") { id status }
					obs: ObservationList(code: "718-7", _count: 50) { id } }`)
				if len(g.Errors) > 0 {
					t.Fatalf("errors: %s", g.raw)
				}
				if name == "practice PRAC1" && !reflect.DeepEqual(listIDs(g.Data["PatientList"]), []string{"pa"}) {
					t.Fatalf("PRAC1 PatientList: %s", g.raw)
				}
				for _, c := range []struct {
					field, rest string
				}{
					{"PatientList", "Patient?family=Alpha"},
					{"ObservationList", "Observation?patient=Patient/pa"},
					{"obs", "Observation?code=718-7&_count=50"},
				} {
					got, want := listIDs(g.Data[c.field]), restIDs(t, s, c.rest)
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s = %v, REST %s = %v", c.field, got, c.rest, want)
					}
				}
				// Patient by id: the same resource as REST read, or null
				// with an error where REST says 404.
				g = gql(t, s, `{ Patient(id: "pa") { id gender birthDate name { family given } ObservationList(_reference: "subject") { id } } }`)
				r := s.do("GET", "Patient/pa", nil)
				p, _ := g.Data["Patient"].(map[string]any)
				switch r.status {
				case http.StatusOK:
					rest := r.json(t)
					if p == nil || p["id"] != "pa" || p["gender"] != rest["gender"] || p["birthDate"] != rest["birthDate"] {
						t.Fatalf("Patient(id: pa) = %s, REST %s", g.raw, r.body)
					}
					got, want := listIDs(p["ObservationList"]), restIDs(t, s, "Observation?subject=Patient/pa")
					if !reflect.DeepEqual(got, want) {
						t.Errorf("Patient.ObservationList = %v, REST = %v", got, want)
					}
				case http.StatusNotFound:
					if p != nil || !reflect.DeepEqual(g.codes(), []string{"NOT_FOUND"}) {
						t.Fatalf("Patient(id: pa) = %s, REST 404", g.raw)
					}
				default:
					t.Fatalf("REST read %d", r.status)
				}
			})
		}
	})
}

func TestGraphQLPatientTokenSeesOnlyItsPatient(t *testing.T) {
	w := newAuthzWorld(t, embedded)
	s := w.patientToken("pa", "patient/*.rs")
	g := gql(t, s, `{ Patient(id: "pa") { id } }`)
	if p, _ := g.Data["Patient"].(map[string]any); p["id"] != "pa" || len(g.Errors) > 0 {
		t.Fatalf("own Patient: %s", g.raw)
	}
	other := gql(t, s, `{ Patient(id: "pb") { id } }`)
	missing := gql(t, s, `{ Patient(id: "nobody") { id } }`)
	for _, g := range []gqlReply{other, missing} {
		if g.status != http.StatusOK || g.Data["Patient"] != nil || !reflect.DeepEqual(g.codes(), []string{"NOT_FOUND"}) {
			t.Fatalf("want null and NOT_FOUND: %d %s", g.status, g.raw)
		}
	}
	// Another patient's reads as one that does not exist.
	if a, b := strings.ReplaceAll(other.Errors[0].Message, "pb", "X"), strings.ReplaceAll(missing.Errors[0].Message, "nobody", "X"); a != b {
		t.Errorf("messages tell existence apart: %q vs %q", a, b)
	}
	// Lists never reach past the compartment.
	g = gql(t, s, `{ PatientList { id } ObservationList(code: "718-7") { id } }`)
	if got := listIDs(g.Data["PatientList"]); !reflect.DeepEqual(got, []string{"pa"}) {
		t.Errorf("PatientList = %v", got)
	}
	if got := listIDs(g.Data["ObservationList"]); !reflect.DeepEqual(got, []string{"oa-lab"}) {
		t.Errorf("ObservationList = %v", got)
	}
}

func TestGraphQLRefusesWhatTheScopesDoNotGrant(t *testing.T) {
	w := newAuthzWorld(t, embedded)
	s := w.patientToken("pa", "patient/Observation.rs")
	g := gql(t, s, `{ Patient(id: "pa") { id } PatientList { id } }`)
	if g.Data["Patient"] != nil || g.Data["PatientList"] != nil || !reflect.DeepEqual(g.codes(), []string{"FORBIDDEN", "FORBIDDEN"}) {
		t.Fatalf("want nulls and two FORBIDDEN errors: %s", g.raw)
	}
	if g = gql(t, s, `{ ObservationList { id } }`); len(g.Errors) > 0 || len(listIDs(g.Data["ObservationList"])) == 0 {
		t.Fatalf("Observation scope: %s", g.raw)
	}
}

func TestGraphQLNeedsAToken(t *testing.T) {
	s := start(t, "")
	for name, r := range map[string]reply{
		"no token":      s.as("").do("POST", s.root+"/graphql", `{"query":"{ __schema { queryType { name } } }"}`, "Content-Type: application/json"),
		"invalid token": s.as("not-a-token").do("GET", s.root+"/graphql?query="+url.QueryEscape(`{ PatientList { id } }`), nil),
	} {
		if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q %s", name, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
		if g := gqlDecode(t, r); len(g.Errors) == 0 || g.Data != nil {
			t.Errorf("%s: want a GraphQL error body: %s", name, r.body)
		}
	}
	// GraphiQL's introspection query (graphql-js getIntrospectionQuery)
	// passes the limits.
	typeRef := "kind name" + strings.Repeat(" ofType { kind name", 9) + strings.Repeat(" }", 9)
	full := `query IntrospectionQuery { __schema { queryType { name } mutationType { name } subscriptionType { name }
		types { ...FullType } directives { name description locations args { ...InputValue } } } }
		fragment FullType on __Type { kind name description fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
		inputFields { ...InputValue } interfaces { ...TypeRef } enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason } possibleTypes { ...TypeRef } }
		fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
		fragment TypeRef on __Type { ` + typeRef + ` }`
	if g := gql(t, s, full); len(g.Errors) > 0 || at(g.Data, "__schema", "queryType", "name") != "Query" {
		t.Fatalf("introspection query: %.300s", g.raw)
	}
	// With a token, introspection and GET work.
	g := gqlDecode(t, s.do("GET", s.root+"/graphql?query="+url.QueryEscape(`{ __schema { queryType { name } } }`), nil))
	if len(g.Errors) > 0 || g.status != http.StatusOK {
		t.Fatalf("introspection with a token: %d %s", g.status, g.raw)
	}
}

func TestGraphQLBadQueriesAreErrorsNotFailures(t *testing.T) {
	s := start(t, "")
	expect(t, s.do("PUT", "Patient/x", patient("Xray", `,"id":"x"`)), http.StatusCreated)
	expect(t, s.do("PUT", "Patient/y", patient("Yankee", `,"id":"y","generalPractitioner":[{"reference":"Practitioner/nobody"}]`)), http.StatusCreated)
	deep := "{ Patient(id: \"x\") { " + strings.Repeat("extension { ", 14) + "url" + strings.Repeat(" }", 14) + " } }"
	for _, c := range []struct {
		name, query, code string
	}{
		{"syntax", `{ Patient(id: "x" { id }`, "GRAPHQL_PARSE_FAILED"},
		{"unknown field", `{ Patient(id: "x") { nope } }`, "GRAPHQL_VALIDATION_FAILED"},
		{"too deep", deep, "QUERY_TOO_DEEP"},
		// (gqlparser's own rule: maximum introspection depth.)
		{"introspection fanning out too deep", "{ __schema { types { " + strings.Repeat("fields { type { ", 6) + "name" + strings.Repeat(" } }", 6) + " } } }", "GRAPHQL_VALIDATION_FAILED"},
		{"bad search value", `{ ObservationList(date: "notadate") { id } }`, "BAD_USER_INPUT"},
		{"_reference not a reference parameter", `{ PatientList { ConditionList(_reference: "code") { id } } }`, "BAD_USER_INPUT"},
		{"_reference not pointing at a Patient", `{ PatientList { ObservationList(_reference: "specimen") { id } } }`, "BAD_USER_INPUT"},
		{"_cursor on a list", `{ PatientList(_cursor: "x") { id } }`, "BAD_USER_INPUT"},
		{"forged cursor", `{ PatientConnection(_cursor: "abc.def") { count } }`, "BAD_USER_INPUT"},
		{"cursor of another key", `{ PatientConnection(_cursor: "abc") { count } }`, "BAD_USER_INPUT"},
		{"too complex", `{ PatientList(_count: 1000) { ObservationList(_reference: "patient", _count: 1000) { id } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"unresolvable reference", `{ Patient(id: "y") { generalPractitioner { resource { ... on Practitioner { id } } } } }`, "NOT_FOUND"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := gql(t, s, c.query)
			if len(g.Errors) == 0 {
				t.Fatalf("no error: %d %s", g.status, g.raw)
			}
			if g.status >= 500 || (g.status != http.StatusOK && g.status != http.StatusUnprocessableEntity) {
				t.Errorf("status %d", g.status)
			}
			t.Logf("%d %s", g.status, g.raw)
			if c.code != "" && g.codes()[0] != c.code {
				t.Errorf("code %v, want %s: %s", g.codes(), c.code, g.raw)
			}
		})
	}
}

func TestGraphQLExtensionURLArgumentFilters(t *testing.T) {
	s := start(t, "")
	expect(t, s.do("PUT", "Patient/e", patient("Echo", `,"id":"e","extension":[{"url":"http://a","valueString":"one"},{"url":"http://b","valueString":"two"}]`)), http.StatusCreated)
	g := gql(t, s, `{ Patient(id: "e") { all: extension { url } a: extension(url: "http://a") { url valueString } } }`)
	p, _ := g.Data["Patient"].(map[string]any)
	all, _ := p["all"].([]any)
	a, _ := p["a"].([]any)
	if len(g.Errors) > 0 || len(all) != 2 || len(a) != 1 || a[0].(map[string]any)["valueString"] != "one" {
		t.Fatalf("extension(url:): %s", g.raw)
	}
}

func TestGraphQLServesFHIRGraphQLEndpointsGraphiQLAndPersistedQueries(t *testing.T) {
	s := start(t, "")
	expect(t, s.do("PUT", "Patient/i", patient("India", `,"id":"i"`)), http.StatusCreated)

	// [base]/[type]/[id]/$graphql: the query selects fields of the resource.
	for name, r := range map[string]reply{
		"GET":  s.do("GET", s.base+"/Patient/i/$graphql?query="+url.QueryEscape(`{ id name { family } }`), nil),
		"POST": s.do("POST", s.base+"/Patient/i/$graphql", `{"query":"query Q($u: String) { id name { family } extension(url: $u) { url } }","variables":{"u":"http://x"}}`, "Content-Type: application/json"),
	} {
		g := gqlDecode(t, r)
		if len(g.Errors) > 0 || g.Data["id"] != "i" || str(at(g.Data["name"].([]any)[0], "family")) != "India" {
			t.Errorf("instance %s: %d %s", name, g.status, g.raw)
		}
	}
	// Errors point inside the resource; a resource out of reach or missing
	// is null with NOT_FOUND.
	g := gqlDecode(t, s.do("GET", s.base+"/Patient/nobody/$graphql?query="+url.QueryEscape(`{ id }`), nil))
	if g.Data != nil || !reflect.DeepEqual(g.codes(), []string{"NOT_FOUND"}) || strings.Contains(string(g.raw), `"path":["Patient"`) {
		t.Errorf("missing instance: %s", g.raw)
	}
	for name, c := range map[string]struct {
		r      reply
		status int
	}{
		"unknown type":   {s.do("GET", s.base+"/Nothing/i/$graphql?query="+url.QueryEscape(`{ id }`), nil), http.StatusNotFound},
		"syntax":         {s.do("GET", s.base+"/Patient/i/$graphql?query="+url.QueryEscape(`{ id `), nil), http.StatusUnprocessableEntity},
		"unknown field":  {s.do("GET", s.base+"/Patient/i/$graphql?query="+url.QueryEscape(`{ nope }`), nil), http.StatusUnprocessableEntity},
		"body not JSON":  {s.do("POST", s.base+"/Patient/i/$graphql", `{"query":`, "Content-Type: application/json"), http.StatusBadRequest},
		"bad variables":  {s.do("GET", s.base+"/Patient/i/$graphql?query=%7Bid%7D&variables=%5B", nil), http.StatusBadRequest},
		"method":         {s.do("DELETE", s.base+"/Patient/i/$graphql", nil), http.StatusMethodNotAllowed},
		"no token":       {s.as("").do("GET", s.base+"/Patient/i/$graphql?query=%7Bid%7D", nil), http.StatusUnauthorized},
		"system, no tok": {s.as("").do("GET", s.base+"/$graphql?query=%7B__typename%7D", nil), http.StatusUnauthorized},
	} {
		if g := gqlDecode(t, c.r); g.status != c.status || len(g.Errors) == 0 {
			t.Errorf("%s: %d %s, want %d and an error", name, g.status, g.raw, c.status)
		}
	}
	// [base]/$graphql is /graphql.
	if g := gqlDecode(t, s.do("POST", s.base+"/$graphql", `{"query":"{ Patient(id: \"i\") { id } }"}`, "Content-Type: application/json")); at(g.Data, "Patient", "id") != "i" {
		t.Errorf("system $graphql: %s", g.raw)
	}

	// A browser gets GraphiQL, which holds no data and needs no token.
	r := s.as("").do("GET", s.root+"/graphql", nil, "Accept: text/html,application/xhtml+xml")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "graphiql") {
		t.Errorf("GraphiQL: %d %s", r.status, r.header.Get("Content-Type"))
	}

	// Automatic persisted queries: a hash alone is unknown until the
	// query has been sent with it once.
	query := `{ Patient(id: "i") { id } }`
	sum := sha256.Sum256([]byte(query))
	ext := `"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + hex.EncodeToString(sum[:]) + `"}}`
	post := func(body string) gqlReply {
		return gqlDecode(t, s.do("POST", s.root+"/graphql", body, "Content-Type: application/json"))
	}
	if g := post(`{` + ext + `}`); !reflect.DeepEqual(g.codes(), []string{"PERSISTED_QUERY_NOT_FOUND"}) {
		t.Errorf("unknown hash: %s", g.raw)
	}
	if g := post(`{"query":` + strconv.Quote(query) + `,` + ext + `}`); at(g.Data, "Patient", "id") != "i" {
		t.Errorf("query with hash: %s", g.raw)
	}
	if g := post(`{` + ext + `}`); at(g.Data, "Patient", "id") != "i" {
		t.Errorf("hash alone: %s", g.raw)
	}
	if g := post(`{"query":"{ __typename }",` + ext + `}`); len(g.Errors) == 0 {
		t.Errorf("a query that does not match its hash: %s", g.raw)
	}

	// Page sizes are bounded; _count: 0 counts.
	if g := gql(t, s, `{ PatientList(_count: 1001) { id } }`); !reflect.DeepEqual(g.codes(), []string{"BAD_USER_INPUT"}) {
		t.Errorf("_count past the maximum: %s", g.raw)
	}
	g = gql(t, s, `{ PatientConnection(_count: 0) { count edges { resource { id } } } PatientList(_count: 0) { id } Patient(id: "i") { ObservationList(_reference: "patient", _count: 0) { id } } }`)
	if len(g.Errors) > 0 || at(g.Data, "PatientConnection", "count") != float64(1) || len(at(g.Data, "PatientConnection", "edges").([]any)) != 0 || len(g.Data["PatientList"].([]any)) != 0 {
		t.Errorf("_count: 0: %s", g.raw)
	}
}

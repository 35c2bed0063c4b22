package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesThePageItsConfigAndNothingElse(t *testing.T) {
	h := NewHandler(Config{ClientID: "dash-1", FHIRBase: "https://ehr.example.org/fhir/"})
	for _, c := range []struct {
		method, path string
		status       int
		typ, body    string
	}{
		{"GET", "/dashboard/", 200, "text/html", `<script type="module" src="dashboard.js">`},
		{"GET", "/dashboard/dashboard.js", 200, "javascript", "from './smart.js'"},
		{"GET", "/dashboard/smart.js", 200, "javascript", "code_challenge_method: 'S256'"},
		{"GET", "/dashboard/chart.js", 200, "javascript", "createElementNS"},
		{"GET", "/dashboard/dashboard.css", 200, "text/css", "[hidden]"},
		{"GET", "/dashboard/icon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/dashboard/config.json", 200, "application/json", `"client_id":"dash-1"`},
		{"GET", "/dashboard/nope.js", 404, "", ""},
		{"GET", "/dashboard/static/index.html", 404, "", ""},
		{"POST", "/dashboard/", 405, "", ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status || !strings.Contains(w.Header().Get("Content-Type"), c.typ) || !strings.Contains(w.Body.String(), c.body) {
			t.Errorf("%s %s: %d %q, want %d %q containing %q", c.method, c.path, w.Code, w.Header().Get("Content-Type"), c.status, c.typ, c.body)
		}
		if csp := w.Header().Get("Content-Security-Policy"); c.status == 200 && !strings.Contains(csp, "connect-src 'self' https://ehr.example.org;") {
			t.Errorf("%s: Content-Security-Policy %q", c.path, csp)
		}
	}

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard/config.json", nil))
	var conf map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &conf); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"client_id": "dash-1", "fhir_base": "https://ehr.example.org/fhir", "graphql": "/graphql", "scope": DefaultScope}
	for k, v := range want {
		if conf[k] != v {
			t.Errorf("config.json %s = %q, want %q", k, conf[k], v)
		}
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/dashboard", nil))
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dashboard/" {
		t.Errorf("/dashboard: %d %q", w.Code, w.Header().Get("Location"))
	}
}

package smart

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// pageData is what every page template may show.
type pageData struct {
	Title    string
	Message  string
	Error    string
	CSRF     string
	Req      string
	Next     string
	App      string
	Username string
	Query    string
	Patient  string
	// Encounter is the visit in context, on the approval page.
	Encounter  string
	Scopes     []scopeRow
	Patients   []patientRow
	Encounters []encounterRow
	Apps       []appRow
}

type scopeRow struct{ Value, Text string }

type patientRow struct{ ID, Name, BirthDate string }

type appRow struct{ ID, Name string }

// page renders a server page; pages are never cached or framed.
func (s *Server) page(w http.ResponseWriter, status int, name string, d pageData) {
	if d.Title == "" {
		d.Title = "Authorization"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name+".html", d); err != nil {
		s.log.Error("smart: rendering a page", "page", name, "err", err)
	}
}

func (s *Server) serverErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("smart: request failed", "path", r.URL.Path, "err", err)
	s.page(w, http.StatusInternalServerError, "error", pageData{Message: "Something went wrong on our side. Try again later."})
}

// describe words a scope for the approval page.
func describe(sc scope.Scope) string {
	switch sc.Kind {
	case scope.OpenID:
		return "Confirm who you are (OpenID Connect)"
	case scope.FHIRUser, scope.Profile:
		return "Know your user record (your name and role)"
	case scope.Launch:
		return "Use the patient and visit open in the EHR"
	case scope.LaunchPatient:
		return "Know which patient is selected"
	case scope.LaunchEncounter:
		return "Know which visit is selected"
	case scope.OfflineAccess:
		return "Keep access when you are not using the app, until you revoke it"
	case scope.OnlineAccess:
		return "Keep access while you stay logged in"
	case scope.Resource:
	default:
		return "Other permission: " + sc.String()
	}
	var verbs []string
	for _, v := range []struct {
		in   scope.Interactions
		word string
	}{{scope.Read, "read"}, {scope.Search, "search"}, {scope.Create, "create"}, {scope.Update, "change"}, {scope.Delete, "delete"}} {
		if sc.Interactions.Has(v.in) {
			verbs = append(verbs, v.word)
		}
	}
	what := sc.Type + " records"
	if sc.Type == "*" {
		what = "all kinds of records"
	}
	text := strings.Join(verbs, ", ") + " " + what
	switch sc.Context {
	case scope.Patient:
		text += " of the selected patient"
	case scope.User:
		text += " you have access to"
	}
	if len(sc.Query) > 0 {
		var parts []string
		for k, vs := range sc.Query {
			parts = append(parts, k+" = "+strings.Join(vs, " or "))
		}
		text += " (only where " + strings.Join(parts, " and ") + ")"
	}
	return strings.ToUpper(text[:1]) + text[1:] + " [" + sc.String() + "]"
}

// maxPatients bounds the patients a picker or the EHR page lists.
const maxPatients = 50

// listPatients lists patients of the given practices whose name matches q
// (all when q is empty). No practice in reach lists none.
func (s *Server) listPatients(ctx context.Context, practices []string, q string) ([]patientRow, error) {
	if len(practices) == 0 {
		return nil, nil
	}
	params := url.Values{"_count": {"50"}}
	if q != "" {
		params.Set("name", q)
	}
	srch, err := search.Compile("Patient", params, search.Options{BaseURL: "", Strict: false})
	if err != nil {
		return nil, nil // a name the search cannot take lists nothing
	}
	srch.Query.Practices = practices
	srch.Query.Count = maxPatients
	page, err := s.cfg.Store.Search(ctx, srch.Query)
	if err != nil {
		return nil, err
	}
	out := make([]patientRow, 0, len(page.Resources))
	for _, res := range page.Resources {
		out = append(out, patientSummary(res))
	}
	return out, nil
}

// patientInReach reports whether Patient/id exists in one of practices.
func (s *Server) patientInReach(ctx context.Context, practices []string, id string) (bool, error) {
	if len(practices) == 0 || len(id) > 64 {
		return false, nil
	}
	page, err := s.cfg.Store.Search(ctx, store.Query{Type: "Patient", IDs: []string{id}, Practices: practices, Count: 1})
	if err != nil {
		return false, err
	}
	return len(page.Resources) == 1, nil
}

func patientSummary(res store.Resource) patientRow {
	var p struct {
		Name []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		BirthDate string `json:"birthDate"`
	}
	json.Unmarshal(res.Body, &p)
	row := patientRow{ID: res.ID, BirthDate: p.BirthDate, Name: res.ID}
	if len(p.Name) > 0 {
		n := p.Name[0]
		switch {
		case n.Text != "":
			row.Name = n.Text
		case n.Family != "" || len(n.Given) > 0:
			row.Name = strings.TrimSpace(strings.Join(n.Given, " ") + " " + n.Family)
		}
	}
	return row
}

package smart

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/fhir/resource"
)

// ehrUser returns the logged-in practitioner or staff user of the
// browser session, showing the login page (ok false) otherwise.
func (s *Server) ehrUser(w http.ResponseWriter, r *http.Request) (session, registry.User, bool) {
	ctx := r.Context()
	sess, err := s.ensureSession(ctx, w, r)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return session{}, registry.User{}, false
	}
	if sess.User != "" {
		u, err := s.cfg.Registry.GetUser(ctx, sess.User)
		if err != nil {
			s.serverErrorPage(w, r, err)
			return session{}, registry.User{}, false
		}
		if u.Status == registry.StatusActive && u.Kind != registry.UserPatient {
			return sess, u, true
		}
	}
	s.page(w, http.StatusUnauthorized, "login", pageData{Title: "Log in to the EHR", CSRF: sess.CSRF, Next: "ehr"})
	return session{}, registry.User{}, false
}

// ehr serves GET /oauth/ehr: the minimal EHR, listing the patients of
// the user's practices with a launch button per app that has a launch
// URL and is consented to by one of them.
func (s *Server) ehr(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.ehrUser(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := pageData{Title: "EHR", CSRF: sess.CSRF, Username: u.Username, Query: q}
	var err error
	if d.Patients, err = s.listPatients(ctx, u.Practices, q); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	clients, err := s.cfg.Registry.ClientsByStatus(ctx, registry.StatusActive)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	for _, c := range clients {
		if c.LaunchURL != "" && len(intersect(u.Practices, c.Practices)) > 0 {
			d.Apps = append(d.Apps, appRow{ID: c.ID, Name: c.Name})
		}
	}
	s.page(w, http.StatusOK, "ehr", d)
}

// launch serves POST /oauth/launch (csrf, patient, optional encounter,
// client_id): it records a launch context for the app, single use,
// valid launchLifetime, and sends the browser to the app's launch URL
// with iss and launch, or, asked with Accept: application/json, answers
// 201 {"launch_url", "launch", "iss"}.
func (s *Server) launch(w http.ResponseWriter, r *http.Request) {
	form, err := parseForm(w, r)
	if err != nil {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The form could not be read."})
		return
	}
	sess, u, ok := s.ehrUser(w, r)
	if !ok {
		return
	}
	if !csrfOK(sess, form.Get("csrf")) {
		s.page(w, http.StatusForbidden, "error", pageData{Message: "The form expired or was not sent by this site."})
		return
	}
	ctx := r.Context()
	client, err := s.activeClient(ctx, form.Get("client_id"))
	if err != nil || client.LaunchURL == "" {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "That app cannot be launched."})
		return
	}
	patient, encounter := form.Get("patient"), form.Get("encounter")
	practices := intersect(u.Practices, client.Practices)
	found, err := s.patientInReach(ctx, practices, patient)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	if !found || (encounter != "" && !resource.ValidID(encounter)) {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "That patient (or encounter) is not one this app may open for you."})
		return
	}
	id := secret()
	lc := launchContext{Client: client.ID, Patient: patient, Encounter: encounter, User: u.Username, Exp: s.cfg.Now().Add(launchLifetime)}
	if err := s.launches.Create(ctx, id, lc, lc.Exp); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	to := withQuery(client.LaunchURL, url.Values{"iss": {s.cfg.FHIRBase}, "launch": {id}})
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusCreated, map[string]string{"launch_url": to, "launch": id, "iss": s.cfg.FHIRBase})
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// style serves the smart_style_url document: a plain, neutral style.
func (s *Server) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write([]byte(`{"color_background":"#ffffff","color_error":"#aa0000","color_highlight":"#1a5fb4","color_modal_backdrop":"","color_success":"#26a269","color_text":"#222222","dim_border_radius":"4px","dim_font_size":"16px","dim_spacing_size":"16px","font_family_body":"system-ui, sans-serif","font_family_heading":"system-ui, sans-serif"}`))
}

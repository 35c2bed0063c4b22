package smart

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/store"
)

// flowState is an authorization request with the browser session it
// belongs to, loaded for one step of the flow.
type flowState struct {
	sess   session
	req    authRequest
	client registry.Client
	user   registry.User // zero until logged in
}

// toFlow sends the browser on to the next step of authorization request id.
func toFlow(w http.ResponseWriter, r *http.Request, id string) {
	http.Redirect(w, r, "/oauth/flow?req="+url.QueryEscape(id), http.StatusSeeOther)
}

// flowForm reads the form a flow page posts (keys in repeatable may
// repeat), loads the request it continues and checks its CSRF token; when
// any of that fails it has answered with an error page (ok false).
func (s *Server) flowForm(w http.ResponseWriter, r *http.Request, repeatable ...string) (url.Values, flowState, bool) {
	form, err := parseForm(w, r, repeatable...)
	if err != nil {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The form could not be read."})
		return nil, flowState{}, false
	}
	st, ok := s.loadFlow(w, r, form.Get("req"))
	if !ok {
		return nil, flowState{}, false
	}
	if !csrfOK(st.sess, form.Get("csrf")) {
		s.page(w, http.StatusForbidden, "error", pageData{Message: "The form expired or was not sent by this site."})
		return nil, flowState{}, false
	}
	return form, st, true
}

// loadFlow loads the request named by id for the browser's session; a
// request of another session, or an ended one, is shown as an error page
// (ok false).
func (s *Server) loadFlow(w http.ResponseWriter, r *http.Request, id string) (flowState, bool) {
	ctx := r.Context()
	sess, ok, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return flowState{}, false
	}
	if !ok {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "Your session has ended (or cookies are blocked). Start again from the app."})
		return flowState{}, false
	}
	req, rev, err := s.requests.Get(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverErrorPage(w, r, err)
		return flowState{}, false
	}
	if err != nil || req.Session != sess.ID || !s.cfg.Now().Before(req.Exp) {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "This authorization request has ended or belongs to another browser session. Start again from the app."})
		return flowState{}, false
	}
	req.ID, req.Rev = id, rev
	st := flowState{sess: sess, req: req}
	if st.client, err = s.cfg.Registry.GetClient(ctx, req.Client); err != nil {
		s.serverErrorPage(w, r, err)
		return flowState{}, false
	}
	if sess.User != "" {
		if st.user, err = s.cfg.Registry.GetUser(ctx, sess.User); err != nil {
			s.serverErrorPage(w, r, err)
			return flowState{}, false
		}
	}
	return st, true
}

// flow serves GET /oauth/flow?req=…: the login page, then the patient
// picker when a practitioner's standalone launch asks launch/patient,
// then the encounter picker when a standalone launch asks
// launch/encounter, then the approval page.
func (s *Server) flow(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadFlow(w, r, r.URL.Query().Get("req"))
	if !ok {
		return
	}
	s.showStep(w, r, st, "")
}

func (s *Server) showStep(w http.ResponseWriter, r *http.Request, st flowState, q string) {
	d := pageData{CSRF: st.sess.CSRF, Req: st.req.ID, App: st.client.Name}
	switch {
	case st.sess.User == "" || st.user.Status != registry.StatusActive:
		d.Title = "Log in"
		s.page(w, http.StatusOK, "login", d)
	case st.req.LaunchUser != "" && st.req.LaunchUser != st.user.Username:
		s.page(w, http.StatusForbidden, "error", pageData{Message: "This EHR launch was made by another user."})
	case s.needsPicker(st):
		d.Title, d.Query = "Choose a patient", q
		var err error
		d.Patients, err = s.listPatients(r.Context(), intersect(st.user.Practices, st.client.Practices), q)
		if err != nil {
			s.serverErrorPage(w, r, err)
			return
		}
		s.page(w, http.StatusOK, "picker", d)
	case s.needsEncounter(st):
		list, err := s.listEncounters(r.Context(), st)
		if err != nil {
			s.serverErrorPage(w, r, err)
			return
		}
		s.showEncounters(w, r, st, list, "")
	default:
		d.Title = "Allow " + st.client.Name + "?"
		set, _ := scope.Parse(st.req.Scope)
		for _, sc := range set.Scopes {
			d.Scopes = append(d.Scopes, scopeRow{Value: sc.String(), Text: describe(sc)})
		}
		d.Patient, d.Encounter = s.contextPatient(st), st.req.Encounter
		s.page(w, http.StatusOK, "approve", d)
	}
}

// needsPicker: a practitioner's (or staff user's) standalone launch
// asking launch/patient, with no patient chosen yet.
func (s *Server) needsPicker(st flowState) bool {
	set, _ := scope.Parse(st.req.Scope)
	return st.user.Kind != registry.UserPatient && !st.req.Launched && st.req.Patient == "" && set.Has(scope.LaunchPatient)
}

// contextPatient is the patient in context: the EHR launch's, a patient
// user's own Patient, or the one a practitioner picked.
func (s *Server) contextPatient(st flowState) string {
	if st.user.Kind == registry.UserPatient && !st.req.Launched {
		return st.user.Patient
	}
	return st.req.Patient
}

// login serves POST /oauth/login (username, password, csrf, and req or
// next=ehr). A successful login replaces the session.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, err := parseForm(w, r)
	if err != nil {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "The form could not be read."})
		return
	}
	old, ok, err := s.currentSession(ctx, r)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	if !ok || !csrfOK(old, form.Get("csrf")) {
		s.page(w, http.StatusForbidden, "error", pageData{Message: "The form expired or was not sent by this site. Go back and try again."})
		return
	}
	reqID, toEHR := form.Get("req"), form.Get("next") == "ehr"
	retry := pageData{Title: "Log in", CSRF: old.CSRF, Req: reqID, Next: form.Get("next"), Username: form.Get("username")}
	u, err := s.cfg.Registry.Login(ctx, form.Get("username"), form.Get("password"))
	switch {
	case errors.Is(err, registry.ErrBadCredentials), errors.Is(err, registry.ErrNotActive):
		retry.Error = "Wrong username or password, or the account is not active."
		s.page(w, http.StatusUnauthorized, "login", retry)
		return
	case err != nil:
		s.serverErrorPage(w, r, err)
		return
	case toEHR && u.Kind == registry.UserPatient:
		retry.Error = "The EHR is for practitioners and staff."
		s.page(w, http.StatusForbidden, "login", retry)
		return
	}
	sess, err := s.startSession(ctx, w, u.Username)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	if err := s.sessions.Delete(ctx, old.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverErrorPage(w, r, err)
		return
	}
	if toEHR {
		http.Redirect(w, r, "/oauth/ehr", http.StatusSeeOther)
		return
	}
	req, rev, err := s.requests.Get(ctx, reqID)
	if err == nil && req.Session == old.ID {
		req.Session = sess.ID
		_, err = s.requests.Update(ctx, reqID, rev, req, req.Exp)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverErrorPage(w, r, err)
		return
	}
	toFlow(w, r, reqID)
}

// pickPatient serves POST /oauth/patient: the picker's search box
// (q, without patient) or its choice (patient).
func (s *Server) pickPatient(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, st, ok := s.flowForm(w, r)
	if !ok {
		return
	}
	if !s.needsPicker(st) || st.sess.User == "" {
		toFlow(w, r, st.req.ID)
		return
	}
	id := form.Get("patient")
	if id == "" {
		s.showStep(w, r, st, strings.TrimSpace(form.Get("q")))
		return
	}
	found, err := s.patientInReach(ctx, intersect(st.user.Practices, st.client.Practices), id)
	if err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	if !found {
		s.page(w, http.StatusBadRequest, "error", pageData{Message: "That patient is not one you may choose."})
		return
	}
	st.req.Patient = id
	if _, err := s.requests.Update(ctx, st.req.ID, st.req.Rev, st.req, st.req.Exp); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	toFlow(w, r, st.req.ID)
}

// approve serves POST /oauth/approve: deny sends access_denied back;
// approve grants the ticked scopes (a subset of the request's) with a
// code, single use, valid codeLifetime.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, st, ok := s.flowForm(w, r, "scope")
	if !ok {
		return
	}
	if st.sess.User == "" || (st.req.LaunchUser != "" && st.req.LaunchUser != st.user.Username) || s.needsPicker(st) || s.needsEncounter(st) {
		toFlow(w, r, st.req.ID)
		return
	}
	if err := s.requests.Delete(ctx, st.req.ID, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.serverErrorPage(w, r, err)
		return
	}
	if form.Get("approve") == "" {
		redirectError(w, r, st.req.RedirectURI, st.req.State, "access_denied", "the user denied the request")
		return
	}
	offered, _ := scope.Parse(st.req.Scope)
	var ticked []string
	for _, v := range form["scope"] {
		one, err := scope.Parse(v)
		if err == nil && len(one.Scopes) == 1 && offered.Contains(one) && !contains(ticked, v) {
			ticked = append(ticked, v)
		}
	}
	chosen, err := scope.Parse(strings.Join(ticked, " "))
	if err != nil || len(chosen.Scopes) == 0 {
		redirectError(w, r, st.req.RedirectURI, st.req.State, "access_denied", "the user approved no scope")
		return
	}
	g := grant{User: st.user.Username, Scope: chosen.String(), Patient: s.contextPatient(st), Encounter: st.req.Encounter}
	g.Banner = g.Patient != "" && !st.req.Launched
	code := secret()
	rec := authCode{
		Client: st.req.Client, RedirectURI: st.req.RedirectURI, Challenge: st.req.Challenge,
		Grant: g, Session: st.sess.ID, Nonce: st.req.Nonce, Exp: s.cfg.Now().Add(codeLifetime),
	}
	if err := s.codes.Create(ctx, hashID(code), rec, rec.Exp.Add(codeRetention)); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	q := url.Values{"code": {code}}
	if st.req.State != "" {
		q.Set("state", st.req.State)
	}
	http.Redirect(w, r, withQuery(st.req.RedirectURI, q), http.StatusFound)
}

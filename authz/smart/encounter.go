package smart

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// maxEncounters bounds the encounters the encounter picker lists.
const maxEncounters = 50

// encounterRow is one encounter the picker offers.
type encounterRow struct{ ID, Text string }

// needsEncounter: a standalone launch asking launch/encounter whose
// patient is known (a patient user's own, or the one a practitioner
// picked) and whose encounter step is not done yet. An EHR launch carries
// its encounter from the launch context instead.
func (s *Server) needsEncounter(st flowState) bool {
	if st.sess.User == "" || st.req.Launched || st.req.EncounterDone || s.contextPatient(st) == "" {
		return false
	}
	set, _ := scope.Parse(st.req.Scope)
	return set.Has(scope.LaunchEncounter)
}

// encounterReach is the filter an encounter of the flow's patient must
// pass: the patient's compartment and, for practitioners and staff, the
// user's practices the client is consented to. ok is false when nothing
// is in reach (a practitioner without such a practice).
func encounterReach(st flowState, patient string) (store.Query, bool) {
	q := store.Query{Type: "Encounter", Compartments: []string{"Patient/" + patient}}
	if st.user.Kind != registry.UserPatient {
		q.Practices = intersect(st.user.Practices, st.client.Practices)
		if len(q.Practices) == 0 {
			return q, false
		}
	}
	return q, true
}

// listEncounters lists the encounters of the flow's patient in reach,
// newest first by period when the search allows it.
func (s *Server) listEncounters(ctx context.Context, st flowState) ([]encounterRow, error) {
	q, ok := encounterReach(st, s.contextPatient(st))
	if !ok {
		return nil, nil
	}
	if srch, err := search.Compile("Encounter", url.Values{"_sort": {"-date"}}, search.Options{}); err == nil {
		q.Sort = srch.Query.Sort
	}
	q.Count = maxEncounters
	page, err := s.cfg.Store.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]encounterRow, 0, len(page.Resources))
	for _, res := range page.Resources {
		out = append(out, encounterSummary(res))
	}
	return out, nil
}

// encounterInReach reports whether Encounter/id is one of the flow
// patient's encounters in reach.
func (s *Server) encounterInReach(ctx context.Context, st flowState, id string) (bool, error) {
	q, ok := encounterReach(st, s.contextPatient(st))
	if !ok || id == "" || len(id) > 64 {
		return false, nil
	}
	q.IDs, q.Count = []string{id}, 1
	page, err := s.cfg.Store.Search(ctx, q)
	if err != nil {
		return false, err
	}
	return len(page.Resources) == 1, nil
}

// encounterSummary words an encounter for the picker: its type (or
// class), period and status.
func encounterSummary(res store.Resource) encounterRow {
	type coding struct {
		Code    string `json:"code"`
		Display string `json:"display"`
	}
	var e struct {
		Status string `json:"status"`
		Class  coding `json:"class"`
		Type   []struct {
			Text   string   `json:"text"`
			Coding []coding `json:"coding"`
		} `json:"type"`
		Period struct {
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"period"`
	}
	json.Unmarshal(res.Body, &e)
	what := ""
	if len(e.Type) > 0 {
		what = e.Type[0].Text
		for _, c := range e.Type[0].Coding {
			if what == "" {
				what = c.Display
			}
		}
	}
	if what == "" {
		what = e.Class.Display
	}
	if what == "" {
		what = e.Class.Code
	}
	if what == "" {
		what = "Encounter " + res.ID
	}
	parts := []string{what}
	switch {
	case e.Period.Start != "" && e.Period.End != "":
		parts = append(parts, e.Period.Start+" to "+e.Period.End)
	case e.Period.Start != "":
		parts = append(parts, "from "+e.Period.Start)
	case e.Period.End != "":
		parts = append(parts, "until "+e.Period.End)
	}
	if e.Status != "" {
		parts = append(parts, e.Status)
	}
	return encounterRow{ID: res.ID, Text: strings.Join(parts, ", ")}
}

// pickEncounter serves POST /oauth/encounter: the encounter picker's
// choice (encounter), or continuing without one (none), which is only
// accepted when the patient has no encounter in reach.
func (s *Server) pickEncounter(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	form, st, ok := s.flowForm(w, r)
	if !ok {
		return
	}
	if !s.needsEncounter(st) || s.needsPicker(st) {
		toFlow(w, r, st.req.ID)
		return
	}
	id := form.Get("encounter")
	if id == "" {
		list, err := s.listEncounters(ctx, st)
		if err != nil {
			s.serverErrorPage(w, r, err)
			return
		}
		if len(list) > 0 {
			s.showEncounters(w, r, st, list, "Choose a visit.")
			return
		}
	} else {
		found, err := s.encounterInReach(ctx, st, id)
		if err != nil {
			s.serverErrorPage(w, r, err)
			return
		}
		if !found {
			s.page(w, http.StatusBadRequest, "error", pageData{Message: "That visit is not one you may choose."})
			return
		}
	}
	st.req.Encounter, st.req.EncounterDone = id, true
	if _, err := s.requests.Update(ctx, st.req.ID, st.req.Rev, st.req, st.req.Exp); err != nil {
		s.serverErrorPage(w, r, err)
		return
	}
	toFlow(w, r, st.req.ID)
}

// showEncounters renders the encounter picker with list; problem, when
// set, is shown as the form's error.
func (s *Server) showEncounters(w http.ResponseWriter, r *http.Request, st flowState, list []encounterRow, problem string) {
	d := pageData{
		Title: "Choose a visit", CSRF: st.sess.CSRF, Req: st.req.ID, App: st.client.Name,
		Patient: s.contextPatient(st), Encounters: list, Error: problem,
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusBadRequest
	}
	s.page(w, status, "encounters", d)
}

package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
)

// myApplications serves GET /portal/applications: the developer's
// applications, newest first.
func (p *Portal) myApplications(w http.ResponseWriter, r *http.Request) {
	s, d, ok := p.requireDeveloper(w, r)
	if !ok {
		return
	}
	apps, _, err := p.apps.Find(r.Context(), "developer", d.Email)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	sortBy(apps, func(a, b Application) bool { return a.Created.After(b.Created) })
	v := p.devView(s, d, "My Applications", "applications")
	v.Apps = apps
	if r.URL.Query().Get("submitted") != "" {
		v.Message = "Your request is submitted. Staff will review it; its status is shown below."
	}
	p.render(w, r, http.StatusOK, "applications", v)
}

func (p *Portal) devView(s session, d developer, title, nav string) *view {
	return &view{Title: title, Nav: nav, CSRF: s.CSRF, Who: d.Name + " (" + d.Organization + ")", Verified: d.Verified}
}

// newApplicationPage serves GET /portal/applications/new.
func (p *Portal) newApplicationPage(w http.ResponseWriter, r *http.Request) {
	s, d, ok := p.requireDeveloper(w, r)
	if !ok {
		return
	}
	v := p.devView(s, d, "Submit an API Request", "new")
	if !d.Verified {
		p.unverified(w, r, v)
		return
	}
	v.Form = url.Values{"requester_name": {d.Name}, "requester_organization": {d.Organization}, "requester_email": {d.Email}}
	v.Rows = practiceRows(v.Form)
	p.render(w, r, http.StatusOK, "new", v)
}

func (p *Portal) unverified(w http.ResponseWriter, r *http.Request, v *view) {
	v.Error = "Verify your email address before you submit requests: follow the link we sent you."
	p.render(w, r, http.StatusForbidden, "unverified", v)
}

// submitApplication serves POST /portal/applications/new: a valid
// request is stored as PENDING REVIEW; one with the organization and
// name of an existing application is shown again with a warning until
// the developer confirms.
func (p *Portal) submitApplication(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	d, ok := p.developerOf(w, r, s)
	if !ok {
		return
	}
	ctx := r.Context()
	v := p.devView(s, d, "Submit an API Request", "new")
	if !d.Verified {
		p.unverified(w, r, v)
		return
	}
	v.Form = form
	v.Rows = practiceRows(form)
	a, errs, err := p.checkApplication(ctx, form)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if len(errs) > 0 {
		v.Errors, v.Error = errs, "The request was not submitted: correct the fields marked below."
		p.render(w, r, http.StatusBadRequest, "new", v)
		return
	}
	same, _, err := p.apps.Find(ctx, "org_name", a.OrgName)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if len(same) > 0 && form.Get("confirm_duplicate") != "yes" {
		v.Duplicate = true
		p.render(w, r, http.StatusOK, "new", v)
		return
	}
	now := p.cfg.Now().UTC().Truncate(time.Second)
	a.ID, a.Developer, a.Created = randomText(12), d.Email, now
	a.Terms = TermsAccepted{Version: TermsVersion, AcceptedAt: now}
	a.Status = StatusPending
	a.History = []StatusChange{{Status: StatusPending, By: d.Email, At: now, Reason: "submitted"}}
	if err := p.apps.Create(ctx, a.ID, a, time.Time{}); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/portal/applications?submitted="+url.QueryEscape(a.ID), http.StatusSeeOther)
}

// ownApp returns the developer's application named in the path; another
// developer's is not found.
func (p *Portal) ownApp(w http.ResponseWriter, r *http.Request, d developer) (Application, bool) {
	a, _, err := p.apps.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Developer != d.Email) {
		p.render(w, r, http.StatusNotFound, "message", &view{Title: "Application not found", Who: d.Name, Verified: d.Verified, Error: "You have no application with that id."})
		return Application{}, false
	} else if err != nil {
		p.fail(w, r, err)
		return Application{}, false
	}
	return a, true
}

// applicationPage serves GET /portal/applications/{id}.
func (p *Portal) applicationPage(w http.ResponseWriter, r *http.Request) {
	s, d, ok := p.requireDeveloper(w, r)
	if !ok {
		return
	}
	a, ok := p.ownApp(w, r, d)
	if !ok {
		return
	}
	v := p.devView(s, d, a.Name, "applications")
	v.App = &a
	p.render(w, r, http.StatusOK, "application", v)
}

// rotateSecret serves POST /portal/applications/{id}/secret: the active
// app's new client secret, shown on this page once. The previous one
// keeps working for the grace period (the first secret has none before
// it).
func (p *Portal) rotateSecret(w http.ResponseWriter, r *http.Request) {
	p.credentials(w, r, true)
}

// revokeSecret serves POST /portal/applications/{id}/revoke.
func (p *Portal) revokeSecret(w http.ResponseWriter, r *http.Request) {
	p.credentials(w, r, false)
}

func (p *Portal) credentials(w http.ResponseWriter, r *http.Request, rotate bool) {
	_, s, ok := p.checkForm(w, r, kindDeveloper)
	if !ok {
		return
	}
	d, ok := p.developerOf(w, r, s)
	if !ok {
		return
	}
	a, ok := p.ownApp(w, r, d)
	if !ok {
		return
	}
	ctx := r.Context()
	v := p.devView(s, d, a.Name, "applications")
	v.App = &a
	if a.Status != StatusActive || a.ClientID == "" || a.ClientType != "confidential-symmetric" {
		v.Error = "Only active apps with a shared secret have a client secret."
		p.render(w, r, http.StatusBadRequest, "application", v)
		return
	}
	event, reason := "secret revoked", "by the developer"
	if rotate {
		grace := p.cfg.SecretGrace
		event = "secret rotated"
		if !a.SecretIssued {
			grace, event = 0, "secret issued"
		}
		secret, err := p.cfg.Registry.RotateClientSecret(ctx, a.ClientID, grace)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		v.Secret = secret
		if a.SecretIssued {
			reason = "the previous secret works until " + p.cfg.Now().Add(grace).UTC().Format("2006-01-02 15:04 UTC")
		}
	} else if _, err := p.cfg.Registry.RevokeClientSecret(ctx, a.ClientID); err != nil {
		p.fail(w, r, err)
		return
	}
	a, err := p.apps.Change(ctx, a.ID, time.Time{}, func(x *Application) (bool, error) {
		x.SecretIssued = rotate
		x.History = append(x.History, StatusChange{Status: x.Status, Event: event, By: d.Email, At: p.cfg.Now().UTC().Truncate(time.Second), Reason: reason})
		return true, nil
	})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	v.App = &a
	if rotate {
		v.Message = "Copy the client secret now: it is shown only this once."
	} else {
		v.Message = "The client secret is revoked: nothing authenticates as the app until you create a new one."
	}
	p.render(w, r, http.StatusOK, "application", v)
}

// activate registers the approved application as a client of the
// registry, consented by the practices that confirmed so far.
func (p *Portal) activate(r *http.Request, a Application) (string, error) {
	kind := registry.KindConfidential
	switch {
	case a.Backend():
		kind = registry.KindBackend
	case a.ClientType == "public":
		kind = registry.KindPublic
	}
	spec := registry.ClientSpec{
		Name: a.Name, Kind: kind, Scope: a.Scope, SMARTVersion: registry.SMARTv1,
		RedirectURIs: a.RedirectURIs, LaunchURL: a.LaunchURL, JWKSURL: a.JWKSURL,
		Secret: a.ClientType == "confidential-symmetric", Dev: p.cfg.Dev,
	}
	var err error
	if spec.Practices, err = p.consented(r.Context(), a); err != nil {
		return "", err
	}
	if a.SMARTVersion == "2.0.0" {
		spec.SMARTVersion = registry.SMARTv2
	}
	// The secret made here is shown to no one: the developer creates the
	// first one on the app's page, to see it once.
	c, _, err := p.cfg.Registry.CreateClient(r.Context(), spec)
	if err != nil {
		return "", err
	}
	return c.ID, nil
}

// clientPractices makes the client's consented practices exactly the
// confirmed ones that are active.
func (p *Portal) clientPractices(r *http.Request, a Application) error {
	if a.ClientID == "" {
		return nil
	}
	pins, err := p.consented(r.Context(), a)
	if err != nil {
		return err
	}
	_, err = p.cfg.Registry.SetClientPractices(r.Context(), a.ClientID, pins)
	return err
}

// consented returns, sorted, the PINs of the practices that confirmed
// consent to a and are active: a practice suspended since it confirmed
// reaches no client (and the registry refuses it), without holding up
// the approval or the other practices' consents.
func (p *Portal) consented(ctx context.Context, a Application) ([]string, error) {
	var out []string
	for _, pin := range a.Confirmed() {
		pr, err := p.cfg.Registry.GetPractice(ctx, pin)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		case pr.Status != registry.StatusActive:
			p.log.Warn("portal: a consenting practice is not active; its consent does not reach the client", "app", a.ID, "practice", pin, "status", pr.Status)
			continue
		}
		out = append(out, pin)
	}
	slices.Sort(out)
	return out, nil
}

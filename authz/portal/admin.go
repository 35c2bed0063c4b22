package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
)

// Roles are the portal roles of a staff user (a registry user of kind
// staff), id = username:
//
//	{"record": "roles", "username": "rita", "roles": ["reviewer"]}
//
// What each role may do is policy.csv's to say (subjects reviewer and
// practice-admin); a practice administrator acts for the practices the
// registry user belongs to.
type Roles struct {
	Record   string   `json:"record"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

// GrantRoles gives a staff user portal roles (policy.RoleReviewer,
// policy.RolePracticeAdmin), keeping those it has. The user must be an
// active registry user of kind staff.
func (p *Portal) GrantRoles(ctx context.Context, username string, roles ...string) error {
	u, err := p.cfg.Registry.GetUser(ctx, username)
	if err != nil {
		return fmt.Errorf("portal: staff user %q: %w", username, err)
	}
	if u.Kind != registry.UserStaff {
		return fmt.Errorf("portal: %s is a %s user; portal roles go to staff users: %w", u.Username, u.Kind, registry.ErrInvalid)
	}
	for _, role := range roles {
		if role != policy.RoleReviewer && role != policy.RolePracticeAdmin {
			return fmt.Errorf("portal: unknown role %q (want %s or %s): %w", role, policy.RoleReviewer, policy.RolePracticeAdmin, registry.ErrInvalid)
		}
	}
	rec := Roles{Record: "roles", Username: u.Username, Roles: roles}
	err = p.roles.Create(ctx, u.Username, rec, time.Time{})
	if errors.Is(err, store.ErrExists) {
		_, err = p.roles.Change(ctx, u.Username, time.Time{}, func(x *Roles) (bool, error) {
			n := len(x.Roles)
			for _, role := range roles {
				if !slices.Contains(x.Roles, role) {
					x.Roles = append(x.Roles, role)
				}
			}
			return len(x.Roles) != n, nil
		})
	}
	return err
}

// staff is a logged-in staff user with their portal roles.
type staff struct {
	session
	user  registry.User
	roles []string
}

func (st staff) view(title string) *view {
	return &view{Title: title, Nav: "admin", CSRF: st.CSRF, Who: st.user.Username, Staff: true}
}

// may asks the policy whether the user may act, for a practice ("" for
// none); a practice must also be one of the user's.
func (p *Portal) may(st staff, action policy.PortalAction, practice string) bool {
	if practice != "" && !slices.Contains(st.user.Practices, practice) {
		return false
	}
	ok, err := p.cfg.Policy.AllowsPortal(st.roles, action, practice)
	if err != nil {
		p.log.Error("portal: policy", "err", err)
	}
	return ok && err == nil
}

func (p *Portal) rolesOf(ctx context.Context, username string) ([]string, error) {
	r, _, err := p.roles.Get(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return r.Roles, err
}

// requireStaff returns the logged-in staff user, or sends the browser to
// the staff login (ok false). A user suspended since logging in, or left
// without roles, is logged out.
func (p *Portal) requireStaff(w http.ResponseWriter, r *http.Request) (staff, bool) {
	ctx := r.Context()
	s, found, err := p.current(ctx, r, kindStaff)
	if err != nil {
		p.fail(w, r, err)
		return staff{}, false
	}
	if found && s.Subject != "" {
		u, err := p.cfg.Registry.GetUser(ctx, s.Subject)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			p.fail(w, r, err)
			return staff{}, false
		}
		roles, err := p.rolesOf(ctx, s.Subject)
		if err != nil {
			p.fail(w, r, err)
			return staff{}, false
		}
		if u.Status == registry.StatusActive && u.Kind == registry.UserStaff && len(roles) > 0 {
			return staff{session: s, user: u, roles: roles}, true
		}
	}
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return staff{}, false
}

// adminLogin serves POST /admin/login: a staff user of the registry with
// a portal role. Every refusal reads the same.
func (p *Portal) adminLogin(w http.ResponseWriter, r *http.Request) {
	form, s, ok := p.checkForm(w, r, kindStaff)
	if !ok {
		return
	}
	ctx := r.Context()
	username := registry.NormalizeUsername(form.Get("username"))
	v := &view{Title: "Staff log in", Nav: "admin", CSRF: s.CSRF, Staff: true, Form: url.Values{"username": {form.Get("username")}}}
	if !p.limiter.allow(p.cfg.Now(), "login ip "+clientIP(r), "login staff "+username) {
		v.Error = tooMany
		p.render(w, r, http.StatusTooManyRequests, "admin_login", v)
		return
	}
	u, err := p.cfg.Registry.Login(ctx, username, form.Get("password"))
	if err != nil && !errors.Is(err, registry.ErrBadCredentials) && !errors.Is(err, registry.ErrNotActive) {
		p.fail(w, r, err)
		return
	}
	var roles []string
	if err == nil && u.Kind == registry.UserStaff {
		if roles, err = p.rolesOf(ctx, u.Username); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	if len(roles) == 0 {
		v.Error = "The username or the password is not right, or the account may not review applications."
		p.render(w, r, http.StatusUnauthorized, "admin_login", v)
		return
	}
	if _, err := p.start(ctx, w, r, kindStaff, u.Username); err != nil {
		p.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

// adminHome serves GET /admin: for reviewers, the requests by status;
// for practice administrators, the apps that name their practices.
func (p *Portal) adminHome(w http.ResponseWriter, r *http.Request) {
	st, ok := p.requireStaff(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	v := st.view("Review applications")
	seen := map[string]bool{}
	add := func(apps []Application) {
		for _, a := range apps {
			if !seen[a.ID] {
				seen[a.ID] = true
				v.Apps = append(v.Apps, a)
			}
		}
	}
	if p.may(st, policy.ReviewRegistration, "") {
		v.CanReview = true
		all, _, err := p.apps.Find(ctx, "record", "application")
		if err != nil {
			p.fail(w, r, err)
			return
		}
		add(all)
	}
	for _, pin := range st.user.Practices {
		if !p.may(st, policy.ConsentRegistration, pin) {
			continue
		}
		v.Consent = append(v.Consent, pin)
		apps, _, err := p.apps.Find(ctx, "practices", pin)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		add(apps)
	}
	// Pending first, then newest first.
	sortBy(v.Apps, func(a, b Application) bool {
		if (a.Status == StatusPending) != (b.Status == StatusPending) {
			return a.Status == StatusPending
		}
		return a.Created.After(b.Created)
	})
	p.render(w, r, http.StatusOK, "admin", v)
}

// adminApp loads the application in the path if the staff user may see
// it: reviewers see all, practice administrators those naming their
// practices.
func (p *Portal) adminApp(w http.ResponseWriter, r *http.Request, st staff) (Application, *view, bool) {
	a, _, err := p.apps.Get(r.Context(), r.PathValue("id"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.fail(w, r, err)
		return a, nil, false
	}
	v := st.view(a.Name)
	v.App = &a
	v.CanReview = p.may(st, policy.ReviewRegistration, "")
	for _, c := range a.Consents {
		if p.may(st, policy.ConsentRegistration, c.PIN) {
			v.Consent = append(v.Consent, c.PIN)
		}
	}
	if err != nil || (!v.CanReview && len(v.Consent) == 0) {
		p.render(w, r, http.StatusNotFound, "message", &view{Title: "Application not found", Staff: true, Who: st.user.Username, CSRF: st.CSRF, Error: "There is no such application, or not one of your practices'."})
		return a, nil, false
	}
	return a, v, true
}

// adminApplication serves GET /admin/applications/{id}.
func (p *Portal) adminApplication(w http.ResponseWriter, r *http.Request) {
	st, ok := p.requireStaff(w, r)
	if !ok {
		return
	}
	if _, v, ok := p.adminApp(w, r, st); ok {
		p.render(w, r, http.StatusOK, "admin_app", v)
	}
}

// adminPost checks a staff form and loads the application.
func (p *Portal) adminPost(w http.ResponseWriter, r *http.Request) (url.Values, staff, Application, *view, bool) {
	form, _, ok := p.checkForm(w, r, kindStaff)
	if !ok {
		return nil, staff{}, Application{}, nil, false
	}
	st, ok := p.requireStaff(w, r)
	if !ok {
		return nil, staff{}, Application{}, nil, false
	}
	a, v, ok := p.adminApp(w, r, st)
	return form, st, a, v, ok
}

const maxReason = 1000

// review serves POST /admin/applications/{id}/review (decision approve
// or reject, reason): a reviewer approves a pending request (it becomes
// ACTIVE, a registry client consented by the practices that confirmed so
// far) or rejects it with a reason the developer sees.
func (p *Portal) review(w http.ResponseWriter, r *http.Request) {
	form, st, a, v, ok := p.adminPost(w, r)
	if !ok {
		return
	}
	if !v.CanReview {
		p.render(w, r, http.StatusForbidden, "message", &view{Title: "Not allowed", Staff: true, Who: st.user.Username, Error: "Your roles do not include reviewing applications."})
		return
	}
	if ownRequest(st.user, a) {
		p.render(w, r, http.StatusForbidden, "message", &view{Title: "Not allowed", Staff: true, Who: st.user.Username, CSRF: st.CSRF, Error: "You submitted or requested this application: another reviewer reviews it."})
		return
	}
	decision, reason := form.Get("decision"), strings.TrimSpace(form.Get("reason"))
	v.Form = url.Values{"reason": {reason}}
	v.Errors = map[string]string{}
	switch {
	case a.Status != StatusPending:
		v.Error = "This application is " + a.Status.Label() + ": only pending requests are reviewed."
	case decision != "approve" && decision != "reject":
		v.Error = "Choose approve or reject."
	case decision == "reject" && reason == "":
		v.Errors["reason"] = "Give the reason for the rejection: the developer sees it."
	case len(reason) > maxReason:
		v.Errors["reason"] = "Use at most 1000 characters."
	}
	if v.Error != "" || len(v.Errors) > 0 {
		p.render(w, r, http.StatusBadRequest, "admin_app", v)
		return
	}
	ctx := r.Context()
	to, clientID := StatusRejected, ""
	if decision == "approve" {
		to = StatusActive
		var err error
		if clientID, err = p.activate(r, a); err != nil {
			var ve *registry.ValidationError
			if errors.As(err, &ve) {
				v.Error = "The app cannot be registered as it is: " + ve.Error()
				p.render(w, r, http.StatusBadRequest, "admin_app", v)
				return
			}
			p.fail(w, r, err)
			return
		}
	}
	a, err := p.transition(ctx, a.ID, StatusPending, to, st.user.Username, reason, func(x *Application) { x.ClientID = clientID })
	if err != nil {
		if clientID != "" { // someone else reviewed it meanwhile: the client made here must not work
			if _, serr := p.cfg.Registry.SetClientStatus(ctx, clientID, registry.StatusSuspended); serr != nil {
				p.log.Error("portal: suspending the client of a lost review", "client", clientID, "err", serr)
			}
		}
		p.changed(w, r, st, err)
		return
	}
	if to == StatusActive {
		// Consents confirmed between activation and now reach the client.
		if err := p.clientPractices(r, a); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	p.notify(ctx, r, a)
	http.Redirect(w, r, "/admin/applications/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

// ownRequest reports whether a staff user is the application's developer
// or requester, as far as the registry tells: a username that is their
// email. No one reviews their own request.
func ownRequest(u registry.User, a Application) bool {
	me := normalizeEmail(u.Username)
	return me == normalizeEmail(a.Developer) || me == normalizeEmail(a.Requester.Email)
}

// transition changes an application's status from one to another and
// records who, when and why; a status other than from is a conflict.
func (p *Portal) transition(ctx context.Context, id string, from, to Status, by, reason string, also func(*Application)) (Application, error) {
	return p.apps.Change(ctx, id, time.Time{}, func(x *Application) (bool, error) {
		if x.Status != from {
			return false, fmt.Errorf("portal: application %s is %s, not %s: %w", id, x.Status, from, store.ErrConflict)
		}
		x.Status = to
		if to == StatusRejected || to == StatusSuspended {
			x.Reason = reason
		}
		x.History = append(x.History, StatusChange{Status: to, By: by, At: p.cfg.Now().UTC().Truncate(time.Second), Reason: reason})
		if also != nil {
			also(x)
		}
		return true, nil
	})
}

// notify mails the developer the application's new status.
func (p *Portal) notify(ctx context.Context, r *http.Request, a Application) {
	body := "Your application " + a.Name + " is now " + a.Status.Label() + "."
	if a.Reason != "" && a.Status != StatusActive {
		body += "\nReason: " + a.Reason
	}
	u := p.root(r) + "/portal/applications/" + url.PathEscape(a.ID)
	p.send(ctx, Message{To: a.Developer, Subject: "Application " + a.Status.Label(), Body: body + "\n\n" + u, Link: u})
}

// consent serves POST /admin/applications/{id}/consent (pin): a practice
// administrator confirms the practice's consent. An active app's client
// then reaches that practice's data.
func (p *Portal) consent(w http.ResponseWriter, r *http.Request) {
	form, st, a, v, ok := p.adminPost(w, r)
	if !ok {
		return
	}
	pin := registry.NormalizePIN(form.Get("pin"))
	if !slices.Contains(v.Consent, pin) {
		p.render(w, r, http.StatusForbidden, "message", &view{Title: "Not allowed", Staff: true, Who: st.user.Username, Error: "You do not administer that practice, or the application does not name it."})
		return
	}
	if a.Status == StatusRejected || a.Status == StatusSuspended {
		v.Error = "This application is " + a.Status.Label() + ": consent cannot be given."
		p.render(w, r, http.StatusBadRequest, "admin_app", v)
		return
	}
	now := p.cfg.Now().UTC().Truncate(time.Second)
	a, err := p.apps.Change(r.Context(), a.ID, time.Time{}, func(x *Application) (bool, error) {
		for i := range x.Consents {
			if x.Consents[i].PIN == pin && !x.Consents[i].Confirmed {
				x.Consents[i] = Consent{PIN: pin, Name: x.Consents[i].Name, Confirmed: true, ConfirmedBy: st.user.Username, ConfirmedAt: now}
				x.History = append(x.History, StatusChange{Status: x.Status, Event: "consent " + pin, By: st.user.Username, At: now, Reason: "practice " + pin + " consented"})
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if a.Status == StatusActive {
		if err := p.clientPractices(r, a); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/admin/applications/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

// suspend serves POST /admin/applications/{id}/suspend (reason): a
// reviewer suspends an active app; its client stops authenticating and
// its tokens stop being issued.
func (p *Portal) suspend(w http.ResponseWriter, r *http.Request) {
	form, st, a, v, ok := p.adminPost(w, r)
	if !ok {
		return
	}
	if !v.CanReview || !p.may(st, policy.SuspendRegistration, "") {
		p.render(w, r, http.StatusForbidden, "message", &view{Title: "Not allowed", Staff: true, Who: st.user.Username, Error: "Your roles do not include suspending applications."})
		return
	}
	reason := strings.TrimSpace(form.Get("suspend_reason"))
	v.Errors = map[string]string{}
	switch {
	case a.Status != StatusActive:
		v.Error = "Only active applications are suspended."
	case reason == "":
		v.Errors["suspend_reason"] = "Give the reason for the suspension: the developer sees it."
	case len(reason) > maxReason:
		v.Errors["suspend_reason"] = "Use at most 1000 characters."
	}
	if v.Error != "" || len(v.Errors) > 0 {
		v.Form = url.Values{"suspend_reason": {reason}}
		p.render(w, r, http.StatusBadRequest, "admin_app", v)
		return
	}
	ctx := r.Context()
	if _, err := p.cfg.Registry.SetClientStatus(ctx, a.ClientID, registry.StatusSuspended); err != nil {
		p.fail(w, r, err)
		return
	}
	a, err := p.transition(ctx, a.ID, StatusActive, StatusSuspended, st.user.Username, reason, nil)
	if err != nil {
		p.changed(w, r, st, err)
		return
	}
	p.notify(ctx, r, a)
	http.Redirect(w, r, "/admin/applications/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

// changed answers a status change that lost a race with another
// reviewer's (409), or fails.
func (p *Portal) changed(w http.ResponseWriter, r *http.Request, st staff, err error) {
	if !errors.Is(err, store.ErrConflict) {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusConflict, "message", &view{Title: "The application changed", Staff: true, Who: st.user.Username, CSRF: st.CSRF,
		Error: "Someone else changed this application meanwhile. Go back to the list and look at it again."})
}

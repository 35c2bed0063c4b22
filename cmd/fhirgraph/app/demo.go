package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/portal"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/graph/dashboard"
	"github.com/fhirgraph/fhirgraph/store"
)

// The demo's users and apps: a patient and a practitioner of the demo
// practice who log in at /oauth/authorize, and one app of each kind. The
// apps' redirect and launch URLs are an app a developer runs at
// localhost:9000.
const (
	demoPassword     = "Demo-pass1!"
	demoPatientUser  = "patient"
	demoDoctorUser   = "doctor"
	demoPatient      = "p0001"
	demoPractitioner = "prac-0001"
	demoAppURL       = "http://localhost:9000"
)

var demoClients = []registry.ClientSpec{
	{Name: "Demo patient app", Kind: registry.KindPublic, Scope: "launch/patient openid fhirUser offline_access patient/*.rs",
		RedirectURIs: []string{demoAppURL + "/callback"}, LaunchURL: demoAppURL + "/launch"},
	{Name: "Demo clinician app", Kind: registry.KindConfidential, Secret: true,
		Scope:        "launch launch/patient openid fhirUser offline_access online_access user/*.rs patient/*.rs",
		RedirectURIs: []string{demoAppURL + "/callback"}, LaunchURL: demoAppURL + "/launch"},
	{Name: "Demo backend service", Kind: registry.KindBackend, Secret: true, Scope: "system/*.rs"},
}

// demoAccess registers the demo users and apps in a store that has none
// (practice and data exist: see loadDemo) and writes how to use them to
// out; on a store that has them it says so, since secrets are shown once.
func demoAccess(ctx context.Context, st store.Store, root string, out io.Writer) error {
	reg := registry.New(st, registry.Options{})
	if _, err := reg.GetUser(ctx, demoPatientUser); err == nil {
		fmt.Fprintf(out, "  demo users %q and %q (password %s) and the demo apps were registered before; `fhirgraph client list` shows them\n", demoPatientUser, demoDoctorUser, demoPassword)
		return nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	users := []registry.UserSpec{
		{Username: demoPatientUser, Password: demoPassword, Kind: registry.UserPatient, Patient: demoPatient},
		{Username: demoDoctorUser, Password: demoPassword, Kind: registry.UserPractitioner, Practitioner: demoPractitioner, Practices: []string{demoPractice}},
	}
	for _, u := range users {
		if _, err := reg.CreateUser(ctx, u); err != nil {
			return fmt.Errorf("demo user %s: %w", u.Username, err)
		}
	}
	fmt.Fprintf(out, "  demo users: %q (Patient/%s) and %q (Practitioner/%s of %s), password %s\n", demoPatientUser, demoPatient, demoDoctorUser, demoPractitioner, demoPractice, demoPassword)
	for _, spec := range demoClients {
		spec.Dev, spec.Practices = true, []string{demoPractice}
		c, secret, err := reg.CreateClient(ctx, spec)
		if err != nil {
			return fmt.Errorf("demo app %q: %w", spec.Name, err)
		}
		fmt.Fprintf(out, "  %s: client_id %s", c.Name, c.ID)
		if secret != "" {
			fmt.Fprintf(out, ", client_secret %s (shown once)", secret)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "  apps sign in at %s/oauth/authorize (discovery: %s/fhir/.well-known/smart-configuration); the EHR launch page is %s/oauth/ehr\n", root, root, root)
	fmt.Fprintf(out, "  backend: curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials -d scope=system/Patient.rs %s/oauth/token\n", root)
	return nil
}

// The demo's staff dashboard (/dashboard/): a staff user of the demo
// practice, and the dashboard's public client.
const (
	demoStaffUser     = "staff"
	demoDashboardName = "Staff dashboard (demo)"
)

// demoDashboard registers the demo staff user and the dashboard's client
// for the server at root unless they exist, and returns the client's id.
// The registry chooses client ids, so a later start finds the client by
// its name and redirect URI; a start at another URL registers another.
func demoDashboard(ctx context.Context, st store.Store, root string) (string, error) {
	reg := registry.New(st, registry.Options{})
	if _, err := reg.GetUser(ctx, demoStaffUser); errors.Is(err, registry.ErrNotFound) {
		spec := registry.UserSpec{Username: demoStaffUser, Password: demoPassword, Kind: registry.UserStaff, Practices: []string{demoPractice}}
		if _, err := reg.CreateUser(ctx, spec); err != nil {
			return "", fmt.Errorf("demo user %s: %w", demoStaffUser, err)
		}
	} else if err != nil {
		return "", err
	}
	redirect := root + "/dashboard/"
	clients, err := reg.ClientsByPractice(ctx, demoPractice)
	if err != nil {
		return "", err
	}
	for _, c := range clients {
		if c.Name == demoDashboardName && c.Status == registry.StatusActive && slices.Contains(c.RedirectURIs, redirect) {
			return c.ID, nil
		}
	}
	c, _, err := reg.CreateClient(ctx, registry.ClientSpec{
		Name: demoDashboardName, Kind: registry.KindPublic, Scope: dashboard.DefaultScope,
		RedirectURIs: []string{redirect}, Practices: []string{demoPractice}, Dev: true,
	})
	if err != nil {
		return "", fmt.Errorf("demo app %q: %w", demoDashboardName, err)
	}
	return c.ID, nil
}

// The developer portal's demo: a second practice with its own patients,
// so that consent visibly separates data; a clinician of both practices;
// a reviewer; and each practice's administrator.
const (
	demoPractice2     = "HARBOR"
	demoClinician     = "clinician"
	demoReviewer      = "reviewer"
	demoLakeshoreAdm  = "lakeshore-admin"
	demoHarborAdmin   = "harbor-admin"
	demoHarborPatient = 5
)

// demoPortal creates the second demo practice with a few patients, and
// the portal's demo staff, unless they exist, and prints how to use the
// portal.
func demoPortal(ctx context.Context, st store.Store, p *portal.Portal, root string, out io.Writer) error {
	reg := registry.New(st, registry.Options{})
	_, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: "Harbor Family Medicine (demo)", PIN: demoPractice2})
	switch {
	case err == nil:
		if _, err := ingest.Load(ctx, st, harborPatients, ingest.Options{Strict: true, Practice: demoPractice2}); err != nil {
			return fmt.Errorf("demo data of %s: %w", demoPractice2, err)
		}
	case !errors.Is(err, registry.ErrExists):
		return fmt.Errorf("demo practice %s: %w", demoPractice2, err)
	}
	users := []struct {
		spec  registry.UserSpec
		roles []string
	}{
		{registry.UserSpec{Username: demoClinician, Kind: registry.UserPractitioner, Practitioner: demoPractitioner, Practices: []string{demoPractice, demoPractice2}}, nil},
		{registry.UserSpec{Username: demoReviewer, Kind: registry.UserStaff, Practices: []string{demoPractice}}, []string{policy.RoleReviewer}},
		{registry.UserSpec{Username: demoLakeshoreAdm, Kind: registry.UserStaff, Practices: []string{demoPractice}}, []string{policy.RolePracticeAdmin}},
		{registry.UserSpec{Username: demoHarborAdmin, Kind: registry.UserStaff, Practices: []string{demoPractice2}}, []string{policy.RolePracticeAdmin}},
	}
	for _, u := range users {
		u.spec.Password = demoPassword
		if _, err := reg.CreateUser(ctx, u.spec); err != nil && !errors.Is(err, registry.ErrExists) {
			return fmt.Errorf("demo user %s: %w", u.spec.Username, err)
		}
		if len(u.roles) > 0 {
			if err := p.GrantRoles(ctx, u.spec.Username, u.roles...); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "  developer portal: %s/portal/signup (mail goes to the outbox; its links are in the log); practices %s and %s (%d patients)\n", root, demoPractice, demoPractice2, demoHarborPatient)
	fmt.Fprintf(out, "  portal review: %s/admin (log in as %q to review, %q or %q to consent; password %s); %q is a clinician of both practices\n",
		root, demoReviewer, demoLakeshoreAdm, demoHarborAdmin, demoPassword, demoClinician)
	return nil
}

// harborPatients are the second practice's demo patients, h0001….
func harborPatients(emit func(ingest.Item) error) error {
	names := []string{"Rivera", "Okafor", "Lindqvist", "Tanaka", "Moreau"}
	for i := range demoHarborPatient {
		id := fmt.Sprintf("h%04d", i+1)
		obj, err := fhirjson.Parse(fmt.Appendf(nil, `{"resourceType":"Patient","id":%q,"name":[{"family":%q,"given":["Harbor"]}],"gender":"unknown","birthDate":"19%02d-01-15"}`, id, names[i%len(names)], 60+i))
		if err != nil {
			return err
		}
		if err := emit(ingest.Item{Where: "demo", Line: i + 1, Obj: obj}); err != nil {
			return err
		}
	}
	return nil
}

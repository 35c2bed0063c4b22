package policy

import "testing"

func TestPortalRolesDecideWhoReviewsAndWhoConsents(t *testing.T) {
	p := newPolicy(t)
	for _, c := range []struct {
		roles    []string
		action   PortalAction
		practice string
		want     bool
	}{
		{[]string{RoleReviewer}, ReviewRegistration, "", true},
		{[]string{RoleReviewer}, SuspendRegistration, "", true},
		{[]string{RoleReviewer}, ConsentRegistration, "ALPHA", false},
		{[]string{RolePracticeAdmin}, ConsentRegistration, "ALPHA", true},
		{[]string{RolePracticeAdmin}, ReviewRegistration, "", false},
		{[]string{RolePracticeAdmin}, SuspendRegistration, "", false},
		{[]string{"staff"}, ReviewRegistration, "", false},
		{[]string{"practitioner", "patient", "backend"}, ConsentRegistration, "ALPHA", false},
		{nil, ReviewRegistration, "", false},
		{[]string{"staff", RoleReviewer}, ReviewRegistration, "", true},
	} {
		got, err := p.AllowsPortal(c.roles, c.action, c.practice)
		if err != nil || got != c.want {
			t.Errorf("AllowsPortal(%v, %s, %q) = %v, %v; want %v", c.roles, c.action, c.practice, got, err, c.want)
		}
	}
}

// The portal's lines name subjects no token carries and a context no
// scope has: they must not change any FHIR decision.
func TestPortalRolesGrantNoFHIRAccess(t *testing.T) {
	p := newPolicy(t)
	for _, role := range []string{RoleReviewer, RolePracticeAdmin} {
		for _, ctx := range []string{"patient", "user", "system", "portal"} {
			ok, err := p.e.Enforce(role, ctx, "ALPHA", "Patient", string(Read), "r")
			if err != nil || ok {
				t.Errorf("%s through %s reads Patient: %v, %v", role, ctx, ok, err)
			}
		}
	}
}

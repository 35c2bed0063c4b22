package policy

import "fmt"

// PortalAction is something done to an app registration in the developer
// portal's review pages.
type PortalAction string

// Portal actions, as policy.csv names them (its objects).
const (
	// ReviewRegistration approves or rejects a request.
	ReviewRegistration PortalAction = "registration-review"
	// SuspendRegistration suspends an active app.
	SuspendRegistration PortalAction = "registration-suspend"
	// ConsentRegistration confirms a practice's consent to an app.
	ConsentRegistration PortalAction = "registration-consent"
)

// Portal roles given to staff users (the policy's subjects).
const (
	RoleReviewer      = "reviewer"
	RolePracticeAdmin = "practice-admin"
)

// AllowsPortal reports whether one of roles may do action for a practice
// (its PIN, or "" when no practice is concerned). Whether the user
// belongs to that practice is the caller's to check: the policy says
// which roles act, membership is data.
func (p *Policy) AllowsPortal(roles []string, action PortalAction, practice string) (bool, error) {
	dom := practice
	if dom == "" {
		dom = "-"
	}
	for _, role := range roles {
		ok, err := p.e.Enforce(role, "portal", dom, string(action), "*", "*")
		if err != nil {
			return false, fmt.Errorf("policy: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

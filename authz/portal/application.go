package portal

import (
	"strings"
	"time"
)

// Status is where an application is in review.
type Status string

// Statuses: PENDING REVIEW → ACTIVE or REJECTED; ACTIVE → SUSPENDED.
const (
	StatusPending   Status = "pending-review"
	StatusActive    Status = "active"
	StatusRejected  Status = "rejected"
	StatusSuspended Status = "suspended"
)

// Label is the status as pages show it.
func (s Status) Label() string { return strings.ToUpper(strings.ReplaceAll(string(s), "-", " ")) }

// Application is an API registration request and, once approved, the
// app it became, id random:
//
//	{"record": "application", "id": "…", "developer": "ada@example.org",
//	 "org_name": "acme\nvitals viewer", "name": "Vitals viewer", "app_type": "practitioner", …,
//	 "status": "active", "history": [{"status": "pending-review", "by": "ada@…", "at": "…"}, …],
//	 "client_id": "…"}
//
// History records every status change and consent: who, when, why.
type Application struct {
	Record        string    `json:"record"`
	ID            string    `json:"id"`
	Developer     string    `json:"developer"`
	OrgName       string    `json:"org_name"`
	Name          string    `json:"name"`
	AppType       string    `json:"app_type"` // patient or practitioner
	Purpose       string    `json:"purpose"`
	IntendedUsers string    `json:"intended_users"`
	PracticeCount int       `json:"practice_count,omitempty"`
	Requester     Requester `json:"requester"`
	ClientType    string    `json:"client_type"` // confidential-symmetric, confidential-asymmetric or public
	JWKSURL       string    `json:"jwks_url,omitempty"`
	RefreshTokens bool      `json:"refresh_tokens"`
	RedirectURIs  []string  `json:"redirect_uris,omitempty"`
	LaunchType    string    `json:"launch_type"` // standalone, ehr or backend
	LaunchURL     string    `json:"launch_url,omitempty"`
	SMARTVersion  string    `json:"smart_version"` // 1.0.0 or 2.0.0
	Scope         string    `json:"scope"`
	// Consents are the practices named, each with its consent.
	Consents []Consent `json:"consents,omitempty"`
	// PINs lists the practices named, for lookups by practice.
	PINs     []string       `json:"practices,omitempty"`
	Terms    TermsAccepted  `json:"terms"`
	Status   Status         `json:"status"`
	Reason   string         `json:"reason,omitempty"` // of the last rejection or suspension
	History  []StatusChange `json:"history"`
	ClientID string         `json:"client_id,omitempty"`
	// SecretIssued: the developer has been shown a client secret.
	SecretIssued bool      `json:"secret_issued,omitempty"`
	Created      time.Time `json:"created"`
}

// Requester is who asks for access.
type Requester struct {
	Name         string `json:"name"`
	Organization string `json:"organization"`
	Email        string `json:"email"`
	Phone        string `json:"phone"`
}

// Consent is one named practice: the requester says it agreed, and its
// administrator confirms.
type Consent struct {
	PIN         string    `json:"pin"`
	Name        string    `json:"name"`
	Confirmed   bool      `json:"confirmed"`
	ConfirmedBy string    `json:"confirmed_by,omitempty"`
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
}

// TermsAccepted records the acceptance of the API terms.
type TermsAccepted struct {
	Version    string    `json:"version"`
	AcceptedAt time.Time `json:"accepted_at"`
}

// StatusChange is one entry of an application's history.
type StatusChange struct {
	Status Status    `json:"status"`
	Event  string    `json:"event,omitempty"` // what happened besides a status change ("consent DASHA")
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Confirmed returns the PINs of the practices that confirmed consent.
func (a Application) Confirmed() []string {
	var out []string
	for _, c := range a.Consents {
		if c.Confirmed {
			out = append(out, c.PIN)
		}
	}
	return out
}

// Backend reports whether the app is a back-end service.
func (a Application) Backend() bool { return a.LaunchType == "backend" }

// orgName is the key that finds applications of the same organization
// and name.
func orgName(org, name string) string {
	return strings.ToLower(strings.Join(strings.Fields(org), " ")) + "\n" + strings.ToLower(strings.Join(strings.Fields(name), " "))
}

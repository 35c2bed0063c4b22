package smart

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// The authorization server's platform records. Secrets (session cookies,
// codes, refresh tokens) are never stored: a record's id is the hex
// SHA-256 of the secret, so a copy of the store cannot be replayed.
var (
	// sessionsDef: one record per browser session (see session).
	sessionsDef = store.CollectionDef{Name: "smart_sessions"}
	// requestsDef: authorization requests between /oauth/authorize and
	// the code (see authRequest), id random, not secret.
	requestsDef = store.CollectionDef{Name: "smart_requests"}
	// codesDef: authorization codes (see authCode).
	codesDef = store.CollectionDef{Name: "smart_codes"}
	// refreshDef: refresh tokens (see refreshToken), found by family to
	// revoke a whole grant.
	refreshDef = store.CollectionDef{Name: "smart_refresh_tokens", Keys: []string{"family"}}
	// launchesDef: EHR launch contexts (see launchContext), id = the
	// launch parameter.
	launchesDef = store.CollectionDef{Name: "smart_launches"}
)

// session is a browser session at the authorization server:
//
//	{"user": "alice", "csrf": "…", "created": "…", "auth_time": "…", "exp": "…"}
//
// User is empty until the browser logs in; logging in replaces the
// session by a new one (new cookie, new CSRF token). The record expires
// with the session.
type session struct {
	ID       string    `json:"-"` // the record id (hash of the cookie)
	Rev      int64     `json:"-"`
	User     string    `json:"user,omitempty"`
	CSRF     string    `json:"csrf"`
	Created  time.Time `json:"created"`
	AuthTime time.Time `json:"auth_time,omitzero"`
	Exp      time.Time `json:"exp"`
}

// authRequest is a validated authorization request, waiting for the user
// to log in, pick a patient (and an encounter) and approve:
//
//	{"session": "<session id>", "client": "…", "redirect_uri": "…", "state": "…",
//	 "scope": "<requested ∩ allowed>", "challenge": "…", "nonce": "…",
//	 "patient": "…", "encounter": "…", "encounter_done": true, "launch_user": "…", "exp": "…"}
//
// It is bound to the browser session that made it (moved to the new
// session at login), and expires after requestLifetime.
type authRequest struct {
	ID          string `json:"-"`
	Rev         int64  `json:"-"`
	Session     string `json:"session"`
	Client      string `json:"client"`
	RedirectURI string `json:"redirect_uri"`
	State       string `json:"state,omitempty"`
	Scope       string `json:"scope"`
	Challenge   string `json:"challenge"`
	Nonce       string `json:"nonce,omitempty"`
	Patient     string `json:"patient,omitempty"`
	Encounter   string `json:"encounter,omitempty"`
	LaunchUser  string `json:"launch_user,omitempty"` // the EHR user who made the launch
	Launched    bool   `json:"launched,omitempty"`    // an EHR launch
	// EncounterDone: the standalone encounter step is over (Encounter
	// chosen, or none because the patient has none in reach).
	EncounterDone bool      `json:"encounter_done,omitempty"`
	Exp           time.Time `json:"exp"`
}

// authCode is an authorization code's record, id = hash of the code. It
// is valid until Exp (codeLifetime) and kept codeRetention longer so that
// a second use is recognized and revokes what the first one issued
// (AccessJTI, and the refresh-token family named by the record id).
type authCode struct {
	Rev          int64     `json:"-"`
	Client       string    `json:"client"`
	RedirectURI  string    `json:"redirect_uri"`
	Challenge    string    `json:"challenge"`
	Grant        grant     `json:"grant"`
	Session      string    `json:"session"`
	Nonce        string    `json:"nonce,omitempty"`
	Exp          time.Time `json:"exp"`
	Used         bool      `json:"used,omitempty"`
	AccessJTI    string    `json:"access_jti,omitempty"`
	AccessExp    time.Time `json:"access_exp,omitzero"`
	RefreshToken string    `json:"refresh_id,omitempty"` // the record id of the refresh token issued
}

// grant is what a user approved for a client, carried from the code to
// each refresh.
type grant struct {
	User      string `json:"user"`
	Scope     string `json:"scope"`
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
	Banner    bool   `json:"need_patient_banner,omitempty"`
}

// refreshToken is a refresh token's record, id = hash of the token:
//
//	{"family": "<code record id>", "client": "…", "grant": {…}, "session": "…",
//	 "online": false, "exp": "…", "rotated": false, "access_jti": "…", "access_exp": "…"}
//
// Rotation marks the record rotated (kept until it expires) and creates
// the next one in the same family, so that a rotated token presented
// again is recognized as stolen and the whole family is revoked.
type refreshToken struct {
	ID        string    `json:"-"`
	Rev       int64     `json:"-"`
	Family    string    `json:"family"`
	Client    string    `json:"client"`
	Grant     grant     `json:"grant"`
	Session   string    `json:"session,omitempty"` // online_access: valid while this session lives
	Online    bool      `json:"online,omitempty"`
	Exp       time.Time `json:"exp"`
	Rotated   bool      `json:"rotated,omitempty"`
	AccessJTI string    `json:"access_jti,omitempty"`
	AccessExp time.Time `json:"access_exp,omitzero"`
}

// launchContext is an EHR launch, id = the launch parameter, single use,
// expiring after launchLifetime:
//
//	{"client": "…", "patient": "…", "encounter": "…", "user": "…", "exp": "…"}
type launchContext struct {
	Client    string    `json:"client"`
	Patient   string    `json:"patient"`
	Encounter string    `json:"encounter,omitempty"`
	User      string    `json:"user"`
	Exp       time.Time `json:"exp"`
}

// secret returns a new random secret (256 bits, hex).
func secret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// hashID is the record id of a secret.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

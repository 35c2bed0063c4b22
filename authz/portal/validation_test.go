package portal

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// fieldError reports whether a page shows msg as the error of field,
// next to it: the message element, and the field described by it.
func fieldError(body, field, msg string) bool {
	shown := html.UnescapeString(between(body, `id="`+field+`-error">`, `</p>`))
	return (shown == msg || strings.HasSuffix(msg, ": ") && strings.HasPrefix(shown, msg)) &&
		(strings.Contains(body, `aria-describedby="`+field+`-error"`) || strings.Contains(body, ` `+field+`-error"`))
}

func TestSignupShowsEachProblemNextToItsField(t *testing.T) {
	e := newEnv(t)
	good := url.Values{"name": {"Ada Dev"}, "organization": {"Acme"}, "email": {"ada@example.org"}, "password": {devPass}, "password_confirm": {devPass}}
	for _, c := range []struct {
		field, value, msg string
	}{
		{"name", "", "Enter your name."},
		{"name", strings.Repeat("n", 201), "Use at most 200 characters."},
		{"organization", "", "Enter your organization."},
		{"organization", "Acme\x07", "Use only printable characters."},
		{"email", "", "Enter your email address."},
		{"email", "ada@", "Enter an email address like name@example.org."},
		{"email", "Ada <ada@example.org>", "Enter an email address like name@example.org."},
		{"email", "ada@localhost", "Enter an email address like name@example.org."},
		{"password", "Sh0rt!", "Use at least 8 characters."},
		{"password", "no-capitals-here!", "Include at least one capital letter (A to Z)."},
		{"password", "NoSpecials123", "Include at least one special character, such as ! ? # or -."},
		{"password", "P@ssw0rd123!", "This password is one of the most common ones. Choose one that is harder to guess."},
		{"password", "Welcome2024!", "This password is one of the most common ones. Choose one that is harder to guess."},
		{"password_confirm", "Other-pass-9!", "The two passwords are not the same."},
	} {
		t.Run(c.field+"="+c.value, func(t *testing.T) {
			f := url.Values{}
			for k, v := range good {
				f[k] = v
			}
			f.Set(c.field, c.value)
			if c.field == "password" {
				f.Set("password_confirm", c.value)
			}
			pg := e.browser().submit("/portal/signup", "/portal/signup", f)
			if pg.status != http.StatusBadRequest || !fieldError(pg.body, c.field, c.msg) {
				t.Errorf("%d; want the message %q next to %s:\n%s", pg.status, c.msg, c.field, pg.body)
			}
			if strings.Contains(pg.body, c.value) && c.field == "password" {
				t.Error("the page shows the password back")
			}
		})
	}
	if recs, _, _ := e.p.developers.Find(context.Background(), "record", "developer"); len(recs) != 0 {
		t.Errorf("invalid sign-ups saved %d accounts", len(recs))
	}
}

func TestPasswordPolicy(t *testing.T) {
	for pw, ok := range map[string]bool{
		"Vitals-Dev-42!": true, "Correct Horse Battery!": true, "Ünïcode-Pässwörd": true,
		"Password1!": false, "Passw0rd!": false, "Qwerty123!": false, "Letmein!!": false, "Admin@123": false,
		"Abcdefg!": false, "abcdefg!": false, "ABCDEFGH": false, "Abc!": false,
	} {
		if got := passwordProblem(pw, "") == ""; got != ok {
			t.Errorf("%q accepted = %v, want %v (%s)", pw, got, ok, passwordProblem(pw, ""))
		}
	}
}

// TestRequestFormShowsEachProblemNextToItsField submits the registration
// form with one thing wrong at a time: each time the message is next to
// the field, the page says the request was not submitted, and nothing is
// saved.
func TestRequestFormShowsEachProblemNextToItsField(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/keys":
			w.Write([]byte(`{"keys":[{"kty":"EC","crv":"P-384","x":"x","y":"y"}]}`))
		case "/empty":
			w.Write([]byte(`{"keys":[]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer jwks.Close()
	backend := func(f url.Values) {
		f.Set("launch_type", "backend")
		f.Del("launch_url")
		f.Del("redirect_uris")
		f.Set("client_type", "confidential-asymmetric")
		f.Set("jwks_url", jwks.URL+"/keys")
		f.Set("refresh_token", "no")
		f.Set("scope", "system/Patient.rs system/Observation.rs")
	}
	patientApp := func(f url.Values) {
		f.Set("app_type", "patient")
		f.Del("launch_type")
		f.Del("launch_url")
		f.Del("practice_count")
		f.Del("practice_pin_1")
		f.Del("practice_agreed_1")
		f.Set("scope", "launch/patient openid fhirUser patient/Observation.rs")
	}
	type change func(url.Values)
	set := func(k, v string) change { return func(f url.Values) { f.Set(k, v) } }
	del := func(k string) change { return func(f url.Values) { f.Del(k) } }
	cases := []struct {
		name   string
		dev    bool
		change []change
		field  string
		msg    string
	}{
		{"no name", true, []change{del("app_name")}, "app_name", "Enter the application's name."},
		{"no type", true, []change{del("app_type")}, "app_type", "Choose whether the app is for patients or for practitioners."},
		{"no purpose", true, []change{del("purpose")}, "purpose", "Describe the app's intended purpose."},
		{"no users", true, []change{del("intended_users")}, "intended_users", "Describe who the intended users are."},
		{"no practice count", true, []change{del("practice_count")}, "practice_count", "Enter how many practices the app is for: a whole number from 1 to 20."},
		{"practice count 0", true, []change{set("practice_count", "0")}, "practice_count", "Enter how many practices the app is for: a whole number from 1 to 20."},
		{"count and PINs differ", true, []change{set("practice_count", "2")}, "practice_count", "You said 2 practices but gave 1 PINs."},
		{"no requester name", true, []change{del("requester_name")}, "requester_name", "Enter the requester's name."},
		{"no requester organization", true, []change{del("requester_organization")}, "requester_organization", "Enter the requester's organization."},
		{"bad requester email", true, []change{set("requester_email", "ada.example.org")}, "requester_email", "Enter an email address like name@example.org."},
		{"no phone", true, []change{del("requester_phone")}, "requester_phone", "Enter a phone number."},
		{"bad phone", true, []change{set("requester_phone", "call me")}, "requester_phone", "Enter a phone number of 7 to 15 digits (spaces and + ( ) - . / allowed)."},
		{"no client type", true, []change{del("client_type")}, "client_type", "Choose how the app authenticates: a shared secret, a public key, or none (public app)."},
		{"key client without JWKS", true, []change{set("client_type", "confidential-asymmetric")}, "jwks_url", "Enter the https URL where the app publishes its public keys (JWKS)."},
		{"JWKS on a secret client", true, []change{set("jwks_url", jwks.URL+"/keys")}, "jwks_url", "Give a JWKS URL only for apps that authenticate with a public key."},
		{"JWKS over http", false, []change{backend, set("jwks_url", "http://keys.example.org/jwks")}, "jwks_url", `The JWKS URL "http://keys.example.org/jwks" must use https (http is accepted only in development mode).`},
		{"JWKS unreachable", true, []change{backend, set("jwks_url", "http://127.0.0.1:1/jwks")}, "jwks_url", "The JWKS URL could not be reached. It must answer from a public https address."},
		{"JWKS not found", true, []change{backend, set("jwks_url", jwks.URL+"/none")}, "jwks_url", "The JWKS URL answered HTTP 404, not 200."},
		{"JWKS without keys", true, []change{backend, set("jwks_url", jwks.URL+"/empty")}, "jwks_url", "The JWKS URL did not answer a JSON Web Key Set with at least one key."},
		{"no refresh choice", true, []change{del("refresh_token")}, "refresh_token", "Choose whether the app uses refresh tokens."},
		{"no redirect URI", true, []change{del("redirect_uris")}, "redirect_uris", "Enter at least one redirect URI (https)."},
		{"http redirect URI", false, []change{set("redirect_uris", "http://app.example.org/callback")}, "redirect_uris", `The redirect URI "http://app.example.org/callback" must use https (http is accepted only in development mode).`},
		{"localhost redirect URI", false, []change{set("redirect_uris", "https://localhost/callback")}, "redirect_uris", `The redirect URI "https://localhost/callback" must name a public host (loopback and private addresses are accepted only in development mode).`},
		{"loopback redirect URI", false, []change{set("redirect_uris", "https://127.0.0.1/callback")}, "redirect_uris", `The redirect URI "https://127.0.0.1/callback" must name a public host (loopback and private addresses are accepted only in development mode).`},
		{"private redirect URI", false, []change{set("redirect_uris", "https://10.1.2.3/callback")}, "redirect_uris", `The redirect URI "https://10.1.2.3/callback" must name a public host (loopback and private addresses are accepted only in development mode).`},
		{"back end with redirect URI", true, []change{backend, set("redirect_uris", "https://app.example.org/cb")}, "redirect_uris", "Back-end services have no redirect URI: leave this empty."},
		{"back end with a secret", true, []change{backend, set("client_type", "confidential-symmetric"), del("jwks_url")}, "client_type", "Back-end services authenticate with a public key: choose confidential with a public key (JWKS URL)."},
		{"no launch type", true, []change{del("launch_type")}, "launch_type", "Choose standalone launch, EHR launch or back-end service."},
		{"EHR launch without URL", true, []change{del("launch_url")}, "launch_url", "Enter the launch URL: an EHR launch opens the app there."},
		{"launch URL over http", false, []change{set("launch_url", "http://app.example.org/launch")}, "launch_url", `The launch URL "http://app.example.org/launch" must use https (http is accepted only in development mode).`},
		{"launch URL on standalone", true, []change{set("launch_type", "standalone")}, "launch_url", "Give a launch URL only for EHR launch apps."},
		{"no SMART version", true, []change{del("smart_version")}, "smart_version", "Choose SMART 1.0.0 or 2.0.0 scopes."},
		{"no scopes", true, []change{del("scope")}, "scope", "Enter the scopes the app needs, separated by spaces."},
		{"v1 scope in a v2 app", true, []change{set("scope", "launch openid user/Patient.read")}, "scope", "user/Patient.read is a SMART 1.0.0 scope, but the app uses SMART 2.0.0 scopes: use one version only."},
		{"v2 scope in a v1 app", true, []change{set("smart_version", "1.0.0"), set("scope", "launch user/Patient.read user/Observation.rs")}, "scope", "user/Observation.rs is a SMART 2.0.0 scope, but the app uses SMART 1.0.0 scopes: use one version only."},
		{"malformed scope", true, []change{set("scope", "launch user/Observation.xyz")}, "scope", `The scope user/Observation.xyz is not valid: `},
		{"patient scope on a back end", true, []change{backend, set("scope", "system/Patient.rs patient/Observation.rs")}, "scope", "Back-end services use system/ scopes only: remove patient/Observation.rs."},
		{"system scope on a patient app", true, []change{patientApp, set("scope", "launch/patient patient/Observation.rs system/Patient.rs")}, "scope", "Patient apps cannot use system/ scopes: remove system/Patient.rs."},
		{"system scope on an EHR app", true, []change{set("scope", "launch system/Patient.rs")}, "scope", "Only back-end services use system/ scopes: remove system/Patient.rs, or choose back-end service."},
		{"offline access without refresh tokens", true, []change{set("refresh_token", "no")}, "scope", "The app uses no refresh tokens: remove offline_access, or choose refresh tokens: yes."},
		{"only launch scopes", true, []change{set("scope", "launch openid")}, "scope", "Include at least one resource scope (patient/…, user/… or system/…)."},
		{"unknown PIN", true, []change{set("practice_pin_1", "ZZZZ9")}, "practice_pin_1", "No practice has the PIN ZZZZ9. Ask the practice for its PIN."},
		{"malformed PIN", true, []change{set("practice_pin_1", "a!")}, "practice_pin_1", "A PIN is 4 to 12 letters and digits."},
		{"no PIN", true, []change{del("practice_pin_1"), del("practice_agreed_1")}, "practice_pin_1", "Enter the PIN of at least one practice."},
		{"agreement without PIN", true, []change{set("practice_agreed_2", "yes")}, "practice_pin_2", "Enter the practice's PIN, or untick its agreement."},
		{"practice not agreed", true, []change{del("practice_agreed_1")}, "practice_agreed_1", "Confirm that Practice ALPHA agreed to the app using its data."},
		{"practice twice", true, []change{set("practice_count", "2"), set("practice_pin_2", "alpha"), set("practice_agreed_2", "yes")}, "practice_pin_2", "This practice is listed twice."},
		{"terms not accepted", true, []change{del("accept_terms")}, "accept_terms", "Accept the API terms and conditions to submit the request."},
	}
	envs := map[bool]*env{true: newEnv(t), false: newEnv(t, func(c *Config) { c.Dev = false })}
	devs := map[bool]*browser{true: envs[true].developer("ada@example.org"), false: envs[false].developer("ada@example.org")}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := validApp()
			for _, ch := range c.change {
				ch(f)
			}
			pg := devs[c.dev].submitApp(f)
			if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "The request was not submitted") || !fieldError(pg.body, c.field, c.msg) {
				t.Errorf("%d; want %q next to %s:\n%s", pg.status, c.msg, c.field, between(pg.body, `<main id="main">`, "</main>"))
			}
		})
	}
	for dev, e := range envs {
		if n := len(e.apps(t)); n != 0 {
			t.Errorf("dev=%v: invalid requests saved %d applications", dev, n)
		}
	}
	// The valid variants are accepted.
	e := envs[true]
	for _, variant := range []func(url.Values){func(url.Values) {}, backend, patientApp} {
		f := validApp()
		variant(f)
		f.Set("app_name", "Variant "+f.Get("launch_type")+f.Get("app_type"))
		if pg := devs[true].submitApp(f); pg.status != http.StatusSeeOther {
			t.Errorf("a valid request (%s, %s) is refused: %d %s", f.Get("app_type"), f.Get("launch_type"), pg.status, between(pg.body, `<main id="main">`, "</main>"))
		}
	}
	if n := len(e.apps(t)); n != 3 {
		t.Errorf("%d applications saved, want 3", n)
	}
}

// A request with the organization and name of an existing application
// is shown again with a warning, unsaved, until the developer confirms.
func TestDuplicateOrganizationAndNameIsWarnedAbout(t *testing.T) {
	e := newEnv(t)
	dev := e.developer("ada@example.org")
	if pg := dev.submitApp(validApp()); pg.status != http.StatusSeeOther {
		t.Fatalf("first: %d", pg.status)
	}
	f := validApp()
	f.Set("app_name", "  vitals   VIEWER ")
	f.Set("requester_organization", "ACME health")
	pg := dev.submitApp(f)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `id="duplicate-warning"`) || !strings.Contains(pg.body, `name="confirm_duplicate"`) {
		t.Fatalf("second: %d %s", pg.status, pg.body)
	}
	if n := len(e.apps(t)); n != 1 {
		t.Fatalf("the warned request was saved: %d applications", n)
	}
	f.Set("confirm_duplicate", "yes")
	if pg := dev.submitApp(f); pg.status != http.StatusSeeOther {
		t.Fatalf("confirmed: %d", pg.status)
	}
	if n := len(e.apps(t)); n != 2 {
		t.Fatalf("%d applications, want 2", n)
	}
}

// Unverified accounts log in but cannot submit requests.
func TestUnverifiedDeveloperCannotSubmit(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada"}, "organization": {"Acme"}, "email": {"ada@example.org"}, "password": {devPass}, "password_confirm": {devPass}})
	b.login("ada@example.org", devPass)
	if pg := b.get("/portal/applications/new"); pg.status != http.StatusForbidden || !strings.Contains(pg.body, "Verify your email address before you submit requests") {
		t.Errorf("form for the unverified: %d", pg.status)
	}
	if pg := b.get("/portal/applications"); strings.Contains(pg.body, "tab-new") || !strings.Contains(pg.body, `id="resend"`) {
		t.Errorf("My Applications of the unverified offers the form, or no resend: %s", pg.body)
	}
	pg := b.get("/portal/applications")
	f := validApp()
	f.Set("csrf", pg.csrf())
	if pg := b.do("POST", "/portal/applications/new", f); pg.status != http.StatusForbidden {
		t.Errorf("submission by the unverified: %d", pg.status)
	}
	if n := len(e.apps(t)); n != 0 {
		t.Errorf("%d applications saved", n)
	}
	// Sending the link again works, and the new link verifies.
	b.do("POST", "/portal/verify/resend", url.Values{"csrf": {pg.csrf()}})
	ms, _ := e.p.Outbox(context.Background(), "ada@example.org")
	if len(ms) != 2 || ms[0].Link == ms[1].Link {
		t.Fatalf("outbox %+v", ms)
	}
}

package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/fhirgraph/fhirgraph/authz/internal/addr"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/scope"
)

const (
	maxPractices    = 20
	minPracticeRows = 3
	maxLongText     = 2000
	maxRedirects    = 10
)

// practiceRows is how many practice rows the form shows for a count the
// developer gave (the form works without JavaScript: rows cannot appear
// as the count changes).
func practiceRows(form map[string][]string) []int {
	n := minPracticeRows
	if c, err := strconv.Atoi(strings.TrimSpace(first(form, "practice_count"))); err == nil && c > n {
		n = min(c, maxPractices)
	}
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i + 1
	}
	return rows
}

func first(form map[string][]string, k string) string {
	if v := form[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

var phoneRE = regexp.MustCompile(`^\+?[0-9 ()./-]+$`)

// checkApplication validates the registration form and returns the
// application it describes (without id, status and history) and the
// problems, keyed by form field. Nothing is fetched unless the rest is
// valid: the JWKS URL is checked last.
func (p *Portal) checkApplication(ctx context.Context, form url.Values) (Application, map[string]string, error) {
	errs := map[string]string{}
	get := func(k string) string { return strings.TrimSpace(form.Get(k)) }
	a := Application{Record: "application"}

	a.Name = get("app_name")
	if m := textProblem(a.Name, "the application's name"); m != "" {
		errs["app_name"] = m
	}
	switch a.AppType = get("app_type"); a.AppType {
	case "patient", "practitioner":
	default:
		errs["app_type"] = "Choose whether the app is for patients or for practitioners."
	}
	practitioner := a.AppType == "practitioner"

	a.Purpose, a.IntendedUsers = get("purpose"), get("intended_users")
	for k, what := range map[string]string{"purpose": "the app's intended purpose", "intended_users": "who the intended users are"} {
		v := get(k)
		switch {
		case v == "":
			errs[k] = "Describe " + what + "."
		case utf8.RuneCountInString(v) > maxLongText:
			errs[k] = "Use at most 2000 characters."
		}
	}

	a.Requester = Requester{Name: get("requester_name"), Organization: get("requester_organization"), Email: normalizeEmail(get("requester_email")), Phone: get("requester_phone")}
	if m := textProblem(a.Requester.Name, "the requester's name"); m != "" {
		errs["requester_name"] = m
	}
	if m := textProblem(a.Requester.Organization, "the requester's organization"); m != "" {
		errs["requester_organization"] = m
	}
	if m := emailProblem(get("requester_email")); m != "" {
		errs["requester_email"] = m
	}
	digits := 0
	for _, c := range a.Requester.Phone {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if a.Requester.Phone == "" {
		errs["requester_phone"] = "Enter a phone number."
	} else if !phoneRE.MatchString(a.Requester.Phone) || digits < 7 || digits > 15 {
		errs["requester_phone"] = "Enter a phone number of 7 to 15 digits (spaces and + ( ) - . / allowed)."
	}

	if practitioner {
		switch a.LaunchType = get("launch_type"); a.LaunchType {
		case "standalone", "ehr", "backend":
		default:
			errs["launch_type"] = "Choose standalone launch, EHR launch or back-end service."
		}
	} else {
		a.LaunchType = "standalone"
	}
	backend := a.Backend()

	switch a.ClientType = get("client_type"); a.ClientType {
	case "confidential-symmetric", "confidential-asymmetric", "public":
		if backend && a.ClientType != "confidential-asymmetric" {
			errs["client_type"] = "Back-end services authenticate with a public key: choose confidential with a public key (JWKS URL)."
		}
	default:
		errs["client_type"] = "Choose how the app authenticates: a shared secret, a public key, or none (public app)."
	}
	a.JWKSURL = get("jwks_url")
	switch {
	case a.ClientType == "confidential-asymmetric" && a.JWKSURL == "":
		errs["jwks_url"] = "Enter the https URL where the app publishes its public keys (JWKS)."
	case a.ClientType != "confidential-asymmetric" && a.JWKSURL != "":
		errs["jwks_url"] = "Give a JWKS URL only for apps that authenticate with a public key."
	case a.JWKSURL != "":
		if m := p.checkURL(a.JWKSURL); m != "" {
			errs["jwks_url"] = "The JWKS URL " + m + "."
		}
	}
	switch get("refresh_token") {
	case "yes":
		a.RefreshTokens = true
	case "no":
	default:
		errs["refresh_token"] = "Choose whether the app uses refresh tokens."
	}

	for _, line := range strings.Split(form.Get("redirect_uris"), "\n") {
		if u := strings.TrimSpace(line); u != "" {
			a.RedirectURIs = append(a.RedirectURIs, u)
		}
	}
	switch {
	case backend && len(a.RedirectURIs) > 0:
		errs["redirect_uris"] = "Back-end services have no redirect URI: leave this empty."
	case !backend && len(a.RedirectURIs) == 0 && a.AppType != "":
		errs["redirect_uris"] = "Enter at least one redirect URI (https)."
	case len(a.RedirectURIs) > maxRedirects:
		errs["redirect_uris"] = "Enter at most 10 redirect URIs."
	default:
		for _, u := range a.RedirectURIs {
			if m := p.checkURL(u); m != "" {
				errs["redirect_uris"] = "The redirect URI " + m + "."
				break
			}
		}
	}
	a.LaunchURL = get("launch_url")
	switch {
	case a.LaunchType == "ehr" && a.LaunchURL == "":
		errs["launch_url"] = "Enter the launch URL: an EHR launch opens the app there."
	case a.LaunchType != "ehr" && a.LaunchURL != "":
		errs["launch_url"] = "Give a launch URL only for EHR launch apps."
	case a.LaunchURL != "":
		if m := p.checkURL(a.LaunchURL); m != "" {
			errs["launch_url"] = "The launch URL " + m + "."
		}
	}

	switch a.SMARTVersion = get("smart_version"); a.SMARTVersion {
	case "1.0.0", "2.0.0":
	default:
		errs["smart_version"] = "Choose SMART 1.0.0 or 2.0.0 scopes."
	}
	a.Scope = strings.Join(strings.Fields(form.Get("scope")), " ")
	if m := scopeProblem(a, form.Get("scope")); m != "" {
		errs["scope"] = m
	}

	if practitioner {
		p.checkPractices(ctx, form, &a, errs)
	}

	if form.Get("accept_terms") != "yes" {
		errs["accept_terms"] = "Accept the API terms and conditions to submit the request."
	}
	a.OrgName = orgName(a.Requester.Organization, a.Name)
	if len(errs) == 0 && a.JWKSURL != "" {
		if m := p.checkJWKS(ctx, a.JWKSURL); m != "" {
			errs["jwks_url"] = m
		}
	}
	return a, errs, nil
}

// scopeProblem checks the scopes against the SMART version and the kind
// of app.
func scopeProblem(a Application, raw string) string {
	toks := strings.Fields(raw)
	if len(toks) == 0 {
		return "Enter the scopes the app needs, separated by spaces."
	}
	if len(raw) > 4096 {
		return "Use at most 4096 characters of scopes."
	}
	want := scope.V1
	if a.SMARTVersion == "2.0.0" {
		want = scope.V2
	}
	resources := 0
	for _, t := range toks {
		sc, err := scope.ParseScope(t)
		if err != nil {
			return "The scope " + t + " is not valid: " + reason(err) + "."
		}
		if sc.Kind != scope.Resource {
			if a.Backend() && (sc.Kind == scope.OfflineAccess || sc.Kind == scope.OnlineAccess || sc.Kind == scope.Launch || sc.Kind == scope.LaunchPatient || sc.Kind == scope.LaunchEncounter) {
				return "Back-end services get no launch context or refresh tokens: remove " + t + "."
			}
			if !a.RefreshTokens && (sc.Kind == scope.OfflineAccess || sc.Kind == scope.OnlineAccess) {
				return "The app uses no refresh tokens: remove " + t + ", or choose refresh tokens: yes."
			}
			continue
		}
		resources++
		if a.SMARTVersion != "" && sc.Version != want {
			return fmt.Sprintf("%s is a SMART %s scope, but the app uses SMART %s scopes: use one version only.", t, versionName(sc.Version), a.SMARTVersion)
		}
		switch {
		case a.Backend() && sc.Context != scope.System:
			return "Back-end services use system/ scopes only: remove " + t + "."
		case a.AppType == "patient" && sc.Context == scope.System:
			return "Patient apps cannot use system/ scopes: remove " + t + "."
		case a.AppType == "practitioner" && !a.Backend() && sc.Context == scope.System:
			return "Only back-end services use system/ scopes: remove " + t + ", or choose back-end service."
		}
	}
	if resources == 0 {
		return "Include at least one resource scope (patient/…, user/… or system/…)."
	}
	return ""
}

func versionName(v scope.Version) string {
	if v == scope.V2 {
		return "2.0.0"
	}
	return "1.0.0"
}

func reason(err error) string {
	var se *scope.Error
	if errors.As(err, &se) {
		return se.Reason
	}
	return err.Error()
}

// checkPractices reads the practice rows: each PIN a known, unsuspended
// practice, named once, with the requester's confirmation that it agreed;
// as many as the count says.
func (p *Portal) checkPractices(ctx context.Context, form url.Values, a *Application, errs map[string]string) {
	count, err := strconv.Atoi(strings.TrimSpace(form.Get("practice_count")))
	if err != nil || count < 1 || count > maxPractices {
		errs["practice_count"] = "Enter how many practices the app is for: a whole number from 1 to 20."
		count = -1
	}
	a.PracticeCount = max(count, 0)
	seen := map[string]bool{}
	for _, i := range practiceRows(form) {
		pinKey, agreedKey := fmt.Sprintf("practice_pin_%d", i), fmt.Sprintf("practice_agreed_%d", i)
		raw := strings.TrimSpace(form.Get(pinKey))
		agreed := form.Get(agreedKey) == "yes"
		if raw == "" {
			if agreed {
				errs[pinKey] = "Enter the practice's PIN, or untick its agreement."
			}
			continue
		}
		pin := registry.NormalizePIN(raw)
		pr, err := p.cfg.Registry.GetPractice(ctx, pin)
		switch {
		case !validPIN(pin):
			errs[pinKey] = "A PIN is 4 to 12 letters and digits."
			continue
		case errors.Is(err, registry.ErrNotFound):
			errs[pinKey] = "No practice has the PIN " + pin + ". Ask the practice for its PIN."
			continue
		case err != nil:
			errs[pinKey] = "The PIN could not be checked. Try again."
			continue
		case pr.Status != registry.StatusActive:
			errs[pinKey] = "The practice " + pin + " is not active."
			continue
		case seen[pin]:
			errs[pinKey] = "This practice is listed twice."
			continue
		}
		seen[pin] = true
		if !agreed {
			errs[agreedKey] = "Confirm that " + pr.Name + " agreed to the app using its data."
		}
		a.Consents = append(a.Consents, Consent{PIN: pin, Name: pr.Name})
		a.PINs = append(a.PINs, pin)
	}
	named := len(seen)
	switch {
	case named == 0 && errs["practice_pin_1"] == "":
		errs["practice_pin_1"] = "Enter the PIN of at least one practice."
	case count > 0 && named != count && len(errs) == 0:
		errs["practice_count"] = fmt.Sprintf("You said %d practices but gave %d PINs.", count, named)
	}
}

// checkURL checks a redirect, launch or JWKS URL as registry.CheckURL
// does and, outside development mode, also refuses what that check lets
// through: a host that browsers read as an IPv4 address but that is not
// written as one ("127.1", "0x7f.0.0.1", "0177.0.0.1"), which it takes
// for a name, and an address of the ranges publicIP knows not to be
// public (NAT64, benchmarking, reserved, documentation).
func (p *Portal) checkURL(raw string) string {
	if m := registry.CheckURL(raw, p.cfg.Dev); m != "" || p.cfg.Dev {
		return m
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not an absolute URL", raw)
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if !addr.PublicHost(host) {
		return fmt.Sprintf("%q must name a public host by its name or by a public address written plainly", raw)
	}
	return ""
}

func validPIN(pin string) bool {
	if len(pin) < 4 || len(pin) > 12 {
		return false
	}
	for _, c := range pin {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkJWKS fetches a JWKS URL and checks that it answers a JSON Web Key
// Set with at least one key; it returns the problem, or "".
func (p *Portal) checkJWKS(ctx context.Context, u string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "The JWKS URL could not be fetched."
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return "The JWKS URL could not be reached. It must answer from a public https address."
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("The JWKS URL answered HTTP %d, not 200.", resp.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || json.Unmarshal(body, &set) != nil || len(set.Keys) == 0 {
		return "The JWKS URL did not answer a JSON Web Key Set with at least one key."
	}
	return ""
}

// fetchClient fetches JWKS URLs: outside development mode it connects
// only to public addresses, whatever a name resolves to, and follows no
// redirect.
func fetchClient(dev bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !dev {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !addr.PublicIP(ip) {
				return errors.New("portal: refusing to connect to a non-public address")
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: 5 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

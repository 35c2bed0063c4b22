package test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// dashChromium is the headless browser the dashboard test drives; as in
// authz/smart's browser test, the test is skipped where it is missing.
const dashChromium = "/usr/bin/chromium"

// The dashboard world: two practices with the same kinds of data, so that
// anything of DASHB on the page is a leak. DASHA's newest encounter is
// older than all of DASHB's.
//
//	DASHA: Patients da-ada (Ada Quill) and da-ben (Ben Rowan); Ada has 5
//	       glucose (LOINC 2339-0) and 3 hemoglobin (718-7) results, one
//	       urine colour (5778-6, a string value), one heart rate
//	       (vital-signs); 12 encounters; 2 conditions.
//	DASHB: Patient db-bea (Bea Quill) with 4 glucose results; 3 newer
//	       encounters; 1 condition.
const (
	dashA    = "DASHA"
	dashB    = "DASHB"
	dashPass = "Dash-pass-123"
	glucose  = "http://loinc.org|2339-0"
)

func dashObs(id, patient, category, code, display, when, value string) string {
	v := `"valueQuantity":{"value":` + value + `,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}`
	if _, err := strconv.ParseFloat(value, 64); err != nil {
		v = `"valueString":` + strconv.Quote(value)
	}
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":%q}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":%q,"display":%q}],"text":%q},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":%q,%s}`, id, category, code, display, display, patient, when, v)
}

func dashEncounter(id, patient, name, start string) string {
	return fmt.Sprintf(`{"resourceType":"Encounter","id":%q,"status":"finished",
		"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
		"type":[{"text":"Office visit"}],"subject":{"reference":"Patient/%s","display":%q},
		"period":{"start":%q,"end":%q}}`, id, patient, name, start, start)
}

// dashWorld starts a server whose dashboard client is registered for its
// own URL, seeds the world above, and registers the users staff (of
// DASHA) and ada (a patient).
func dashWorld(t *testing.T) *server {
	t.Helper()
	// The client's redirect URI names the server's port, and the server
	// needs the client's id at start: choose the port first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root := "http://" + addr
	dir := t.TempDir()
	e := embedded
	for _, pin := range []string{dashA, dashB} {
		if out, err := e.cli(t, dir, "practice", "create", "--name", pin, "--pin", pin, "--log-level", "error"); err != nil {
			t.Fatalf("practice create: %v\n%s", err, out)
		}
	}
	out, err := e.cli(t, dir, "client", "create", "--name", "Staff dashboard", "--kind", "public", "--dev", "--json", "--log-level", "error",
		"--scope", "openid fhirUser user/*.rs", "--redirect-uri", root+"/dashboard/", "--practice", dashA)
	if err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	var client createdClient
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &client); err != nil {
		t.Fatalf("client create printed %q", out)
	}
	s := e.start(t, dir, "--addr", addr, "--dashboard-client", client.ClientID)
	if s.root != root {
		t.Fatalf("server at %s, want %s", s.root, root)
	}

	a := s.as(s.mint("--scope", "system/*.cruds", "--practice", dashA))
	b := s.as(s.mint("--scope", "system/*.cruds", "--practice", dashB))
	put := func(w *server, typ, id, body string) {
		t.Helper()
		expect(t, w.do("PUT", typ+"/"+id, body), http.StatusCreated)
	}
	person := func(id, given, family string) string {
		return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q,"given":[%q]}],"gender":"female","birthDate":"1970-03-04"}`, id, family, given)
	}
	put(a, "Patient", "da-ada", person("da-ada", "Ada", "Quill"))
	put(a, "Patient", "da-ben", person("da-ben", "Ben", "Rowan"))
	put(b, "Patient", "db-bea", person("db-bea", "Bea", "Quill"))
	for i, v := range []string{"96", "104", "131.5", "88", "112"} {
		id := fmt.Sprintf("da-glu-%d", i)
		// Written out of date order: the chart sorts by date.
		put(a, "Observation", id, dashObs(id, "da-ada", "laboratory", "2339-0", "Glucose", fmt.Sprintf("2024-0%d-1%dT08:30:00Z", 5-i, i), v))
	}
	for i, v := range []string{"13.1", "12.4", "12.9"} {
		id := fmt.Sprintf("da-hgb-%d", i)
		put(a, "Observation", id, dashObs(id, "da-ada", "laboratory", "718-7", "Hemoglobin", fmt.Sprintf("2024-0%d-02T09:00:00Z", i+1), v))
	}
	put(a, "Observation", "da-urine", dashObs("da-urine", "da-ada", "laboratory", "5778-6", "Color of Urine", "2024-02-02T09:00:00Z", "yellow"))
	put(a, "Observation", "da-hr", dashObs("da-hr", "da-ada", "vital-signs", "8867-4", "Heart rate", "2024-02-02T09:00:00Z", "72"))
	for i := range 4 {
		id := fmt.Sprintf("db-glu-%d", i)
		put(b, "Observation", id, dashObs(id, "db-bea", "laboratory", "2339-0", "Glucose", fmt.Sprintf("2024-0%d-20T08:00:00Z", i+1), "150"))
	}
	for i := range 12 {
		id := fmt.Sprintf("da-enc-%02d", i)
		patient, name := "da-ada", "Ada Quill"
		if i%3 == 0 {
			patient, name = "da-ben", "Ben Rowan"
		}
		put(a, "Encounter", id, dashEncounter(id, patient, name, fmt.Sprintf("2024-%02d-%02dT10:00:00Z", 12-i, 28-2*i)))
	}
	for i := range 3 {
		id := fmt.Sprintf("db-enc-%d", i)
		put(b, "Encounter", id, dashEncounter(id, "db-bea", "Bea Quill", fmt.Sprintf("2025-0%d-01T10:00:00Z", i+1)))
	}
	condition := func(id, patient string) string {
		return fmt.Sprintf(`{"resourceType":"Condition","id":%q,"subject":{"reference":"Patient/%s"},"code":{"text":"Hypertension"}}`, id, patient)
	}
	put(a, "Condition", "da-c1", condition("da-c1", "da-ada"))
	put(a, "Condition", "da-c2", condition("da-c2", "da-ben"))
	put(b, "Condition", "db-c1", condition("db-c1", "db-bea"))

	for _, args := range [][]string{
		{"--kind", "staff", "--username", "staff", "--practice", dashA},
		{"--kind", "patient", "--username", "ada", "--patient", "da-ada"},
	} {
		if out, err := e.cli(t, dir, "user", append([]string{"create", "--password", dashPass, "--log-level", "error"}, args...)...); err != nil {
			t.Fatalf("user create %v: %v\n%s", args, err, out)
		}
	}
	return s
}

// dashFirstPage returns the ids of one REST search page, in order.
func dashFirstPage(t *testing.T, s *server, query string) []string {
	t.Helper()
	b := expect(t, s.do("GET", query, nil), http.StatusOK)
	ids := []string{}
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		res, _ := m["resource"].(map[string]any)
		ids = append(ids, str(res["id"]))
	}
	return ids
}

// requestLog keeps the URLs a browser tab requests.
type requestLog struct {
	mu   sync.Mutex
	urls []string
}

func (l *requestLog) listen(ev any) {
	if e, ok := ev.(*network.EventRequestWillBeSent); ok {
		l.mu.Lock()
		l.urls = append(l.urls, e.Request.URL)
		l.mu.Unlock()
	}
}

// foreign returns the requested URLs not on origin (data: URLs aside).
func (l *requestLog) foreign(origin string) (foreign []string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range l.urls {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			foreign = append(foreign, u)
		}
	}
	return foreign, len(l.urls)
}

// TestDashboardShowsThePracticeThroughGraphQL drives the staff dashboard in
// headless Chromium: the page sends the browser through the SMART login
// (PKCE, public client), then shows the counts, the newest encounters and
// a lab chart of the staff user's practice only, as REST gives them to an
// equivalent token; the page talks to nothing but the server, drops the
// code from its URL, and goes back through login when the API refuses its
// token. A patient who denies sees the denial; one who does not grant
// user/*.rs sees the API's refusal.
func TestDashboardShowsThePracticeThroughGraphQL(t *testing.T) {
	if _, err := os.Stat(dashChromium); err != nil {
		t.Skipf("headless Chromium is not installed at %s (apt-get install chromium): %v", dashChromium, err)
	}
	s := dashWorld(t)
	staff := s.as(s.mint("--scope", "user/*.rs", "--user-kind", "staff", "--practice", dashA, "--client-id", "dashboard-rest"))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(dashChromium), chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	var requests requestLog
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(requests.listen))
	defer cancel()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("%s: %v\npage: %s", what, err, text)
		}
	}
	eval := func(expr string, v any) {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(`+expr+`)`))
		if err != nil {
			t.Fatalf("evaluating %s: %v", expr, err)
		}
		if err := json.Unmarshal([]byte(raw), v); err != nil {
			t.Fatalf("evaluating %s: %v (%s)", expr, err, raw)
		}
	}
	loaded := chromedp.Steps(
		chromedp.WaitReady(chromedp.CSS(`#counts[aria-busy="false"]`)),
		chromedp.WaitReady(chromedp.CSS(`#encounters[aria-busy="false"]`)),
	)

	// Login: the page itself sends the browser to the authorization server.
	run("login and approval",
		dashboardLogin(s, "staff"),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
		loaded,
	)
	var page struct {
		URL       string            `json:"url"`
		Session   []string          `json:"session"`
		Local     int               `json:"local"`
		Errors    string            `json:"errors"`
		Counts    map[string]string `json:"counts"`
		Encounter []string          `json:"encounters"`
	}
	eval(`{url: location.href, session: Object.keys(sessionStorage), local: localStorage.length,
		errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.innerText).join('\n'),
		counts: Object.fromEntries([...document.querySelectorAll('#counts li')].map(li => [li.dataset.type, li.dataset.count ?? ''])),
		encounters: [...document.querySelectorAll('#encounters tbody tr')].map(tr => tr.dataset.id ?? '')}`, &page)
	if page.URL != s.root+"/dashboard/" {
		t.Errorf("after login the address is %s, want the page without code and state", page.URL)
	}
	if page.Local != 0 || !reflect.DeepEqual(page.Session, []string{"fhirgraph.dashboard.token"}) {
		t.Errorf("storage: sessionStorage keys %v, localStorage has %d items; want the token in sessionStorage only", page.Session, page.Local)
	}
	if page.Errors != "" {
		t.Fatalf("the dashboard shows errors:\n%s", page.Errors)
	}

	// Counts: what REST _summary=count gives an equivalent staff token.
	want := map[string]string{}
	for typ := range page.Counts {
		want[typ] = strconv.Itoa(count(t, staff, typ))
	}
	if len(page.Counts) < 9 || !reflect.DeepEqual(page.Counts, want) {
		t.Errorf("counts on the page %v, REST %v", page.Counts, want)
	}
	if page.Counts["Patient"] != "2" || page.Counts["Encounter"] != "12" || page.Counts["Observation"] != "10" || page.Counts["Condition"] != "2" {
		t.Errorf("counts %v are not DASHA's (2 patients, 12 encounters, 10 observations, 2 conditions)", page.Counts)
	}

	// The newest encounters, newest first, as REST sorts them.
	if rest := dashFirstPage(t, staff, "Encounter?_sort=-date&_count=10"); !reflect.DeepEqual(page.Encounter, rest) || len(rest) != 10 || rest[0] != "da-enc-00" {
		t.Errorf("encounters on the page %v, REST %v", page.Encounter, rest)
	}

	// The chart: find Ada by name (not DASHB's Bea Quill), choose glucose.
	run("patient search",
		chromedp.SendKeys(chromedp.ID("patient-name"), "Quill"),
		chromedp.Click(chromedp.ID("patient-search-button")),
		chromedp.WaitVisible(chromedp.CSS(`input[name="patient-choice"][value="da-ada"]`)),
	)
	var choices []string
	eval(`[...document.querySelectorAll('input[name="patient-choice"]')].map(i => i.value)`, &choices)
	if !reflect.DeepEqual(choices, []string{"da-ada"}) {
		t.Errorf("patients found for Quill: %v, want only da-ada", choices)
	}
	run("choosing the patient",
		chromedp.Click(chromedp.CSS(`input[name="patient-choice"][value="da-ada"]`)),
		chromedp.WaitVisible(chromedp.ID("lab-code")),
	)
	var codes []string
	eval(`[...document.querySelectorAll('#lab-code option')].map(o => o.value).filter(Boolean).sort()`, &codes)
	if !reflect.DeepEqual(codes, []string{"http://loinc.org|2339-0", "http://loinc.org|718-7"}) {
		t.Errorf("lab codes offered %v, want glucose and hemoglobin (numeric laboratory results only)", codes)
	}
	run("drawing the chart",
		chromedp.SetValue(chromedp.ID("lab-code"), glucose),
		chromedp.Click(chromedp.ID("lab-show")),
		chromedp.WaitVisible(chromedp.CSS(`#chart svg circle.point`)),
	)
	var chart struct {
		Values []string `json:"values"`
		Rows   int      `json:"rows"`
		Label  string   `json:"label"`
		Errors string   `json:"errors"`
	}
	eval(`{values: [...document.querySelectorAll('#chart svg circle.point')].map(c => c.dataset.value),
		rows: document.querySelectorAll('#chart-table tbody tr').length,
		label: [...document.querySelectorAll('#chart svg title, #chart svg desc')].slice(0, 2).map(e => e.textContent).join(' / '),
		errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.innerText).join('\n')}`, &chart)
	restN := count(t, staff, "Observation?patient=Patient/da-ada&code="+glucose)
	if len(chart.Values) != restN || chart.Rows != restN || restN != 5 || chart.Errors != "" {
		t.Errorf("chart has %d points and %d table rows, REST %d glucose results (errors %q)", len(chart.Values), chart.Rows, restN, chart.Errors)
	}
	if want := []string{"112", "88", "131.5", "104", "96"}; !reflect.DeepEqual(chart.Values, want) {
		t.Errorf("points %v, want in date order %v", chart.Values, want)
	}
	if !strings.Contains(chart.Label, "Glucose") || !strings.Contains(chart.Label, "Ada Quill") || !strings.Contains(chart.Label, "5 results") {
		t.Errorf("the chart's accessible name and description: %q", chart.Label)
	}
	screenshot(t, ctx, "dashboard.png")

	// Narrow screens: the chart is redrawn to the width (its text keeps
	// its size), and nothing is wider than the viewport.
	var overflow bool
	run("narrow viewport", chromedp.EmulateViewport(360, 800, chromedp.EmulateMobile),
		chromedp.Poll[chromedp.Void](`document.querySelector('#chart svg').viewBox.baseVal.width < window.innerWidth`, chromedp.WithPollingTimeout(5*time.Second)))
	eval(`document.documentElement.scrollWidth > window.innerWidth`, &overflow)
	if overflow {
		t.Errorf("at 360 px wide the page scrolls sideways")
	}
	screenshot(t, ctx, "dashboard-narrow.png")
	run("wide viewport", chromedp.EmulateViewport(1280, 900))

	// A token the API refuses sends the user through login again (the
	// authorization server's session remains: straight to approval).
	run("refused token",
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem('fhirgraph.dashboard.token', JSON.stringify({access_token: 'not-a-token', scope: '', obtained: 0, expires_at: Date.now() + 3600000}))`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.ID("approve")),
		loaded,
	)
	eval(`{url: location.href, errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.innerText).join('\n')}`, &page)
	if page.URL != s.root+"/dashboard/" || page.Errors != "" {
		t.Errorf("after signing in again: %s, errors %q", page.URL, page.Errors)
	}

	// A patient who denies, then does not grant user/*.rs: the API
	// refuses, and the page says so. A new browser context: no session, no
	// storage.
	pctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(requests.listen))
	defer cancel()
	pctx, cancel = context.WithTimeout(pctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(pctx,
		dashboardLogin(s, "ada"),
		// Denied first: the page says so and offers to sign in again.
		chromedp.WaitVisible(chromedp.ID("deny")),
		chromedp.Click(chromedp.ID("deny")),
		chromedp.WaitVisible(chromedp.ID("page-error")),
	)
	if err != nil {
		t.Fatalf("patient denying: %v", err)
	}
	if denied, _ := chromedp.Run(pctx, chromedp.Text(chromedp.ID("page-error"))); !strings.Contains(denied, "access_denied") {
		t.Errorf("after denying, the page shows %q", denied)
	}
	err = chromedp.Do(pctx,
		chromedp.Click(chromedp.ID("signin-button")),
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="user/*.rs"]`)),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("counts-error")),
		chromedp.WaitVisible(chromedp.ID("encounters-error")),
	)
	if err != nil {
		t.Fatalf("patient without user/*.rs: %v", err)
	}
	refusal, err := chromedp.Run(pctx, chromedp.Text(chromedp.ID("counts-error")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(refusal, "FORBIDDEN") {
		t.Errorf("the patient's page shows %q, want the API's FORBIDDEN errors", refusal)
	}
	if shown, _ := chromedp.Run(pctx, chromedp.Evaluate[int](`document.querySelectorAll('#counts li[data-count]').length`)); shown != 0 {
		t.Errorf("the patient's page shows %d counts", shown)
	}

	if foreign, n := requests.foreign(s.root); len(foreign) > 0 || n == 0 {
		t.Errorf("of %d requests, these left the server: %v", n, foreign)
	}
}

// screenshot saves the page as name in $FHIRGRAPH_SCREENSHOTS, when set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("FHIRGRAPH_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

var demoDashboardLine = regexp.MustCompile(`staff dashboard: (\S+)/dashboard/ \(log in as "(\w+)", password (\S+); client_id (\S+)\)`)

// TestDashboardOfTheDemo: serve --demo prints the dashboard's URL
// and staff login, the page's config names the client the banner shows,
// and that client may start a login for the page, where the staff user
// logs in and reaches the approval page.
func TestDashboardOfTheDemo(t *testing.T) {
	s := start(t, "", "--demo")
	m := demoDashboardLine.FindStringSubmatch(s.out.String())
	if m == nil || m[1] != s.root {
		t.Fatalf("the banner does not show the dashboard of %s:\n%s", s.root, s.out.String())
	}
	user, password, clientID := m[2], m[3], m[4]
	conf := expect(t, s.do("GET", s.root+"/dashboard/config.json", nil), http.StatusOK)
	if conf["client_id"] != clientID || conf["fhir_base"] != s.base || conf["scope"] != "openid fhirUser user/*.rs" {
		t.Fatalf("config.json %v, want client %s and FHIR base %s", conf, clientID, s.base)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", resp.Request.URL, resp.StatusCode, b)
		}
		return string(b)
	}
	sum := sha256.Sum256([]byte(rand.Text() + rand.Text()))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {s.root + "/dashboard/"},
		"scope": {"openid fhirUser user/*.rs"}, "state": {"st"}, "aud": {s.base},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	login := browserPage{body: get(browser.Get(s.root + "/oauth/authorize?" + q.Encode()))}
	if !strings.Contains(login.body, `name="password"`) {
		t.Fatalf("expected the login page: %s", login.body)
	}
	form := login.hidden()
	form.Set("username", user)
	form.Set("password", password)
	if approval := get(browser.PostForm(s.root+"/oauth/login", form)); !strings.Contains(approval, `name="approve"`) || !strings.Contains(approval, "user/*.rs") {
		t.Fatalf("expected the approval page for the staff user: %s", approval)
	}
}

// dashboardLogin opens the dashboard, which sends the browser to the
// authorization server's login page, and logs in as user.
func dashboardLogin(s *server, user string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(s.root+"/dashboard/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), dashPass),
		chromedp.Click(chromedp.ID("login")),
	)
}

package smart

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fhirgraph/fhirgraph/authz/registry"
)

const chromium = "/usr/bin/chromium"

// TestBrowserDrivesLoginPickerAndApproval runs a practitioner's
// standalone launch in headless Chromium: the login page, the patient
// picker (searching by name, then choosing), the encounter picker, and
// the approval page with one scope unticked; the code the app receives
// is then redeemed.
func TestBrowserDrivesLoginPickerAndApproval(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("headless Chromium is not installed at %s (apt-get install chromium): %v", chromium, err)
	}
	e := newEnv(t)
	e.putEncounters()
	got := make(chan url.Values, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>App</title><p id="done">Back in the app</p>`))
	}))
	defer app.Close()
	redirect := app.URL + "/callback"
	client, _, err := e.reg.CreateClient(t.Context(), registry.ClientSpec{
		Name: "Browser App", Kind: registry.KindPublic, Dev: true, RedirectURIs: []string{redirect},
		Scope: "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs", Practices: []string{"ALPHA"},
	})
	must(t, err)
	verifier, challenge := pkce()
	params := e.authParams(client, "launch/patient launch/encounter openid fhirUser offline_access patient/*.rs", challenge)
	params.Set("redirect_uri", redirect)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.Flag("disable-gpu", true))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	err = chromedp.Do(ctx,
		chromedp.Navigate(e.srv.URL+"/oauth/authorize?"+params.Encode()),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "doc"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		// The picker: search by name, then choose.
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "shaw"),
		chromedp.Click(chromedp.ID("search")),
		// The results page: the query is in the input's value attribute,
		// which only the server's page has (typing sets the property), so
		// nothing below touches the page the search left.
		chromedp.WaitVisible(chromedp.CSS(`input#q[value="shaw"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="patient"][value="p1"]`)),
	)
	if err != nil {
		t.Fatalf("browser, login and picker: %v", err)
	}
	pickerText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`fieldset`)))
	if err != nil {
		t.Fatalf("browser, reading the picker: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`input[name="patient"][value="p1"]`)),
		chromedp.Click(chromedp.ID("choose")),
		// The encounter picker: its radios exist only on the server's
		// encounter page, so "choose" below is that page's button.
		chromedp.WaitVisible(chromedp.CSS(`input[name="encounter"][value="e2"]`)),
		chromedp.Click(chromedp.CSS(`input[name="encounter"][value="e2"]`)),
		chromedp.Click(chromedp.ID("choose")),
		// The approval page: untick offline_access, approve.
		chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="offline_access"]`)),
		chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.ID("done")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.Contains(pickerText, "Amy Shaw") || strings.Contains(pickerText, "Bob Stone") {
		t.Errorf("picker shows %q", pickerText)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the app got no redirect")
	}
	if q.Get("state") != "st-42" || q.Get("code") == "" {
		t.Fatalf("redirect query %v", q)
	}
	st, tok, _ := e.tokenReq(client, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if st != 200 || tok["patient"] != "p1" || tok["encounter"] != "e2" || tok["scope"] != "fhirUser launch/encounter launch/patient openid patient/*.rs" || tok["refresh_token"] != nil {
		t.Fatalf("token: %d %v", st, tok)
	}
}

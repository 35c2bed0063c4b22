// Package portal is the developer portal: server-rendered pages where
// application developers sign up, verify their email, log in, reset their
// password, submit API registration requests and follow them (/portal/…),
// and where staff review the requests and practice administrators confirm
// their practice's consent (/admin/…).
//
// Everything is kept in the store (accounts, sessions, links, the mail
// outbox, applications, staff roles), so any number of servers answer
// alike. An approved request becomes a client of authz/registry, whose
// consented practices are exactly the practices whose administrators
// confirmed: its tokens reach those practices' data and no other.
//
// Pages work without JavaScript; every form carries the session's CSRF
// token; a user's mistake is answered with the form again, the message
// next to the field, and nothing saved.
package portal

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/store"
)

// TermsVersion is the version of the API terms and conditions the form
// asks developers to accept; each acceptance is stored with it.
const TermsVersion = "2026-01"

// Config carries a Portal's dependencies. Store, Registry and Policy are
// required.
type Config struct {
	Store    store.Store
	Registry *registry.Registry
	Policy   *policy.Policy
	// RootURL is the server's public root ("https://ehr.example.org"),
	// used in the links mail carries; when empty, the request's host is.
	RootURL string
	// Dev (development mode) drops the Secure flag of cookies and accepts
	// http, loopback and private addresses in redirect, launch and JWKS
	// URLs.
	Dev bool
	// Mailer sends mail; nil keeps it in the outbox only. Either way each
	// message is kept in the outbox; without a Mailer its link is logged
	// at Info in Dev, and never outside Dev.
	Mailer Mailer
	// HTTPClient fetches JWKS URLs when a request is submitted; nil means
	// one that refuses non-public addresses unless Dev.
	HTTPClient *http.Client
	// SecretGrace is how long a rotated client secret keeps working;
	// default 24 hours.
	SecretGrace time.Duration
	// Limits bound attempts per client address and per email; the zero
	// value is DefaultLimits.
	Limits Limits
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Portal serves the developer portal and the review pages.
type Portal struct {
	cfg        Config
	developers store.Records[developer]
	sessions   store.Records[session]
	links      store.Records[link]
	keys       store.Records[linkKey]
	outbox     store.Records[Message]
	apps       store.Records[Application]
	roles      store.Records[Roles]
	limiter    *limiter
	log        *slog.Logger
	// bg counts work started by a request that goes on after its answer
	// (see later).
	bg sync.WaitGroup
}

// New returns a Portal for cfg.
func New(cfg Config) (*Portal, error) {
	if cfg.Store == nil || cfg.Registry == nil || cfg.Policy == nil {
		return nil, errors.New("portal: store, registry and policy are required")
	}
	if cfg.RootURL != "" {
		u, err := url.Parse(cfg.RootURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, errors.New("portal: RootURL must be an absolute URL")
		}
		cfg.RootURL = strings.TrimRight(cfg.RootURL, "/")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SecretGrace <= 0 {
		cfg.SecretGrace = 24 * time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = fetchClient(cfg.Dev)
	}
	st := cfg.Store
	return &Portal{
		cfg:        cfg,
		developers: store.Records[developer]{C: st.Collection(developersDef)},
		sessions:   store.Records[session]{C: st.Collection(sessionsDef)},
		links:      store.Records[link]{C: st.Collection(linksDef)},
		keys:       store.Records[linkKey]{C: st.Collection(keysDef)},
		outbox:     store.Records[Message]{C: st.Collection(outboxDef)},
		apps:       store.Records[Application]{C: st.Collection(applicationsDef)},
		roles:      store.Records[Roles]{C: st.Collection(rolesDef)},
		limiter:    newLimiter(cfg.Limits.orDefault()),
		log:        cfg.Logger,
	}, nil
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	"has": func(vs []string, v string) bool {
		for _, x := range vs {
			if x == v {
				return true
			}
		}
		return false
	},
	"opts": func(pairs ...string) []option {
		out := make([]option, 0, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, option{V: pairs[i], L: pairs[i+1]})
		}
		return out
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).ParseFS(templateFS, "templates/*.html"))

// Handler serves the portal: mount it at "/portal/" and "/admin" (and
// "/admin/").
//
//	GET|POST /portal/signup                     create a developer account
//	GET|POST /portal/verify                     confirm an email address (link from the mail)
//	POST     /portal/verify/resend              a new verification link (logged in, unverified)
//	GET|POST /portal/login, POST /portal/logout
//	GET|POST /portal/reset                      ask for a password reset link
//	GET|POST /portal/reset/confirm              choose a new password (link from the mail)
//	GET      /portal/applications               My Applications
//	GET|POST /portal/applications/new           Submit an API Request
//	GET      /portal/applications/{id}          one application, its history and credentials
//	POST     /portal/applications/{id}/secret   a new client secret (the old one lasts the grace period)
//	POST     /portal/applications/{id}/revoke   revoke the client secret
//	GET      /portal/static/portal.css
//	GET|POST /admin/login, POST /admin/logout   staff (registry users with portal roles)
//	GET      /admin                             requests to review and consents to confirm
//	GET      /admin/applications/{id}
//	POST     /admin/applications/{id}/review    approve or reject (reviewers)
//	POST     /admin/applications/{id}/consent   confirm a practice's consent (its administrators)
//	POST     /admin/applications/{id}/suspend   suspend an active app (reviewers)
func (p *Portal) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /portal/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/portal/applications", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /portal/signup", p.formPage(kindDeveloper, "signup", view{Title: "Create a developer account", Nav: "signup"}))
	mux.HandleFunc("POST /portal/signup", p.signup)
	mux.HandleFunc("GET /portal/verify", p.verifyPage)
	mux.HandleFunc("POST /portal/verify", p.verify)
	mux.HandleFunc("POST /portal/verify/resend", p.resend)
	mux.HandleFunc("GET /portal/login", p.loginPage)
	mux.HandleFunc("POST /portal/login", p.login)
	mux.HandleFunc("POST /portal/logout", p.logout)
	mux.HandleFunc("GET /portal/reset", p.formPage(kindDeveloper, "reset", view{Title: "Reset your password", Nav: "login"}))
	mux.HandleFunc("POST /portal/reset", p.reset)
	mux.HandleFunc("GET /portal/reset/confirm", p.resetConfirmPage)
	mux.HandleFunc("POST /portal/reset/confirm", p.resetConfirm)
	mux.HandleFunc("GET /portal/applications", p.myApplications)
	mux.HandleFunc("GET /portal/applications/new", p.newApplicationPage)
	mux.HandleFunc("POST /portal/applications/new", p.submitApplication)
	mux.HandleFunc("GET /portal/applications/{id}", p.applicationPage)
	mux.HandleFunc("POST /portal/applications/{id}/secret", p.rotateSecret)
	mux.HandleFunc("POST /portal/applications/{id}/revoke", p.revokeSecret)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /portal/static/", http.StripPrefix("/portal/static/", staticHandler(http.FileServerFS(static))))

	mux.HandleFunc("GET /admin", p.adminHome)
	mux.HandleFunc("GET /admin/{$}", p.adminHome)
	mux.HandleFunc("GET /admin/login", p.formPage(kindStaff, "admin_login", view{Title: "Staff log in", Nav: "admin", Staff: true}))
	mux.HandleFunc("POST /admin/login", p.adminLogin)
	mux.HandleFunc("POST /admin/logout", p.logout)
	mux.HandleFunc("GET /admin/applications/{id}", p.adminApplication)
	mux.HandleFunc("POST /admin/applications/{id}/review", p.review)
	mux.HandleFunc("POST /admin/applications/{id}/consent", p.consent)
	mux.HandleFunc("POST /admin/applications/{id}/suspend", p.suspend)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.render(w, r, http.StatusNotFound, "message", &view{Title: "Page not found", Message: "There is no such page."})
	})
	return mux
}

func staticHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// option is one radio button: value and label.
type option struct{ V, L string }

// view is what every page template may show.
type view struct {
	Title string
	// Nav is the tab shown as current.
	Nav  string
	CSRF string
	// Who is the logged-in developer's name or staff username ("" when
	// no one is); Verified whether a developer's email is.
	Who      string
	Staff    bool
	Verified bool
	Message  string // a notice (role=status)
	Error    string // a page-level error (role=alert)
	// Errors are per-field messages, keyed by the field's name; Form the
	// values to show again.
	Errors map[string]string
	Form   url.Values
	Token  string
	// Page-specific data.
	Apps      []Application
	App       *Application
	Secret    string
	Duplicate bool
	Rows      []int
	Practices []registry.Practice
	Consent   []string // PINs the staff user may confirm for the shown app
	CanReview bool
	Terms     string
}

// render writes a page; pages are never cached or framed, and load
// nothing but the portal's own style sheet.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	if v.Form == nil {
		v.Form = url.Values{}
	}
	if v.Errors == nil {
		v.Errors = map[string]string{}
	}
	v.Terms = TermsVersion
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name+".html", v); err != nil {
		p.log.Error("portal: rendering a page", "page", name, "err", err)
	}
}

// fail answers a failure on the server's side: logged, never shown.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	p.log.Error("portal: request failed", "path", r.URL.Path, "err", err)
	p.render(w, r, http.StatusInternalServerError, "message", &view{Title: "Something went wrong", Error: "Something went wrong on our side. Try again later."})
}

const maxFormBytes = 64 << 10

// form reads a POST form, bounded; a body that cannot be read answers
// 400 and returns false.
func (p *Portal) form(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, "message", &view{Title: "The form could not be read", Error: "The form could not be read. Go back and try again."})
		return nil, false
	}
	return r.PostForm, true
}

// Wait returns once the work requests started to finish after their
// answers (a password reset's link and mail) is done: call it after the
// server stops taking requests and before the store is closed.
func (p *Portal) Wait() { p.bg.Wait() }

// laterTimeout bounds work done after an answer.
const laterTimeout = time.Minute

// later runs f after the request's answer, detached from the request
// (its values kept, its cancellation not), within laterTimeout; a
// failure is logged. For work whose duration must not show in the
// answer's timing.
func (p *Portal) later(ctx context.Context, f func(context.Context) error) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), laterTimeout)
		defer cancel()
		if err := f(ctx); err != nil {
			p.log.Error("portal: work after the answer failed", "err", err)
		}
	}()
}

// clientIP is the client a request came from, for rate limits: the
// connection's address (a proxy in front must be trusted explicitly,
// which this server does not do), an IPv6 one as its /64, which one host
// commonly holds whole.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// root is the public root URL for links.
func (p *Portal) root(r *http.Request) string {
	if p.cfg.RootURL != "" {
		return p.cfg.RootURL
	}
	scheme := "https"
	if r.TLS == nil && p.cfg.Dev {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

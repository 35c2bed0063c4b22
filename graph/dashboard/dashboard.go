// Package dashboard serves the staff dashboard at /dashboard/: a static
// page (HTML, one JavaScript module, CSS, embedded in the binary) that is
// itself a SMART app. It signs the user in with a standalone launch —
// authorization code with PKCE, as a public client — and then reads
// everything it shows through /graphql with the access token, so it sees
// exactly what the token may see and nothing the API does not serve.
//
// The server side knows no data and keeps no state: it serves the files
// and config.json, which tells the page its client id, the FHIR base
// (the aud of the launch, and where discovery is) and the GraphQL
// endpoint. The page keeps the token in sessionStorage only.
package dashboard

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// DefaultScope is what the dashboard asks for: who the user is, and read
// and search of every type within the user's reach.
const DefaultScope = "openid fhirUser user/*.rs"

// Config is what the page needs to know about the server it runs on.
type Config struct {
	// ClientID is the dashboard's registration: a public client whose
	// redirect URI is the page's own URL (<origin>/dashboard/).
	ClientID string
	// FHIRBase is the absolute FHIR base URL: the aud of the launch, and
	// where the page finds the SMART configuration.
	FHIRBase string
	// GraphQL is the GraphQL endpoint, a path on the page's origin or an
	// absolute URL; "/graphql" when empty.
	GraphQL string
	// Scope is the scope the page asks for; DefaultScope when empty.
	Scope string
}

// pageConfig is config.json.
type pageConfig struct {
	ClientID string `json:"client_id"`
	FHIRBase string `json:"fhir_base"`
	GraphQL  string `json:"graphql"`
	Scope    string `json:"scope"`
}

// NewHandler serves the dashboard; mount it at "/dashboard/" and
// "/dashboard" (which redirects to the former). Only GET and HEAD are
// served.
//
//	/dashboard/             the page
//	/dashboard/config.json  client id, FHIR base, GraphQL endpoint, scope
//	/dashboard/<file>       the page's script, style sheet and icon
func NewHandler(cfg Config) http.Handler {
	if cfg.GraphQL == "" {
		cfg.GraphQL = "/graphql"
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	conf, _ := json.Marshal(pageConfig{ClientID: cfg.ClientID, FHIRBase: strings.TrimRight(cfg.FHIRBase, "/"), GraphQL: cfg.GraphQL, Scope: cfg.Scope})
	static, _ := fs.Sub(files, "static")
	csp := contentSecurityPolicy(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// The authorization code arrives in the page's URL: it must not
		// leave in a Referer header (the page removes it at once, too).
		h.Set("Referrer-Policy", "no-referrer")
		name := strings.TrimPrefix(r.URL.Path, "/dashboard")
		switch name {
		case "":
			http.Redirect(w, r, "/dashboard/", http.StatusMovedPermanently)
			return
		case "/", "/index.html":
			name = "index.html"
		case "/config.json":
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-cache")
			w.Write(conf)
			return
		default:
			if name = strings.TrimPrefix(path.Clean(name), "/"); name == "" || strings.Contains(name, "/") {
				http.NotFound(w, r)
				return
			}
		}
		h.Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, static, name)
	})
}

// contentSecurityPolicy lets the page run only its own script and style
// and talk only to its own origin (and the FHIR base's, should that be
// another): the dashboard loads nothing from elsewhere.
func contentSecurityPolicy(cfg Config) string {
	connect := []string{"'self'"}
	for _, u := range []string{cfg.FHIRBase, cfg.GraphQL} {
		if p, err := url.Parse(u); err == nil && p.Scheme != "" && p.Host != "" {
			connect = append(connect, p.Scheme+"://"+p.Host)
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src " + strings.Join(connect, " ") +
		"; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

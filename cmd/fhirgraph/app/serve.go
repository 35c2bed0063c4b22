package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/fhir"
	"github.com/fhirgraph/fhirgraph/fhir/bulk"
	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
	"github.com/fhirgraph/fhirgraph/graph"
	"github.com/fhirgraph/fhirgraph/graph/dashboard"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// demoPatients is how many synthetic patients serve --demo loads into an
// empty store.
const demoPatients = 100

func serve(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("serve", e)
	var sf storeFlags
	sf.register(fs, e)
	addr := fs.String("addr", envOr(e, "FHIRGRAPH_ADDR", ":8080"), "listen address (env FHIRGRAPH_ADDR)")
	baseURL := baseURLFlag(fs, e, "public URL of the server, e.g. https://fhir.example.org (env FHIRGRAPH_BASE_URL; default: from each request)")
	maxBody := fs.Int64("max-body", fhir.DefaultMaxBodyBytes, "largest request body accepted, in bytes")
	searchTimeout := fs.Duration("search-timeout", fhir.DefaultSearchTimeout, "longest a search may run before it is abandoned")
	batchWait := fs.Duration("graphql-batch-wait", 2*time.Millisecond, "how long GraphQL gathers references and nested lists into one store query")
	demo := fs.Bool("demo", false, "load synthetic demo data into an empty store (implies --dev)")
	dev := fs.Bool("dev", false, "development mode")
	var bf bulkFlags
	bf.register(fs)
	dashboardClient := fs.String("dashboard-client", "dashboard", "client id of the staff dashboard at /dashboard/: a public client with redirect URI <public URL>/dashboard/ (--demo registers one)")
	portalOpts := portalFlags(fs, e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	dashboardClientSet := false
	fs.Visit(func(f *flag.Flag) { dashboardClientSet = dashboardClientSet || f.Name == "dashboard-client" })
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	*dev = *dev || *demo
	log, err := sf.logger(e)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	raw, err := sf.open(ctx, e, log)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	st := m.instrument(raw)
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	if *demo {
		if err := loadDemo(ctx, st, log); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	root := rootURL(*baseURL, ln.Addr())
	// Tokens name the FHIR base the banner prints as issuer and audience.
	keys, auth, err := newAuthority(st, fhirBase(root), log)
	if err != nil {
		ln.Close()
		return err
	}
	guard, err := newGuard(st, auth, fhirBase(root))
	if err != nil {
		ln.Close()
		return err
	}
	oauth, err := newOAuthServer(st, keys, auth, root, *dev, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer oauth.close()
	if *demo {
		// The registry chooses client ids: the demo's dashboard client is
		// the default unless one is named.
		id, err := demoDashboard(ctx, st, root)
		if err != nil {
			ln.Close()
			return err
		}
		if !dashboardClientSet {
			*dashboardClient = id
		}
	}
	// The audit trail is written beside the API, through the store
	// directly; deferred after the store's Close, it flushes before it.
	auditor := audit.New(st, audit.Options{Logger: log, BaseURL: fhirBase(*baseURL)})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := auditor.Close(ctx); err != nil {
			log.Error("audit: queued events not written", "err", err)
		}
	}()
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fhirgraph_audit_events_dropped_total", Help: "AuditEvents dropped because the audit queue was full."},
		func() float64 { return float64(auditor.Stats().Dropped) }))
	exports, err := bf.service(st, guard, log)
	if err != nil {
		ln.Close()
		return err
	}
	// Export workers stop (deferred after the store's Close, so before it)
	// when serve returns.
	exportCtx, stopExports := context.WithCancel(ctx)
	waitExports := exports.Start(exportCtx)
	defer func() { stopExports(); waitExports() }()
	mux := http.NewServeMux()
	mux.Handle("/fhir/", fhir.NewHandler(fhir.Config{Store: st, Guard: guard, OAuth: oauth.uris, BaseURL: fhirBase(*baseURL), MaxBodyBytes: *maxBody, SearchTimeout: *searchTimeout, Logger: log, Version: version, Auditor: auditor, Bulk: exports}))
	gql := graph.NewHandler(graph.Config{Store: st, Guard: guard, BaseURL: fhirBase(*baseURL), Logger: log, Timeout: *searchTimeout, MaxBodyBytes: *maxBody, BatchWait: *batchWait, Auditor: auditor})
	mux.Handle("/graphql", gql)
	mux.Handle("/fhir/$graphql", gql)
	mux.Handle("/fhir/{type}/{id}/$graphql", gql)
	mux.Handle("/oauth/", oauth.server.Handler())
	dash := dashboard.NewHandler(dashboard.Config{ClientID: *dashboardClient, FHIRBase: fhirBase(root), GraphQL: "/graphql"})
	mux.Handle("/dashboard/", dash)
	mux.Handle("/dashboard", dash)
	devPortal, err := newPortal(ctx, st, root, *dev, portalOpts, log)
	if err != nil {
		ln.Close()
		return err
	}
	// Mail the portal sends after answering finishes before the store
	// closes (deferred after it, so run before it).
	defer devPortal.Wait()
	portalPages := devPortal.Handler()
	mux.Handle("/portal/", portalPages)
	mux.Handle("/admin", portalPages)
	mux.Handle("/admin/", portalPages)
	mux.Handle("GET /fhir/.well-known/smart-configuration", oauth.server.Discovery())
	mux.Handle("GET /fhir/.well-known/openid-configuration", oauth.server.OpenIDConfiguration())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	kind := sf.kind(e)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := st.Ping(ctx); err != nil {
			log.Warn("readiness check failed", "store", kind, "err", err)
			http.Error(w, "store unreachable: "+kind, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready: "+kind+" store reachable")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	srv := &http.Server{
		Handler:           m.middleware(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(e.stdout, "Fhirgraph %s listening on %s\n  FHIR base: %s/fhir\n  health:    %s/healthz\n  metrics:   %s/metrics\n", version, ln.Addr(), root, root, root)
	if *demo {
		raw, _, err := auth.IssueAccess(ctx, token.AccessGrant{Subject: "demo", ClientID: "fhirgraph-demo", Scope: demoScope, Practices: []string{demoPractice}, Lifetime: time.Hour})
		if err != nil {
			ln.Close()
			return fmt.Errorf("demo token: %w", err)
		}
		fmt.Fprintf(e.stdout, "  demo data: %d synthetic patients of practice %s; %s/fhir/metadata is public, everything else takes a token:\n", demoPatients, demoPractice, root)
		fmt.Fprintf(e.stdout, "    curl -H 'Authorization: Bearer %s' %s/fhir/Patient/p0001\n", raw, root)
		fmt.Fprintf(e.stdout, "  (a %s token for %s, valid 1 h; mint others with fhirgraph token --base-url %s)\n", demoScope, demoPractice, root)
		if err := demoAccess(ctx, st, root, e.stdout); err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(e.stdout, "  staff dashboard: %s/dashboard/ (log in as %q, password %s; client_id %s)\n", root, demoStaffUser, demoPassword, *dashboardClient)
		if err := demoPortal(ctx, st, devPortal, root, e.stdout); err != nil {
			ln.Close()
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// The demo practice owns the demo data; the banner's token reads it.
const (
	demoPractice = "LAKESHORE"
	demoScope    = "system/*.rs"
)

// loadDemo creates the demo practice unless it exists, and seeds the
// synthetic demo data, owned by it, when the store is empty.
func loadDemo(ctx context.Context, st store.Store, log *slog.Logger) error {
	reg := registry.New(st, registry.Options{})
	if _, err := reg.CreatePractice(ctx, registry.PracticeSpec{Name: "Lakeshore Oncology (demo)", PIN: demoPractice}); err != nil && !errors.Is(err, registry.ErrExists) {
		return fmt.Errorf("demo practice: %w", err)
	}
	n, err := st.Count(ctx, "Patient")
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("demo: store already has data; not seeding", "patients", n)
		return nil
	}
	stats, err := ingest.Load(ctx, st, synthItems(synth.Options{Patients: demoPatients, Seed: 1}), ingest.Options{Strict: true, Practice: demoPractice})
	if err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	log.Info("demo: loaded synthetic data", "stats", stats.String())
	return nil
}

// rootURL is the server's own URL for the start-up banner.
func rootURL(base string, addr net.Addr) string {
	if base != "" {
		return strings.TrimSuffix(base, "/")
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// baseURLFlag registers --base-url, the server's public URL.
func baseURLFlag(fs *flag.FlagSet, e *env, usage string) *string {
	return fs.String("base-url", e.getenv("FHIRGRAPH_BASE_URL"), usage)
}

// fhirBase is the FHIR base URL under a server's public URL; "" when that
// is unknown.
func fhirBase(public string) string {
	if public == "" {
		return ""
	}
	return strings.TrimSuffix(public, "/") + "/fhir"
}

// bulkFlags are serve's Bulk Data $export settings.
type bulkFlags struct {
	workers, partSize, maxJobs int
	lease, expiry, retryAfter  time.Duration
	killAfterPages             int
}

func (b *bulkFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&b.workers, "export-workers", bulk.DefaultWorkers, "bulk export workers this process runs (0: none; other servers on the store run the jobs)")
	fs.IntVar(&b.partSize, "export-part-size", bulk.DefaultPartSize, "most resources in one bulk export output file")
	fs.IntVar(&b.maxJobs, "export-max-jobs", bulk.DefaultMaxActive, "most queued and running bulk exports per client")
	fs.DurationVar(&b.lease, "export-lease", bulk.DefaultLease, "how long a bulk export worker's claim on a job lasts without a heartbeat (a dead worker's job is taken over after it)")
	fs.DurationVar(&b.expiry, "export-expiry", bulk.DefaultExpiry, "how long a finished bulk export's files are kept")
	fs.DurationVar(&b.retryAfter, "export-retry-after", bulk.DefaultRetryAfter, "polling interval (Retry-After) told to bulk export clients")
	fs.IntVar(&b.killAfterPages, "export-test-kill-after-pages", 0, "testing only: the first worker to export this many pages of a job stops as if its process died")
}

func (b *bulkFlags) service(st store.Store, guard *authz.Guard, log *slog.Logger) (*bulk.Service, error) {
	cfg := bulk.Config{
		Store: st, Guard: guard, Logger: log, Workers: b.workers, PartSize: b.partSize, Lease: b.lease,
		Expiry: b.expiry, MaxActive: b.maxJobs, RetryAfter: b.retryAfter,
	}
	if n := b.killAfterPages; n > 0 {
		var killed atomic.Bool
		cfg.AfterPage = func(job string, page int) bool {
			return page >= n && killed.CompareAndSwap(false, true)
		}
	}
	return bulk.New(cfg)
}

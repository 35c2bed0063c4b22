package app

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/store"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors, on a registry of their own
// so several servers can run in one process (tests).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	storeOps *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgraph_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fhirgraph_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fhirgraph_store_operation_duration_seconds", Help: "Store operation latency by operation and outcome.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 2},
		}, []string{"op", "outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.storeOps, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// middleware counts and times every request by its route pattern (not its
// path, which would give one series per resource id).
func (m *metrics) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &audit.StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.Status)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

// instrument wraps a store so each operation's latency is recorded.
func (m *metrics) instrument(s store.Store) store.Store { return &timedStore{Store: s, m: m} }

type timedStore struct {
	store.Store
	m *metrics
}

func (t *timedStore) observe(op string, start time.Time, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	t.m.storeOps.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
}

func (t *timedStore) Read(ctx context.Context, typ, id string) (r store.Resource, err error) {
	defer func(start time.Time) { t.observe("read", start, err) }(time.Now())
	return t.Store.Read(ctx, typ, id)
}

func (t *timedStore) VRead(ctx context.Context, typ, id string, v int64) (r store.Resource, err error) {
	defer func(start time.Time) { t.observe("vread", start, err) }(time.Now())
	return t.Store.VRead(ctx, typ, id, v)
}

func (t *timedStore) Apply(ctx context.Context, ws []store.Write) (r []store.Result, err error) {
	defer func(start time.Time) { t.observe("apply", start, err) }(time.Now())
	return t.Store.Apply(ctx, ws)
}

func (t *timedStore) ApplyEach(ctx context.Context, ws []store.Write) (r []store.Result, errs []error, err error) {
	defer func(start time.Time) { t.observe("apply_each", start, err) }(time.Now())
	return t.Store.ApplyEach(ctx, ws)
}

func (t *timedStore) Search(ctx context.Context, q store.Query) (p store.SearchPage, err error) {
	defer func(start time.Time) { t.observe("search", start, err) }(time.Now())
	return t.Store.Search(ctx, q)
}

func (t *timedStore) History(ctx context.Context, q store.HistoryQuery) (p store.HistoryPage, err error) {
	defer func(start time.Time) { t.observe("history", start, err) }(time.Now())
	return t.Store.History(ctx, q)
}

func (t *timedStore) Count(ctx context.Context, typ string) (n int, err error) {
	defer func(start time.Time) { t.observe("count", start, err) }(time.Now())
	return t.Store.Count(ctx, typ)
}

func (t *timedStore) Reindex(ctx context.Context, q store.ReindexQuery) (s store.ReindexStats, err error) {
	defer func(start time.Time) { t.observe("reindex", start, err) }(time.Now())
	return t.Store.Reindex(ctx, q)
}

package graph

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/audit"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/graph/generated"
	"github.com/fhirgraph/fhirgraph/store"
)

// Config holds the GraphQL handler's dependencies and limits; zero limits
// take the defaults.
type Config struct {
	Store store.Store
	Guard *authz.Guard
	// BaseURL is the FHIR base; absolute references under it in search
	// arguments are searched as relative ones, as in REST.
	BaseURL string
	Logger  *slog.Logger
	// MaxDepth is the deepest selection a query may make (default 12);
	// MaxComplexity the gqlgen complexity it may reach (default 100,000),
	// where a list costs its page size times its selection (limits.go).
	MaxDepth, MaxComplexity int
	// Timeout bounds one request (default 30s); MaxBodyBytes its body
	// (default 1 MiB).
	Timeout      time.Duration
	MaxBodyBytes int64
	// Auditor, when set, records every authenticated request (audit.go).
	Auditor Auditor
	// BatchWait is how long the per-request loaders gather references and
	// reverse lists before fetching them in one store query (default 2ms).
	BatchWait time.Duration
}

// NewHandler serves the GraphQL API at /graphql and /fhir/$graphql: POST
// with a JSON body and GET with query= (GraphQL over HTTP), automatic
// persisted queries (extensions.persistedQuery), GraphiQL to a browser
// (GET asking for HTML); and at /fhir/[type]/[id]/$graphql the FHIR
// GraphQL instance form, whose query selects fields of that resource
// (instance.go). Every request needs a bearer token,
// checked as FHIR REST checks it: without one, or with an invalid one, the
// answer is HTTP 401 with the RFC 6750 challenge and a GraphQL error body,
// before any parsing, so introspection too needs a token. Errors in a
// well-formed request are GraphQL errors with extensions.code in a 200
// answer; a request that cannot be parsed or validated is answered 422
// (gqlgen's GraphQL-over-HTTP status), never 5xx.
func NewHandler(cfg Config) http.Handler {
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = 12
	}
	if cfg.MaxComplexity <= 0 {
		cfg.MaxComplexity = 100_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 2 * time.Millisecond
	}
	res := &Resolver{store: cfg.Store, guard: cfg.Guard, baseURL: strings.TrimSuffix(cfg.BaseURL, "/"), log: cfg.Logger, batchWait: cfg.BatchWait}
	srv := handler.New(priced{generated.NewExecutableSchema(generated.Config{Resolvers: res})})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.AroundFields(fieldRules)
	srv.AroundOperations(recordOperation)
	srv.AroundResponses(recordErrors)
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		if res.log != nil {
			res.log.Error("graphql: recovered from a panic", "panic", v)
		}
		return &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": codeInternal}}
	})
	graphiql := playground.Handler("Fhirgraph GraphQL", "/graphql", playground.WithStoragePrefix("fhirgraph-"))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wantsGraphiQL(r) {
			graphiql(w, r)
			return
		}
		p, err := cfg.Guard.Authenticate(r)
		if err != nil {
			unauthorized(w, err, res.log)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes)
		op := &operation{}
		ctx, cancel := context.WithTimeout(withLoaders(withPrincipal(r.Context(), p), res, p), cfg.Timeout)
		defer cancel()
		r = r.WithContext(context.WithValue(ctx, operationKey{}, op))
		sw := &audit.StatusWriter{ResponseWriter: w}
		typ, id, instance := instancePath(r.URL.Path)
		if instance {
			serveInstance(sw, r, srv, typ, id)
		} else {
			srv.ServeHTTP(sw, r)
		}
		if cfg.Auditor != nil {
			cfg.Auditor.Record(auditEvent(r, p, sw.Status, op, typ, id))
		}
	})
}

// wantsGraphiQL tells a browser opening the endpoint (GET, HTML first in
// Accept, no query) from a GraphQL request. The page holds no data: the
// queries it sends need a token like any other (set the Authorization
// header in its headers pane).
func wantsGraphiQL(r *http.Request) bool {
	if r.Method != http.MethodGet || r.URL.Query().Has("query") || r.URL.Query().Has("extensions") {
		return false
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") && !strings.Contains(accept, "application/graphql-response+json")
}

// unauthorized answers an Authenticate failure as REST does (401 and the
// WWW-Authenticate challenge), with a GraphQL error body.
func unauthorized(w http.ResponseWriter, err error, log *slog.Logger) {
	msg, challenge := "an access token is required: send Authorization: Bearer <token>", "Bearer"
	if !errors.Is(err, authz.ErrNoToken) {
		te := token.AsError(err)
		if te == nil {
			if log != nil {
				log.Error("graphql: authenticate", "err", err)
			}
			writeErrors(w, http.StatusServiceUnavailable, "authentication is unavailable", codeInternal)
			return
		}
		desc := strings.NewReplacer(`"`, "'", `\`, "/").Replace(te.Description)
		msg, challenge = te.Description, `Bearer error="`+te.Code+`", error_description="`+desc+`"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeErrors(w, http.StatusUnauthorized, msg, "UNAUTHENTICATED")
}

func writeErrors(w http.ResponseWriter, status int, msg, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(graphql.Response{Errors: gqlerror.List{{Message: msg, Extensions: map[string]any{"code": code}}}})
}

var _ graphql.HandlerExtension = depthLimit{}

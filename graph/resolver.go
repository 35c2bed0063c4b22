package graph

import (
	"log/slog"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/store"
)

// Resolver is the root of the generated resolvers: every read and list
// goes through the store with the filter authz decides (see access.go).
type Resolver struct {
	store   store.Store
	guard   *authz.Guard
	baseURL string
	log     *slog.Logger
}

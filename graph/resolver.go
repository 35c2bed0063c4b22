package graph

import (
	"log/slog"
	"time"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// Resolver is the root of the generated resolvers: every read and list
// goes through the store with the filter authz decides (see access.go).
type Resolver struct {
	store   store.Store
	guard   *authz.Guard
	baseURL string
	log     *slog.Logger
	// cursors signs connection cursors with the key REST's paging links
	// use.
	cursors search.CursorSigner
	// batchWait is how long the loaders gather keys before a batch runs.
	batchWait time.Duration
}

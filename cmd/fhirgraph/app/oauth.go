package app

import (
	"log/slog"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/smart"
	"github.com/fhirgraph/fhirgraph/authz/token"
	"github.com/fhirgraph/fhirgraph/fhir"
	"github.com/fhirgraph/fhirgraph/store"
)

// oauthServer is the SMART authorization server a FHIR server runs, and
// what the CapabilityStatement says of it.
type oauthServer struct {
	server     *smart.Server
	uris       *fhir.OAuthURIs
	assertions *token.AssertionVerifier
}

// newOAuthServer builds the authorization server at root + "/oauth" for the
// FHIR base under root, signing with the same keys and authority the FHIR
// API verifies with.
func newOAuthServer(st store.Store, keys *token.Keyring, auth *token.Authority, root string, dev bool, log *slog.Logger) (*oauthServer, error) {
	assertions, err := token.NewAssertionVerifier(st, token.AssertionOptions{TokenURL: root + "/oauth/token", Dev: dev})
	if err != nil {
		return nil, err
	}
	srv, err := smart.New(smart.Config{
		Store: st, Registry: registry.New(st, registry.Options{}), Keys: keys, Tokens: auth, Assertions: assertions,
		RootURL: root, FHIRBase: fhirBase(root), Dev: dev, Logger: log,
	})
	if err != nil {
		assertions.Close()
		return nil, err
	}
	e := srv.Endpoints()
	return &oauthServer{
		server:     srv,
		uris:       &fhir.OAuthURIs{Authorize: e.Authorize, Token: e.Token, Introspect: e.Introspect, Revoke: e.Revoke},
		assertions: assertions,
	}, nil
}

func (o *oauthServer) close() { o.assertions.Close() }

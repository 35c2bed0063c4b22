package authz

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/fhirgraph/fhirgraph/authz/registry"
	"github.com/fhirgraph/fhirgraph/authz/token"
)

// An access token carries the practices its client was consented to when
// it was issued. A client suspended since, or a practice's consent
// withdrawn since, must not keep working until the token expires: on every
// request the guard checks the registered client's standing (through a
// short cache) and narrows the token's practices to those the client still
// has. Tokens of clients the registry does not know (minted by an operator
// with `fhirgraph token`) are taken as minted.

// standingTTL is how long a client's standing is reused.
const standingTTL = 5 * time.Second

// Clients is where the guard reads a client's standing (the registry).
type Clients interface {
	GetClient(ctx context.Context, id string) (registry.Client, error)
}

type standing struct {
	known, active bool
	practices     []string
	read          time.Time
}

type standings struct {
	clients Clients
	mu      sync.Mutex
	cache   map[string]standing
}

func (s *standings) get(ctx context.Context, id string) (standing, error) {
	now := time.Now()
	s.mu.Lock()
	st, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Sub(st.read) < standingTTL {
		return st, nil
	}
	c, err := s.clients.GetClient(ctx, id)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		st = standing{read: now}
	case err != nil:
		return standing{}, err
	default:
		st = standing{known: true, active: c.Status == registry.StatusActive, practices: c.Practices, read: now}
	}
	s.mu.Lock()
	if s.cache == nil || len(s.cache) > 10_000 {
		s.cache = map[string]standing{}
	}
	s.cache[id] = st
	s.mu.Unlock()
	return st, nil
}

// narrow applies the client's standing to claims: an error for a
// registered client that is no longer active, else claims with only the
// practices the client still has (a copy when that changes them).
func (s *standings) narrow(ctx context.Context, c *token.AccessClaims) (*token.AccessClaims, error) {
	if s == nil || s.clients == nil || c.ClientID == "" {
		return c, nil
	}
	st, err := s.get(ctx, c.ClientID)
	if err != nil {
		return nil, err
	}
	if !st.known {
		return c, nil
	}
	if !st.active {
		return nil, &token.Error{Code: token.CodeInvalidToken, Description: "the access token's client is no longer active"}
	}
	kept := slices.DeleteFunc(slices.Clone(c.Practices), func(p string) bool { return !slices.Contains(st.practices, p) })
	if len(kept) == len(c.Practices) {
		return c, nil
	}
	narrowed := *c
	narrowed.Practices = kept
	return &narrowed, nil
}

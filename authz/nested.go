package authz

import (
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/store"
)

// ScopeNested gives every chained (Target) and reverse-chained (Has) plan
// in where the search filter of its own type, recursively, so that a
// chain never matches through a resource p may not see. A type p may not
// search comes back as an Access with Allowed false and the policy's
// Reason (the whole search is then refused); an error is an internal
// failure. Both APIs (REST search, GraphQL lists) call it before applying
// the searched type's own filter.
func (g *Guard) ScopeNested(p *Principal, where []store.Clause) (Access, error) {
	for _, c := range where {
		for _, pr := range c {
			var q *store.Query
			switch {
			case pr.Target != nil:
				q = pr.Target
			case pr.Has != nil:
				q = pr.Has.Query
			default:
				continue
			}
			if a, err := g.ScopeNested(p, q.Where); err != nil || !a.Allowed {
				return a, err
			}
			a, err := g.Decide(p, policy.SearchType, q.Type)
			if err != nil || !a.Allowed {
				return a, err
			}
			a.Filter.Apply(q)
		}
	}
	return Access{Allowed: true}, nil
}

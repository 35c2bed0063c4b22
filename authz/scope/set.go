package scope

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Set is a parsed scope string: what a client asks for, is allowed, or
// was granted. The zero Set is empty.
type Set struct {
	// Scopes are the distinct scopes, sorted by their canonical form.
	Scopes []Scope
	// Version is the SMART version of the resource scopes: V1, V2, or
	// NoVersion when the set has none.
	Version Version
}

// Parse parses a space-separated scope string (RFC 6749 §3.3). Runs of
// spaces and leading or trailing spaces are tolerated; the empty string is
// the empty Set. It returns an *Error for the first malformed scope, and
// one wrapping ErrMixedVersions when resource scopes of SMART v1 and v2
// are mixed. Unknown scopes are kept as Other.
func Parse(s string) (Set, error) {
	var set Set
	var keys []string
	seen := make(map[string]bool)
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		sc, err := ParseScope(tok)
		if err != nil {
			return Set{}, err
		}
		if sc.Kind == Resource {
			if set.Version != NoVersion && set.Version != sc.Version {
				return Set{}, &Error{Scope: s, Err: ErrMixedVersions,
					Reason: fmt.Sprintf("SMART v1 and v2 resource scopes mixed (%s is %s); use one version", tok, sc.Version)}
			}
			set.Version = sc.Version
		}
		key := sc.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		set.Scopes = append(set.Scopes, sc)
		keys = append(keys, key)
	}
	sort.Sort(byKey{set.Scopes, keys})
	return set, nil
}

type byKey struct {
	scopes []Scope
	keys   []string
}

func (b byKey) Len() int           { return len(b.keys) }
func (b byKey) Less(i, j int) bool { return b.keys[i] < b.keys[j] }
func (b byKey) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.scopes[i], b.scopes[j] = b.scopes[j], b.scopes[i]
}

// String returns the canonical scope string: canonical scopes, distinct,
// sorted, separated by one space. Parse(s.String()) equals s.
func (s Set) String() string {
	parts := make([]string, len(s.Scopes))
	for i, sc := range s.Scopes {
		parts[i] = sc.String()
	}
	return strings.Join(parts, " ")
}

// Has reports whether the set holds a scope of kind k (OfflineAccess,
// LaunchPatient, …).
func (s Set) Has(k Kind) bool {
	for _, sc := range s.Scopes {
		if sc.Kind == k {
			return true
		}
	}
	return false
}

// Contains reports whether every scope of b is within s: b is the same as
// s or narrower. See Uncovered.
func (s Set) Contains(b Set) bool { return len(s.Uncovered(b)) == 0 }

// Uncovered returns the scopes of b that s does not cover, in b's order;
// none when b is the same as s or narrower (refresh with the same or a
// narrower scope, a request within a client's allowed scopes).
//
// A resource scope of b is covered when the scopes of s with the same
// context, reaching its type (the same type or *), and whose query is
// absent or a subset of its query's parameters, together grant all its
// interactions: patient/Observation.rs is within patient/*.cruds and
// within "patient/Observation.r patient/Observation.s";
// patient/Observation.r is within patient/Observation.read (v1 read is
// rs); a granular scope is within the same scope without a query. The
// contexts never cover each other: a patient/ scope is confined to the
// patient in context and user/ to what the user may see, which the scopes
// alone cannot compare. Other scopes, launch and identity scopes are
// covered only by themselves.
func (s Set) Uncovered(b Set) []Scope {
	var out []Scope
	for _, want := range b.Scopes {
		if !s.covers(want) {
			out = append(out, want)
		}
	}
	return out
}

func (s Set) covers(want Scope) bool {
	if want.Kind != Resource {
		key := want.String()
		for _, have := range s.Scopes {
			if have.String() == key {
				return true
			}
		}
		return false
	}
	var got Interactions
	for _, have := range s.Scopes {
		if have.Context == want.Context && (have.Type == "*" || have.Type == want.Type) &&
			querySubset(have.Query, want) {
			got |= have.Interactions
		}
	}
	return got.Has(want.Interactions)
}

// querySubset reports whether every parameter value of q is one of want's
// query: want then asks at least everything q asks, so it reaches no
// resource q does not.
func querySubset(q map[string][]string, want Scope) bool {
	if q == nil {
		return true
	}
	for name, vs := range q {
		for _, v := range vs {
			found := false
			for _, w := range want.Query[name] {
				if w == v {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
	}
	return true
}

// Cache remembers parsed scope strings, so a server parses each token's
// scope once rather than on every request. It holds at most Max strings
// (a default when 0) and forgets them all when full. Safe for concurrent
// use; the zero Cache is ready.
type Cache struct {
	Max int

	mu sync.RWMutex
	m  map[string]cached
}

type cached struct {
	set Set
	err error
}

const defaultCacheMax = 10000

// Parse returns Parse(s), from the cache when s was parsed before. The
// returned Set is shared: callers must not modify it.
func (c *Cache) Parse(s string) (Set, error) {
	c.mu.RLock()
	e, ok := c.m[s]
	c.mu.RUnlock()
	if ok {
		return e.set, e.err
	}
	set, err := Parse(s)
	max := c.Max
	if max <= 0 {
		max = defaultCacheMax
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= max {
		c.m = make(map[string]cached)
	}
	c.m[s] = cached{set, err}
	c.mu.Unlock()
	return set, err
}

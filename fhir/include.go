package fhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// _include and _revinclude are bounded per page: iterate follows included
// resources for at most maxIncludeRounds rounds beyond the first, and a
// page carries at most maxIncluded included resources. Past either bound
// the Bundle says so in an OperationOutcome entry.
const (
	maxIncludeRounds = 3
	maxIncluded      = 1000
	// idsPerQuery bounds the ids (or references) one include query names.
	idsPerQuery = 500
)

// includer collects what _include and _revinclude add to one page.
type includer struct {
	store    store.Store
	compiled *search.Search
	base     string          // the FHIR base: absolute references under it are local
	seen     map[string]bool // "Type/id" of every match and inclusion
	out      []store.Resource
	// truncated says why not everything reachable was included ("" when
	// all of it was).
	truncated string
	// reach gives the filter of an included type: the read filter for
	// _include, the search filter for _revinclude; false leaves the type
	// out.
	reach func(in policy.Interaction, typ string) (authz.Filter, bool, error)
}

// included resolves _include and _revinclude for a page: the resources the
// matches point at and those pointing at them, then, for :iterate, the same
// from what was included, each resource once and never a match again. The
// second result is an explanation when the bounds cut the inclusion short.
//
// Every resource is fetched by a store query (by id for _include, by
// reference for _revinclude), never read around the query API, with the
// filter the token has for the fetched type: _include asks the guard for
// read on the included type, _revinclude for search on the referring
// type. A type the token may not reach that way is left out silently (a
// search with _include=*:* still answers with what the token may see).
func (s *server) included(r *http.Request, compiled *search.Search, matches []store.Resource, base string) ([]store.Resource, string, error) {
	if len(compiled.Includes)+len(compiled.RevIncludes) == 0 || len(matches) == 0 {
		return nil, "", nil
	}
	ctx := r.Context()
	type decided struct {
		f  authz.Filter
		ok bool
	}
	decisions := map[string]decided{}
	reach := func(in policy.Interaction, typ string) (authz.Filter, bool, error) {
		key := string(in) + " " + typ
		if d, seen := decisions[key]; seen {
			return d.f, d.ok, nil
		}
		f, err := s.decide(r, in, typ)
		var fe *Error
		if errors.As(err, &fe) && fe.Status == http.StatusForbidden {
			decisions[key] = decided{}
			return authz.Filter{}, false, nil
		}
		if err != nil {
			return authz.Filter{}, false, err
		}
		decisions[key] = decided{f, true}
		return f, true, nil
	}
	c := &includer{store: s.store, compiled: compiled, base: base, seen: map[string]bool{}, reach: reach}
	for _, m := range matches {
		c.seen[m.Type+"/"+m.ID] = true
	}
	sources := matches
	for round := 0; len(sources) > 0 && c.truncated == ""; round++ {
		if round > maxIncludeRounds {
			if c.iterates(sources) {
				c.truncated = fmt.Sprintf(":iterate stopped after %d rounds; more resources may be reachable", maxIncludeRounds)
			}
			break
		}
		before := len(c.out)
		if err := c.round(ctx, sources, round > 0); err != nil {
			return nil, "", err
		}
		sources = c.out[before:]
	}
	return c.out, c.truncated, nil
}

// add keeps r unless it is already on the page; false once the page is
// full.
func (c *includer) add(r store.Resource) bool {
	key := r.Type + "/" + r.ID
	if c.seen[key] {
		return true
	}
	if len(c.out) >= maxIncluded {
		c.truncated = fmt.Sprintf("included resources were cut at %d for this page", maxIncluded)
		return false
	}
	c.seen[key] = true
	c.out = append(c.out, r)
	return true
}

// round applies the includes (only the :iterate ones when iterating) to
// sources.
func (c *includer) round(ctx context.Context, sources []store.Resource, iterating bool) error {
	// _include: the references each source holds, fetched by id per type.
	wanted := map[string][]string{}
	var types []string
	for _, src := range sources {
		for _, in := range c.compiled.Includes {
			if iterating && !in.Iterate {
				continue
			}
			for _, concrete := range in.Follow(src.Type) {
				for _, ref := range concrete.References(src.Body, c.base) {
					typ, id, _ := strings.Cut(ref, "/")
					if c.seen[ref] || slices.Contains(wanted[typ], id) || !validate.IsResourceType(typ) {
						continue
					}
					if wanted[typ] == nil {
						types = append(types, typ)
					}
					wanted[typ] = append(wanted[typ], id)
				}
			}
		}
	}
	for _, typ := range types {
		f, ok, err := c.reach(policy.Read, typ)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for ids := range slices.Chunk(wanted[typ], idsPerQuery) {
			q := search.IDQuery(typ, ids)
			f.Apply(&q)
			if full, err := c.fetch(ctx, q); full || err != nil {
				return err
			}
		}
	}
	// _revinclude: what points at the sources, per parameter and type.
	refs := map[string][]string{}
	var targets []string
	for _, src := range sources {
		if refs[src.Type] == nil {
			targets = append(targets, src.Type)
		}
		refs[src.Type] = append(refs[src.Type], src.Type+"/"+src.ID)
	}
	for _, in := range c.compiled.RevIncludes {
		if iterating && !in.Iterate {
			continue
		}
		for _, typ := range targets {
			for _, concrete := range in.Reverse(typ) {
				f, ok, err := c.reach(policy.SearchType, concrete.Source)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				for chunk := range slices.Chunk(refs[typ], idsPerQuery) {
					q := concrete.RevQuery(chunk, store.MaxPageSize)
					f.Apply(&q)
					if full, err := c.fetch(ctx, q); full || err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// fetch runs one include query and adds its results; full reports that
// the page can take no more.
func (c *includer) fetch(ctx context.Context, q store.Query) (full bool, err error) {
	page, err := c.store.Search(ctx, q)
	if err != nil {
		return false, err
	}
	for _, r := range page.Resources {
		if !c.add(r) {
			return true, nil
		}
	}
	if page.Next != "" {
		// More resources answer than one query returns, which is already
		// as many as a page may include.
		c.truncated = fmt.Sprintf("included resources were cut at %d for this page", maxIncluded)
		return true, nil
	}
	return false, nil
}

// iterates reports whether an :iterate include would follow any of
// sources further: an _include to a resource not on the page yet, or a
// _revinclude that could find resources pointing at them (which only a
// query would tell for certain).
func (c *includer) iterates(sources []store.Resource) bool {
	for _, src := range sources {
		for _, in := range c.compiled.Includes {
			if !in.Iterate {
				continue
			}
			for _, concrete := range in.Follow(src.Type) {
				for _, ref := range concrete.References(src.Body, c.base) {
					if !c.seen[ref] {
						return true
					}
				}
			}
		}
		for _, in := range c.compiled.RevIncludes {
			if in.Iterate && len(in.Reverse(src.Type)) > 0 {
				return true
			}
		}
	}
	return false
}

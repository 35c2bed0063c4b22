package graph

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// Per-request loaders batch what nested fields fetch: every
// Reference.resource of one request waiting at the same time becomes one
// store query per resource type, and every reverse list of the same shape
// (same type, reference and arguments) one query for all its parents.
// gqlgen runs these resolvers concurrently (graph/internal/gqlgen marks
// them), so siblings arrive within the loaders' wait and the number of
// store queries does not grow with the number of parents.
//
// Each batch applies the same authorization as a single read or search:
// the guard decides on the type for the request's principal and the
// filter goes into the store query, so a batch never fetches what one of
// its requests could not have fetched alone.

// batchKeys bounds the keys of one batch, and so the size of the id list
// or OR clause of its store query.
const batchKeys = 200

// loaders belong to one request.
type loaders struct {
	r    *Resolver
	p    *authz.Principal
	wait time.Duration
	refs *dataloadgen.Loader[string, *store.Resource]

	mu      sync.Mutex
	reverse map[string]*dataloadgen.Loader[string, []store.Resource]
}

type loadersKey struct{}

func withLoaders(ctx context.Context, r *Resolver, p *authz.Principal) context.Context {
	l := &loaders{r: r, p: p, wait: r.batchWait, reverse: map[string]*dataloadgen.Loader[string, []store.Resource]{}}
	l.refs = dataloadgen.NewLoader(l.fetchRefs, dataloadgen.WithWait(l.wait), dataloadgen.WithBatchCapacity(batchKeys))
	return context.WithValue(ctx, loadersKey{}, l)
}

func loadersFrom(ctx context.Context) *loaders {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l
}

// denied is a batch's answer for a key whose type the token may not read.
type denied struct{ reason string }

func (d denied) Error() string { return d.reason }

// fetchRefs loads "Type/id" keys: one store query per type (and per
// MaxPageSize ids), each with the read filter the guard gives for that
// type. A key whose resource is missing or outside the filter gets nil.
func (l *loaders) fetchRefs(ctx context.Context, keys []string) ([]*store.Resource, []error) {
	out := make([]*store.Resource, len(keys))
	errs := make([]error, len(keys))
	byType := map[string][]string{}
	for _, k := range keys {
		typ, id, _ := strings.Cut(k, "/")
		byType[typ] = append(byType[typ], id)
	}
	found := map[string]*store.Resource{}
	failed := map[string]error{}
	for typ, ids := range byType {
		a, err := l.r.guard.Decide(l.p, policy.Read, typ)
		switch {
		case err != nil:
			failed[typ] = err
			continue
		case !a.Allowed:
			failed[typ] = denied{a.Reason}
			continue
		}
		for chunk := range slices.Chunk(ids, store.MaxPageSize) {
			q := search.IDQuery(typ, chunk)
			a.Filter.Apply(&q)
			page, err := l.r.store.Search(ctx, q)
			if err != nil {
				failed[typ] = err
				break
			}
			for i := range page.Resources {
				res := &page.Resources[i]
				found[typ+"/"+res.ID] = res
			}
		}
	}
	for i, k := range keys {
		typ, _, _ := strings.Cut(k, "/")
		out[i], errs[i] = found[k], failed[typ]
	}
	return out, errs
}

// reverseList is one shape of reverse list: resources of Type pointing at
// their parent through the reference parameter of include, searched with
// params besides.
type reverseList struct {
	include search.Include
	params  url.Values
	filter  authz.Filter
	// limit is how many resources one parent's list holds (its _count).
	limit int
}

// loadReverse returns the resources of the list's shape that point at
// parent ("Patient/123"), batched with every other parent asking for the
// same shape at the same time.
func (l *loaders) loadReverse(ctx context.Context, list reverseList, parent string) ([]store.Resource, error) {
	key := list.include.Source + "\x00" + list.include.Param + "\x00" + list.params.Encode()
	l.mu.Lock()
	loader := l.reverse[key]
	if loader == nil {
		loader = dataloadgen.NewLoader(func(ctx context.Context, parents []string) ([][]store.Resource, []error) {
			return l.fetchReverse(ctx, list, parents)
		}, dataloadgen.WithWait(l.wait), dataloadgen.WithBatchCapacity(batchKeys))
		l.reverse[key] = loader
	}
	l.mu.Unlock()
	return loader.Load(ctx, parent)
}

// fetchReverse runs one search for all parents (the reference parameter
// ORing them) and deals its matches out to the parents they point at, in
// the search's order, each up to the list's limit. It reads pages until
// every match is dealt or every parent's list is full.
func (l *loaders) fetchReverse(ctx context.Context, list reverseList, parents []string) ([][]store.Resource, []error) {
	fail := func(err error) ([][]store.Resource, []error) {
		errs := make([]error, len(parents))
		for i := range errs {
			errs[i] = err
		}
		return make([][]store.Resource, len(parents)), errs
	}
	params := url.Values{}
	for k, vs := range list.params {
		params[k] = vs
	}
	params.Set(list.include.Param, strings.Join(parents, ","))
	compiled, err := search.Compile(list.include.Source, params, search.Options{Strict: true, BaseURL: l.r.baseURL})
	if err != nil {
		return fail(err)
	}
	// Chains and _has in the arguments get their own types' filters, as
	// in any search (reverse checked the same arguments for one parent).
	if a, err := l.r.guard.ScopeNested(l.p, compiled.Query.Where); err != nil {
		return fail(err)
	} else if !a.Allowed {
		return fail(denied{a.Reason})
	}
	q := compiled.Query
	list.filter.Apply(&q)
	q.Count, q.Total, q.CountOnly = store.MaxPageSize, false, false
	lists := make(map[string][]store.Resource, len(parents))
	for _, p := range parents {
		lists[p] = nil
	}
	open := len(parents)
	for open > 0 {
		page, err := l.r.store.Search(ctx, q)
		if err != nil {
			return fail(err)
		}
		for _, res := range page.Resources {
			for _, ref := range pointsAt(list, res.Body, lists, l.r.baseURL) {
				got, wanted := lists[ref]
				if !wanted || len(got) >= list.limit {
					continue
				}
				lists[ref] = append(got, res)
				if len(got)+1 == list.limit {
					open--
				}
			}
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	out := make([][]store.Resource, len(parents))
	for i, p := range parents {
		out[i] = lists[p]
	}
	return out, make([]error, len(parents))
}

// pointsAt returns the parents (keys of lists) that body points at through
// the list's reference parameter. The search matched body because it
// points at one of them at least, so when the text of body names only one
// parent anywhere, that is the one, and parsing the resource (the costly
// part) is needed only when it names several.
func pointsAt(list reverseList, body []byte, lists map[string][]store.Resource, base string) []string {
	var named []string
	prefix := []byte(list.include.Target + "/")
	for rest, at := body, 0; ; {
		i := bytes.Index(rest, prefix)
		if i < 0 {
			break
		}
		at += i
		if at > 0 && (body[at-1] == '"' || body[at-1] == '/') {
			end := at + len(prefix)
			for end < len(body) && isIDByte(body[end]) {
				end++
			}
			if end < len(body) && (body[end] == '"' || body[end] == '/') {
				ref := string(body[at:end])
				if _, wanted := lists[ref]; wanted && !slices.Contains(named, ref) {
					named = append(named, ref)
				}
			}
		}
		at += len(prefix)
		rest = body[at:]
	}
	if len(named) == 1 {
		return named
	}
	return list.include.References(body, base)
}

// isIDByte tells the bytes of a FHIR id.
func isIDByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '.'
}

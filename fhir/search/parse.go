package search

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// Search is a compiled FHIR search: the store plan, and what the request
// said that the plan does not carry.
type Search struct {
	Query store.Query
	// Used holds the parameters that took effect, for the Bundle's self
	// link; Ignored names those that did not (unknown parameters).
	Used    url.Values
	Ignored []string
	// Includes and RevIncludes are the _include and _revinclude values.
	Includes, RevIncludes []Include
	// Subset is what _summary and _elements leave of each match; nil keeps
	// all of it.
	Subset *Subset
}

// ParamError is a malformed search parameter: the answer is 400 naming it.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return fmt.Sprintf("search parameter %s: %s", e.Param, e.Msg) }

// Options tune compilation.
type Options struct {
	// Strict makes an unknown parameter an error (Prefer: handling=strict)
	// instead of being ignored and reported.
	Strict bool
	// BaseURL is this server's FHIR base; absolute references under it are
	// searched as relative ones.
	BaseURL string
}

// Result parameters that are not filters.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_total": true, "_summary": true, "_elements": true,
	"_include": true, "_revinclude": true, "_format": true, "_pretty": true, "_cursor": true,
}

// IsResultParam reports whether a parameter (with or without a modifier)
// shapes or pages the result rather than filtering it.
func IsResultParam(key string) bool {
	base, _, _ := strings.Cut(key, ":")
	return resultParams[base]
}

// DefaultCount is the page size when _count is absent.
const DefaultCount = 50

// maxAlternatives bounds the comma-separated values of one parameter, so no
// request can build a query beyond what the engines accept.
const maxAlternatives = 500

// maxClauses bounds the parameters one search combines (AND), and
// maxIncludes its _include and _revinclude values.
const (
	maxClauses  = 64
	maxIncludes = 16
)

// Compile turns the query parameters of a search on typ into a plan.
func Compile(typ string, params url.Values, opts Options) (*Search, error) {
	s := &Search{Query: store.Query{Type: typ, Count: DefaultCount}, Used: url.Values{}}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		for _, value := range params[key] {
			used, err := s.add(typ, key, value, opts)
			if err != nil {
				return nil, err
			}
			if used {
				s.Used.Add(key, value)
			}
		}
	}
	if len(s.Query.Where) > maxClauses {
		return nil, &ParamError{Param: keys[len(keys)-1], Msg: fmt.Sprintf("a search may combine at most %d parameters", maxClauses)}
	}
	sub, err := ParseSubset(typ, params)
	if err != nil {
		return nil, err
	}
	s.Subset = sub
	return s, nil
}

// add applies one key=value pair; false means it was ignored.
func (s *Search) add(typ, key, value string, opts Options) (bool, error) {
	if IsResultParam(key) {
		return true, s.result(key, value)
	}
	if strings.HasPrefix(key, "_has:") {
		return true, s.has(typ, key, value, opts)
	}
	code, modifier, _ := strings.Cut(key, ":")
	if chain := strings.IndexByte(key, '.'); chain > 0 {
		return s.chain(typ, key, value, opts)
	}
	switch code {
	case "_id":
		ids := splitOr(value)
		if len(ids) > maxAlternatives {
			return false, &ParamError{Param: key, Msg: fmt.Sprintf("at most %d values", maxAlternatives)}
		}
		if slices.Contains(ids, "") {
			return false, &ParamError{Param: key, Msg: "empty value"}
		}
		if s.Query.IDs != nil {
			ids = intersect(s.Query.IDs, ids)
			if len(ids) == 0 {
				ids = []string{""} // no id satisfies both: match nothing
			}
		}
		s.Query.IDs = ids
		return true, nil
	case "_lastUpdated":
		return true, s.lastUpdated(key, value)
	}
	p := lookup(typ, code)
	if p == nil {
		if opts.Strict {
			return false, &ParamError{Param: key, Msg: "unknown search parameter for " + typ}
		}
		s.Ignored = append(s.Ignored, key)
		return false, nil
	}
	clause, err := predicates(p, key, modifier, value, opts)
	if err != nil {
		return false, err
	}
	s.Query.Where = append(s.Query.Where, clause)
	return true, nil
}

func lookup(typ, code string) *schema.SearchParam {
	if r := schema.Search().Resource(typ); r != nil {
		return r.Param(code)
	}
	return schema.Search().CommonParam(code)
}

// predicates compiles one parameter occurrence: its comma-separated values
// become one OR clause.
func predicates(p *schema.SearchParam, key, modifier, value string, opts Options) (store.Clause, error) {
	if modifier == "missing" {
		switch value {
		case "true":
			return store.Clause{{Param: p.Code, Missing: true}}, nil
		case "false":
			return store.Clause{{Param: p.Code, Match: store.MatchAny}}, nil
		}
		return nil, &ParamError{Param: key, Msg: "the :missing modifier takes true or false"}
	}
	if modifier != "" && !modifierAllowed(p, modifier) {
		return nil, &ParamError{Param: key, Msg: fmt.Sprintf("modifier :%s is not allowed on this %s parameter", modifier, p.Type)}
	}
	values := splitOr(value)
	if len(values) > maxAlternatives {
		return nil, &ParamError{Param: key, Msg: fmt.Sprintf("at most %d values", maxAlternatives)}
	}
	var clause store.Clause
	for _, v := range values {
		if v == "" {
			return nil, &ParamError{Param: key, Msg: "empty value"}
		}
		preds, err := predicate(p, key, modifier, v, opts)
		if err != nil {
			return nil, err
		}
		clause = append(clause, preds...)
	}
	if len(clause) == 0 {
		return nil, &ParamError{Param: key, Msg: "empty value"}
	}
	return clause, nil
}

func modifierAllowed(p *schema.SearchParam, modifier string) bool {
	switch p.Type {
	case schema.ParamToken:
		return modifier == "text" || modifier == "not" || (modifier == "of-type" && slices.Contains(p.Modifiers, "ofType"))
	case schema.ParamString:
		return modifier == "exact" || modifier == "contains"
	case schema.ParamReference:
		return modifier == "identifier" || slices.Contains(p.Targets, modifier)
	case schema.ParamURI:
		return modifier == "below" || modifier == "above"
	}
	return false
}

func predicate(p *schema.SearchParam, key, modifier, v string, opts Options) ([]store.Predicate, error) {
	switch p.Type {
	case schema.ParamToken:
		return tokenPredicate(p.Code, key, modifier, v)
	case schema.ParamString:
		switch modifier {
		case "exact":
			return []store.Predicate{{Param: p.Code, Match: store.MatchEqual, Value: Fold(v), System: v, HasSystem: true}}, nil
		case "contains":
			return []store.Predicate{{Param: p.Code, Match: store.MatchContains, Value: Fold(v)}}, nil
		}
		return []store.Predicate{{Param: p.Code, Match: store.MatchPrefix, Value: Fold(v)}}, nil
	case schema.ParamReference:
		return referencePredicates(p, key, modifier, v, opts)
	case schema.ParamDate:
		return datePredicates(p.Code, key, v)
	case schema.ParamNumber:
		return numberPredicates(p.Code, key, v, store.Predicate{Match: store.MatchEqual})
	case schema.ParamQuantity:
		return quantityPredicates(p.Code, key, v)
	case schema.ParamURI:
		switch modifier {
		case "below":
			return []store.Predicate{{Param: p.Code, Match: store.MatchPrefix, Value: v}}, nil
		case "above":
			var out []store.Predicate
			for i := len(v); i > 0; i = strings.LastIndexByte(v[:i], '/') {
				out = append(out, store.Predicate{Param: p.Code, Match: store.MatchEqual, Value: v[:i]})
			}
			return out, nil
		}
		return []store.Predicate{{Param: p.Code, Match: store.MatchEqual, Value: v}}, nil
	}
	return nil, &ParamError{Param: key, Msg: fmt.Sprintf("%s parameters are not supported", p.Type)}
}

// tokenPredicate reads code, system|code, |code and system|.
func tokenPredicate(code, key, modifier, v string) ([]store.Predicate, error) {
	switch modifier {
	case "text":
		return []store.Predicate{{Param: code + textSuffix, Match: store.MatchPrefix, Value: Fold(v)}}, nil
	case "of-type":
		parts := strings.Split(v, "|")
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return nil, &ParamError{Param: key, Msg: "of-type takes system|code|value"}
		}
		return []store.Predicate{{Param: code + ofTypeSuffix, Match: store.MatchEqual, Value: v}}, nil
	}
	pred := store.Predicate{Param: code, Match: store.MatchEqual, Not: modifier == "not"}
	system, value, hasSystem := strings.Cut(v, "|")
	if !hasSystem {
		pred.Value = v
	} else {
		pred.System, pred.HasSystem, pred.Value = system, true, value
		if value == "" {
			if system == "" {
				return nil, &ParamError{Param: key, Msg: "a token needs a code, a system, or both"}
			}
			pred.Match = store.MatchAny
		}
	}
	return []store.Predicate{pred}, nil
}

// referencePredicates reads id, Type/id, absolute URLs and :identifier. A
// bare id on a parameter with several targets matches any of them.
func referencePredicates(p *schema.SearchParam, key, modifier, v string, opts Options) ([]store.Predicate, error) {
	if modifier == "identifier" {
		system, value, hasSystem := strings.Cut(v, "|")
		pred := store.Predicate{Param: p.Code + identifierSuffix, Match: store.MatchEqual, Value: v}
		if hasSystem {
			pred.System, pred.HasSystem, pred.Value = system, true, value
		}
		return []store.Predicate{pred}, nil
	}
	v = NormalizeReference(v, opts.BaseURL)
	if strings.Contains(v, "://") || strings.HasPrefix(v, "urn:") {
		return []store.Predicate{{Param: p.Code, Match: store.MatchEqual, Value: v}}, nil
	}
	if typ, id, ok := strings.Cut(v, "/"); ok {
		if modifier != "" && modifier != typ {
			return nil, &ParamError{Param: key, Msg: fmt.Sprintf("reference %q is not of type %s", v, modifier)}
		}
		if !slices.Contains(p.Targets, typ) || strings.Contains(id, "/") {
			return nil, &ParamError{Param: key, Msg: fmt.Sprintf("%q is not a reference to one of %s", v, strings.Join(p.Targets, ", "))}
		}
		return []store.Predicate{{Param: p.Code, Match: store.MatchEqual, Value: v}}, nil
	}
	targets := p.Targets
	if modifier != "" {
		targets = []string{modifier}
	}
	var out []store.Predicate
	for _, t := range targets {
		out = append(out, store.Predicate{Param: p.Code, Match: store.MatchEqual, Value: t + "/" + v})
	}
	return out, nil
}

// chain compiles param[:Type].child=value one level deep.
func (s *Search) chain(typ, key, value string, opts Options) (bool, error) {
	head, child, _ := strings.Cut(key, ".")
	code, modifier, _ := strings.Cut(head, ":")
	p := lookup(typ, code)
	if p == nil || p.Type != schema.ParamReference {
		return false, &ParamError{Param: key, Msg: "chaining needs a reference parameter of " + typ}
	}
	targets := p.Targets
	if modifier != "" {
		if !slices.Contains(p.Targets, modifier) {
			return false, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a target of %s", modifier, code)}
		}
		targets = []string{modifier}
	}
	if strings.Contains(child, ".") {
		return false, &ParamError{Param: key, Msg: "chains are supported one level deep"}
	}
	var clause store.Clause
	for _, t := range targets {
		sub, err := Compile(t, url.Values{child: {value}}, Options{Strict: true, BaseURL: opts.BaseURL})
		if err != nil {
			if len(targets) > 1 {
				continue // the chained parameter does not exist on this target
			}
			return false, &ParamError{Param: key, Msg: err.Error()}
		}
		q := sub.Query
		q.Count = 0
		clause = append(clause, store.Predicate{Param: p.Code, Target: &q})
	}
	if len(clause) == 0 {
		return false, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a parameter of %s", child, strings.Join(targets, " or "))}
	}
	s.Query.Where = append(s.Query.Where, clause)
	return true, nil
}

// has compiles _has:Type:param:child=value (reverse chaining, one level):
// resources that a Type matching child=value points at through param.
func (s *Search) has(typ, key, value string, opts Options) error {
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return &ParamError{Param: key, Msg: "expected _has:Type:reference-parameter:parameter=value"}
	}
	source, ref, child := parts[1], parts[2], parts[3]
	p := lookup(source, ref)
	if p == nil || p.Type != schema.ParamReference || !slices.Contains(p.Targets, typ) {
		return &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a reference parameter of %s pointing at %s", ref, source, typ)}
	}
	if strings.HasPrefix(child, "_has:") {
		return &ParamError{Param: key, Msg: "_has is supported one level deep"}
	}
	sub, err := Compile(source, url.Values{child: {value}}, Options{Strict: true, BaseURL: opts.BaseURL})
	if err != nil {
		return &ParamError{Param: key, Msg: err.Error()}
	}
	q := sub.Query
	q.Count = 0
	s.Query.Where = append(s.Query.Where, store.Clause{{Has: &store.ReverseChain{Query: &q, Param: ref}}})
	return nil
}

// result applies a result parameter.
func (s *Search) result(key, value string) error {
	base, modifier, _ := strings.Cut(key, ":")
	if modifier != "" && base != "_include" && base != "_revinclude" {
		return &ParamError{Param: key, Msg: base + " takes no modifier"}
	}
	switch base {
	case "_count":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return &ParamError{Param: key, Msg: "expected a non-negative integer"}
		}
		if n > store.MaxPageSize {
			return &ParamError{Param: key, Msg: fmt.Sprintf("at most %d", store.MaxPageSize)}
		}
		if n == 0 {
			s.Query.CountOnly, s.Query.Total = true, true
		}
		s.Query.Count = n
	case "_cursor":
		s.Query.Cursor = value
	case "_include", "_revinclude":
		in, err := ParseInclude(s.Query.Type, key, value, base == "_revinclude")
		if err != nil {
			return err
		}
		if len(s.Includes)+len(s.RevIncludes) >= maxIncludes {
			return &ParamError{Param: key, Msg: fmt.Sprintf("at most %d _include and _revinclude values", maxIncludes)}
		}
		if base == "_include" {
			s.Includes = append(s.Includes, in)
		} else {
			s.RevIncludes = append(s.RevIncludes, in)
		}
	case "_total":
		switch value {
		case "accurate", "estimate":
			s.Query.Total = true
		case "none":
		default:
			return &ParamError{Param: key, Msg: "expected none, estimate or accurate"}
		}
	case "_summary":
		if value == "count" {
			s.Query.CountOnly, s.Query.Total = true, true
		}
	case "_sort":
		for _, k := range strings.Split(value, ",") {
			desc := strings.HasPrefix(k, "-")
			k = strings.TrimPrefix(k, "-")
			if k == "" {
				return &ParamError{Param: key, Msg: "empty sort key"}
			}
			if k != "_lastUpdated" && k != "_id" {
				p := lookup(s.Query.Type, k)
				if p == nil || p.Type == schema.ParamComposite || p.Type == schema.ParamSpecial {
					return &ParamError{Param: key, Msg: fmt.Sprintf("cannot sort %s by %q", s.Query.Type, k)}
				}
			}
			s.Query.Sort = append(s.Query.Sort, store.SortKey{Param: k, Desc: desc})
		}
	}
	return nil
}

func splitOr(v string) []string {
	// A comma escaped as \, belongs to the value.
	var out []string
	var cur strings.Builder
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] == '\\' && i+1 < len(v) && (v[i+1] == ',' || v[i+1] == '|' || v[i+1] == '$' || v[i+1] == '\\'):
			cur.WriteByte(v[i+1])
			i++
		case v[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(v[i])
		}
	}
	return append(out, cur.String())
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

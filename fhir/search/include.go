package search

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// Include is a parsed _include or _revinclude value: Source:Param[:Target],
// where Source "*" (the value `*`) stands for any type and Param "*" for
// every reference parameter of Source. Iterate is set by the :iterate
// modifier (or R4's older :recurse): the include is then applied to
// included resources as well as to the matches.
type Include struct {
	Source, Param, Target string
	Iterate               bool
}

// wildcard stands for any type or any reference parameter.
const wildcard = "*"

// ParseInclude reads an _include (rev false) or _revinclude (rev true)
// value, key being the parameter as written (with its modifier), for a
// search on typ. Without :iterate, an _include starts at typ and a
// _revinclude points at it; with :iterate they may start or point anywhere.
// A named parameter must be a reference parameter of the source type.
func ParseInclude(typ, key, value string, rev bool) (Include, error) {
	var in Include
	switch _, modifier, _ := strings.Cut(key, ":"); modifier {
	case "":
	case "iterate", "recurse":
		in.Iterate = true
	default:
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("unknown modifier :%s (expected :iterate)", modifier)}
	}
	if value == wildcard {
		in.Source, in.Param = wildcard, wildcard
		return in, nil
	}
	parts := strings.Split(value, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%q: expected Type:param, Type:param:TargetType, Type:* or *", value)}
	}
	in.Source, in.Param = parts[0], parts[1]
	if len(parts) == 3 {
		in.Target = parts[2]
	}
	if !in.Iterate && !rev && in.Source != typ {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("_include on a %s search must start with %s: (or use _include:iterate)", typ, typ)}
	}
	if !in.Iterate && rev && in.Target != "" && in.Target != typ {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("_revinclude on a %s search must point at %s (or use _revinclude:iterate)", typ, typ)}
	}
	if in.Param == wildcard {
		if schema.Search().Resource(in.Source) == nil || in.Target != "" {
			return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%q: the * form is Type:* for a searchable type, or *", value)}
		}
		return in, nil
	}
	p := lookup(in.Source, in.Param)
	if p == nil || p.Type != schema.ParamReference {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a reference parameter of %s", in.Param, in.Source)}
	}
	if in.Target != "" && !slices.Contains(p.Targets, in.Target) {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a target of %s:%s", in.Target, in.Source, in.Param)}
	}
	if rev && !in.Iterate && !slices.Contains(p.Targets, typ) {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%s:%s never points at %s", in.Source, in.Param, typ)}
	}
	return in, nil
}

// Follow returns the concrete includes (no wildcards) that take a resource
// of type typ to the resources it points at.
func (in Include) Follow(typ string) []Include {
	if in.Source != wildcard && in.Source != typ {
		return nil
	}
	if in.Param != wildcard {
		return []Include{in}
	}
	r := schema.Search().Resource(typ)
	if r == nil {
		return nil
	}
	var out []Include
	for _, p := range r.Params {
		if p.Type == schema.ParamReference {
			out = append(out, Include{Source: typ, Param: p.Code, Iterate: in.Iterate})
		}
	}
	return out
}

// Reverse returns the concrete reverse includes (no wildcards) that find
// the resources pointing at a resource of type typ.
func (in Include) Reverse(typ string) []Include {
	if in.Target != "" && in.Target != typ {
		return nil
	}
	var out []Include
	for _, r := range schema.Search().Resources {
		if in.Source != wildcard && in.Source != r.Type {
			continue
		}
		for _, p := range r.Params {
			if p.Type != schema.ParamReference || !slices.Contains(p.Targets, typ) {
				continue
			}
			if in.Param == wildcard || in.Param == p.Code {
				out = append(out, Include{Source: r.Type, Param: p.Code, Target: in.Target, Iterate: in.Iterate})
			}
		}
	}
	return out
}

// References returns the "Type/id" references a resource holds through the
// include's parameter (restricted to its Target type when set); absolute
// ones count when under base, the server's FHIR base URL.
func (in Include) References(body []byte, base string) []string {
	obj, err := fhirjson.Parse(body)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range IndexParam(obj, in.Param, base) {
		if v.Param != in.Param || !strings.Contains(v.Value, "/") || strings.Contains(v.Value, "://") {
			continue
		}
		if in.Target != "" && !strings.HasPrefix(v.Value, in.Target+"/") {
			continue
		}
		out = append(out, v.Value)
	}
	return out
}

// RevQuery is the search for resources of the include's source type that
// point at any of refs through its parameter.
func (in Include) RevQuery(refs []string, count int) store.Query {
	clause := make(store.Clause, 0, len(refs))
	for _, r := range refs {
		clause = append(clause, store.Predicate{Param: in.Param, Match: store.MatchEqual, Value: r})
	}
	return store.Query{Type: in.Source, Where: []store.Clause{clause}, Count: count}
}

// IDQuery is the search for the resources of type typ with the given ids:
// how an _include fetches what it points at, through the same store query
// as any search so that every filter of the query API applies to it.
func IDQuery(typ string, ids []string) store.Query {
	return store.Query{Type: typ, IDs: ids, Count: min(max(len(ids), 1), store.MaxPageSize)}
}

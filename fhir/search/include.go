package search

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// Include is a parsed _include or _revinclude value: Source:param[:Target].
type Include struct {
	Source, Param, Target string
}

// ParseInclude reads an _include (rev false) or _revinclude (rev true) value
// for a search on typ. For _include the source is typ; for _revinclude the
// target must be typ. The parameter must be a reference parameter of the
// source type.
func ParseInclude(typ, key, value string, rev bool) (Include, error) {
	parts := strings.Split(value, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%q: expected Type:param or Type:param:TargetType", value)}
	}
	in := Include{Source: parts[0], Param: parts[1]}
	if len(parts) == 3 {
		in.Target = parts[2]
	}
	p := lookup(in.Source, in.Param)
	if p == nil || p.Type != schema.ParamReference {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a reference parameter of %s", in.Param, in.Source)}
	}
	if !rev && in.Source != typ {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("_include on a %s search must start with %s:", typ, typ)}
	}
	if rev && in.Target != "" && in.Target != typ {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("_revinclude on a %s search must point at %s", typ, typ)}
	}
	if in.Target != "" && !slices.Contains(p.Targets, in.Target) {
		return Include{}, &ParamError{Param: key, Msg: fmt.Sprintf("%s is not a target of %s:%s", in.Target, in.Source, in.Param)}
	}
	return in, nil
}

// References returns the "Type/id" references a resource holds through the
// include's parameter (restricted to its Target type when set).
func (in Include) References(body []byte) []string {
	obj, err := fhirjson.Parse(body)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range IndexParam(obj, in.Param) {
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

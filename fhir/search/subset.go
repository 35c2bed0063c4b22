package search

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/schema"
)

// Subset is what _summary and _elements ask to be left of each resource
// (FHIR R4 search §3.1.1.5.8-9). The zero value, and nil, keep everything.
type Subset struct {
	// Summary is "true", "text" or "data"; "" when _summary is absent or
	// false (count needs no subset: it returns no resources).
	Summary string
	// Elements are the top-level element names of _elements, with choice
	// elements by their name without [x] ("value").
	Elements []string
}

// The tag FHIR marks a subsetted resource with.
const (
	SubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	SubsettedCode   = "SUBSETTED"
)

// ParseSubset reads _summary and _elements for resources of type typ. A
// value that is not one of _summary's codes, an element name typ does not
// have, or both parameters at once (other than _summary=false) is a
// *ParamError naming the parameter. It returns nil when nothing is to be
// left out.
func ParseSubset(typ string, params url.Values) (*Subset, error) {
	var sub Subset
	summaries := params["_summary"]
	if len(summaries) > 1 {
		return nil, &ParamError{Param: "_summary", Msg: "give _summary once"}
	}
	if len(summaries) == 1 {
		switch v := summaries[0]; v {
		case "true", "text", "data":
			sub.Summary = v
		case "false", "count":
		default:
			return nil, &ParamError{Param: "_summary", Msg: fmt.Sprintf("%q: expected true, text, data, count or false", v)}
		}
	}
	for _, value := range params["_elements"] {
		if len(summaries) == 1 && summaries[0] != "false" {
			return nil, &ParamError{Param: "_elements", Msg: "_elements cannot be combined with _summary"}
		}
		for _, name := range strings.Split(value, ",") {
			name = strings.TrimSpace(name)
			if !hasElement(typ, name) {
				return nil, &ParamError{Param: "_elements", Msg: fmt.Sprintf("%q is not an element of %s", name, typ)}
			}
			if !slices.Contains(sub.Elements, name) {
				sub.Elements = append(sub.Elements, name)
			}
		}
	}
	if sub.Summary == "" && sub.Elements == nil {
		return nil, nil
	}
	return &sub, nil
}

// hasElement reports whether name is a top-level element of typ, a choice
// element named without its [x].
func hasElement(typ, name string) bool {
	t := schema.R4().Type(typ)
	if t == nil || name == "" || strings.Contains(name, ".") {
		return false
	}
	for _, e := range t.Elements {
		if e.Path == name || e.Choice == name+"[x]" {
			return true
		}
	}
	return false
}

// Apply returns body (a resource of type typ) with only the elements the
// subset keeps, tagged SUBSETTED in meta.tag; body itself when s is nil or
// body cannot be read.
//
// _summary=true keeps the top-level elements R4 marks isSummary, and the
// mandatory ones (R4 marks all of them summary but four:
// Appointment.participant, AuditEvent.agent and .source, Provenance.agent,
// which are kept too).
func (s *Subset) Apply(typ string, body []byte) []byte {
	if s == nil {
		return body
	}
	obj, err := fhirjson.Parse(body)
	if err != nil {
		return body
	}
	keep := s.keeper(typ)
	members := obj.Members[:0:0]
	for _, m := range obj.Members {
		// A primitive's extensions sit in "_name" and go with it.
		if keep(strings.TrimPrefix(m.Name, "_")) {
			members = append(members, m)
		}
	}
	obj.Members = members
	tagSubsetted(obj)
	return fhirjson.Marshal(obj)
}

// keeper returns whether a top-level JSON member of a typ resource stays.
func (s *Subset) keeper(typ string) func(member string) bool {
	always := map[string]bool{"resourceType": true, "id": true, "meta": true}
	if s.Summary == "data" {
		return func(member string) bool { return member != "text" }
	}
	kept := map[string]bool{}
	if t := schema.R4().Type(typ); t != nil {
		for _, e := range t.Elements {
			if strings.Contains(e.Path, ".") {
				continue
			}
			name := strings.TrimSuffix(e.Choice, "[x]")
			if name == "" {
				name = e.Path
			}
			switch s.Summary {
			case "true":
				kept[e.Path] = e.Summary || e.Min > 0
			case "text":
				kept[e.Path] = e.Min > 0 || e.Path == "text"
			default:
				kept[e.Path] = slices.Contains(s.Elements, name) || slices.Contains(s.Elements, e.Path) || e.Min > 0
			}
		}
	}
	return func(member string) bool { return always[member] || kept[member] }
}

// tagSubsetted adds the SUBSETTED tag to meta.tag, once.
func tagSubsetted(obj *fhirjson.Object) {
	meta := obj.Object("meta")
	if meta == nil {
		meta = &fhirjson.Object{}
		obj.Set("meta", meta)
		moveAfterID(obj)
	}
	raw, _ := meta.Get("tag")
	tags, _ := raw.([]any)
	for _, t := range tags {
		if c, ok := t.(*fhirjson.Object); ok && c.String("system") == SubsettedSystem && c.String("code") == SubsettedCode {
			return
		}
	}
	meta.Set("tag", append(tags, &fhirjson.Object{Members: []fhirjson.Member{
		{Name: "system", Value: SubsettedSystem},
		{Name: "code", Value: SubsettedCode},
		{Name: "display", Value: "Subsetted"},
	}}))
}

// moveAfterID places a newly added meta where stored resources have it.
func moveAfterID(obj *fhirjson.Object) {
	last := obj.Members[len(obj.Members)-1]
	rest := slices.Clone(obj.Members[:len(obj.Members)-1])
	at := 0
	for i, m := range rest {
		if m.Name == "resourceType" || m.Name == "id" {
			at = i + 1
		}
	}
	obj.Members = slices.Insert(rest, at, last)
}

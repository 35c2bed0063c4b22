// Package search is the one place FHIR searches are understood: it computes
// the normalized index values every stored version carries, and turns a
// FHIR search into an engine-neutral store query.
package search

import (
	"encoding/json"
	"strings"
	"sync"
	"unicode"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/fhirpath"
	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Suffixes of the index entries that serve modifiers: Param "code:text"
// holds the folded display text of a token, "subject:identifier" the
// identifier of a reference, "identifier:of-type" an identifier with its
// type.
const (
	textSuffix       = ":text"
	identifierSuffix = ":identifier"
	ofTypeSuffix     = ":of-type"
)

// maxValue bounds one indexed string; longer text is cut (searches on it
// still match by prefix).
const maxValue = 256

// compiled is one parameter ready to evaluate on its resource type.
type compiled struct {
	code string
	typ  schema.ParamType
	expr *fhirpath.Expr
}

// Parameters the engines answer from their own columns rather than from
// index entries: the logical id and the time of the version.
var native = map[string]bool{"_id": true, "_lastUpdated": true}

var paramsByType = sync.OnceValue(func() map[string][]compiled {
	out := map[string][]compiled{}
	for _, r := range schema.Search().Resources {
		for _, p := range r.Params {
			if native[p.Code] || p.TypeExpression == "" || p.Type == schema.ParamComposite || p.Type == schema.ParamSpecial {
				continue
			}
			e, err := fhirpath.Compile(p.TypeExpression)
			if err != nil {
				// The registry is generated and every expression is
				// compiled by fhirpath's tests; a failure here is a build
				// defect.
				panic("search: " + r.Type + "." + p.Code + ": " + err.Error())
			}
			if e = e.ForType(r.Type); e != nil {
				out[r.Type] = append(out[r.Type], compiled{code: p.Code, typ: p.Type, expr: e})
			}
		}
	}
	return out
})

// Index computes the search index values of a resource: one or more
// normalized entries for every value of every search parameter its type
// has. Types outside the registry get none.
func Index(obj *fhirjson.Object, base string) []store.IndexValue {
	params := paramsByType()[obj.String("resourceType")]
	if len(params) == 0 {
		return nil
	}
	x := extractor{base: base, out: make([]store.IndexValue, 0, 64)}
	for _, p := range params {
		x.eval(p, obj)
	}
	return dedupe(x.out)
}

// IndexParam computes the index values of one parameter of a resource.
func IndexParam(obj *fhirjson.Object, code, base string) []store.IndexValue {
	x := extractor{base: base}
	for _, p := range paramsByType()[obj.String("resourceType")] {
		if p.code == code {
			x.eval(p, obj)
		}
	}
	return dedupe(x.out)
}

// eval adds the entries of one parameter.
func (x *extractor) eval(p compiled, obj *fhirjson.Object) {
	nodes, err := p.expr.Eval(obj)
	if err != nil {
		return // a shape the expression cannot take (validated data rarely has one)
	}
	x.param = p.code
	for _, n := range nodes {
		switch p.typ {
		case schema.ParamToken:
			x.token(n)
		case schema.ParamString:
			x.string(n)
		case schema.ParamReference:
			x.reference(n)
		case schema.ParamDate:
			x.date(n)
		case schema.ParamNumber:
			x.number(n)
		case schema.ParamQuantity:
			x.quantity(n)
		case schema.ParamURI:
			x.uri(n)
		}
	}
}

type extractor struct {
	param string
	base  string // the server's FHIR base: references under it are local
	out   []store.IndexValue
}

func (x *extractor) add(suffix, value string) { x.addSystem(suffix, value, "") }

// addSystem adds an entry matched by value, qualified by system.
func (x *extractor) addSystem(suffix, value, system string) {
	if value == "" {
		return
	}
	x.out = append(x.out, store.IndexValue{Param: x.param + suffix, Value: clip(value), System: clip(system)})
}

func (x *extractor) addRange(value, system, low, high string) {
	x.out = append(x.out, store.IndexValue{Param: x.param, Value: clip(value), System: clip(system), Low: low, High: high})
}

func clip(s string) string {
	if len(s) > maxValue {
		return s[:maxValue]
	}
	return s
}

// token indexes a code with its system, one entry per code: every search
// form (code, system|code, |code, system|) is an equality on Value and
// System or System alone.
func (x *extractor) token(n fhirpath.Node) {
	switch n.Type {
	case "Coding":
		x.coding(obj(n.Value))
	case "CodeableConcept":
		cc := obj(n.Value)
		for _, c := range objects(cc, "coding") {
			x.coding(c)
		}
		x.add(textSuffix, Fold(cc.String("text")))
	case "Identifier":
		id := obj(n.Value)
		x.addSystem("", id.String("value"), id.String("system"))
		if t := id.Object("type"); t != nil {
			for _, c := range objects(t, "coding") {
				x.add(ofTypeSuffix, c.String("system")+"|"+c.String("code")+"|"+id.String("value"))
			}
			x.add(textSuffix, Fold(t.String("text")))
		}
	case "ContactPoint":
		cp := obj(n.Value)
		x.addSystem("", cp.String("value"), cp.String("system"))
	case "boolean":
		if b, ok := n.Value.(bool); ok {
			x.add("", map[bool]string{true: "true", false: "false"}[b])
		}
	default:
		if s, ok := n.Value.(string); ok {
			x.add("", s)
		}
	}
}

func (x *extractor) coding(c *fhirjson.Object) {
	x.addSystem("", c.String("code"), c.String("system"))
	x.add(textSuffix, Fold(c.String("display")))
}

// string indexes text folded (Value) for the default starts-with match, with
// the text as written (System) for :exact.
func (x *extractor) string(n fhirpath.Node) {
	var parts []string
	switch n.Type {
	case "HumanName":
		parts = strs(obj(n.Value), "text", "family", "given", "prefix", "suffix")
	case "Address":
		parts = strs(obj(n.Value), "text", "line", "city", "district", "state", "postalCode", "country")
	default:
		if s, ok := n.Value.(string); ok {
			parts = []string{s}
		}
	}
	for _, p := range parts {
		x.addSystem("", Fold(p), p)
	}
}

// reference indexes "Type/id" for a relative (or versioned) reference, an
// absolute or canonical URL as written, and the Reference's identifier.
func (x *extractor) reference(n fhirpath.Node) {
	switch v := n.Value.(type) {
	case string: // canonical or uri
		x.add("", v)
	case *fhirjson.Object:
		x.add("", NormalizeReference(v.String("reference"), x.base))
		if id := v.Object("identifier"); id != nil {
			x.addSystem(identifierSuffix, id.String("value"), id.String("system"))
		}
	}
}

// NormalizeReference reduces a literal reference to the form references are
// indexed and searched by: "Type/id" for relative and versioned references
// and for absolute ones under base (the server's FHIR base URL, if known),
// the URL itself otherwise. Contained ("#id") references are not indexed.
func NormalizeReference(ref, base string) string {
	if ref == "" || ref[0] == '#' {
		return ""
	}
	if base = strings.TrimSuffix(base, "/"); base != "" {
		ref = strings.TrimPrefix(ref, base+"/")
	}
	if strings.Contains(ref, "://") || strings.HasPrefix(ref, "urn:") {
		return ref
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

func (x *extractor) date(n fhirpath.Node) {
	switch n.Type {
	case "Period":
		p := obj(n.Value)
		low, high := MinInstant, MaxInstant
		if s := p.String("start"); s != "" {
			if l, _, err := DateRange(s); err == nil {
				low = l
			}
		}
		if s := p.String("end"); s != "" {
			if _, h, err := DateRange(s); err == nil {
				high = h
			}
		}
		if p.String("start") != "" || p.String("end") != "" {
			x.addRange("", "", low, high)
		}
	case "Timing":
		t := obj(n.Value)
		raw, _ := t.Get("event")
		events, _ := raw.([]any)
		for _, e := range events {
			if s, ok := e.(string); ok {
				x.dateString(s)
			}
		}
		if r := t.Object("repeat"); r != nil {
			if b := r.Object("boundsPeriod"); b != nil {
				x.date(fhirpath.Node{Value: b, Type: "Period"})
			}
		}
	default:
		if s, ok := n.Value.(string); ok {
			x.dateString(s)
		}
	}
}

func (x *extractor) dateString(s string) {
	if low, high, err := DateRange(s); err == nil {
		x.addRange("", "", low, high)
	}
}

func (x *extractor) number(n fhirpath.Node) {
	if v, ok := n.Value.(json.Number); ok {
		if f, err := v.Float64(); err == nil {
			e := EncodeNumber(f)
			x.addRange("", "", e, e)
		}
	}
}

// quantity indexes the value with its unit code and system, and again
// under its human unit when that differs from the code; a search without a
// unit matches any entry.
func (x *extractor) quantity(n fhirpath.Node) {
	q := obj(n.Value)
	if q == nil {
		return
	}
	v, ok := mustGet(q, "value").(json.Number)
	if !ok {
		return
	}
	f, err := v.Float64()
	if err != nil {
		return
	}
	e := EncodeNumber(f)
	system, code, unit := q.String("system"), q.String("code"), q.String("unit")
	x.addRange(code, system, e, e)
	if unit != "" && unit != code {
		x.addRange(unit, "", e, e)
	}
}

func (x *extractor) uri(n fhirpath.Node) {
	if s, ok := n.Value.(string); ok {
		x.add("", s)
	}
}

// folder lower-cases and strips accents: "Renée" and "RENEE" fold alike.
var folder = sync.Pool{New: func() any {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

// Fold normalizes text for string search: accents removed, lower case,
// runs of white space collapsed to one space.
func Fold(s string) string {
	if s == "" {
		return ""
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if !ascii {
		t := folder.Get().(transform.Transformer)
		if out, _, err := transform.String(t, s); err == nil {
			s = out
		}
		folder.Put(t)
	}
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

func obj(v any) *fhirjson.Object {
	o, _ := v.(*fhirjson.Object)
	if o == nil {
		return &fhirjson.Object{}
	}
	return o
}

func mustGet(o *fhirjson.Object, name string) any {
	v, _ := o.Get(name)
	return v
}

func objects(o *fhirjson.Object, name string) []*fhirjson.Object {
	raw, _ := o.Get(name)
	list, _ := raw.([]any)
	out := make([]*fhirjson.Object, 0, len(list))
	for _, e := range list {
		if c, ok := e.(*fhirjson.Object); ok {
			out = append(out, c)
		}
	}
	return out
}

// strs collects the string values (single or repeated) of the named members.
func strs(o *fhirjson.Object, names ...string) []string {
	var out []string
	for _, n := range names {
		switch v := mustGet(o, n).(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// dedupe drops repeated entries (a code in two codings, a name part given
// twice) so each is stored once.
func dedupe(in []store.IndexValue) []store.IndexValue {
	seen := make(map[store.IndexValue]struct{}, len(in))
	out := in[:0]
	for _, v := range in {
		if _, ok := seen[v]; ok {
			continue
		}
		seen[v] = struct{}{}
		out = append(out, v)
	}
	return out
}

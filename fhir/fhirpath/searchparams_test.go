package fhirpath

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/synth"
)

// corpus gathers real resources by type: the US Core 4.0.0 and 6.1.0
// examples (Bundle entries and contained resources included) when the
// definitions are present, and a generated practice of two patients.
func corpus(tb testing.TB) map[string][]*fhirjson.Object {
	tb.Helper()
	byType := map[string][]*fhirjson.Object{}
	var add func(o *fhirjson.Object)
	add = func(o *fhirjson.Object) {
		byType[o.String("resourceType")] = append(byType[o.String("resourceType")], o)
		for _, name := range []string{"contained", "entry"} {
			list, _ := o.Get(name)
			arr, _ := list.([]any)
			for _, e := range arr {
				if r, ok := e.(*fhirjson.Object); ok && name == "contained" {
					add(r)
				} else if ok && r.Object("resource") != nil {
					add(r.Object("resource"))
				}
			}
		}
	}
	for _, dir := range []string{"us-core-4.0.0/examples", "us-core-6.1.0/examples"} {
		files, _ := filepath.Glob(filepath.Join(defsDir, dir, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			o, err := fhirjson.Parse(data)
			if err != nil {
				tb.Fatalf("%s: %v", f, err)
			}
			add(o)
		}
	}
	err := synth.Generate(synth.Options{Patients: 2}, func(o *fhirjson.Object) error {
		add(o)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return byType
}

// TestEveryIndexedSearchParameterCompilesAndEvaluates compiles the
// expression of every R4 and US Core search parameter of the indexed
// types, specializes it for each of them, and evaluates it on every real
// resource of that type: no error, every result typed, and the same
// results with and without specialization.
func TestEveryIndexedSearchParameterCompilesAndEvaluates(t *testing.T) {
	params := loadSearchParams(t)
	resources := corpus(t)
	evaluated, nonEmpty := 0, 0
	for _, p := range params {
		e, err := Compile(p.expr)
		if err != nil {
			t.Errorf("%s %s: %v", p.file, p.id, err)
			continue
		}
		for _, rt := range p.types {
			s := e.ForType(rt)
			if s == nil {
				// A parameter based on rt always has a branch for it.
				t.Errorf("%s %s: ForType(%s) dropped every branch of %q", p.file, p.id, rt, p.expr)
				continue
			}
			res := resources[rt]
			if len(res) == 0 {
				res = []*fhirjson.Object{{Members: []fhirjson.Member{{Name: "resourceType", Value: rt}}}}
			}
			for _, r := range res {
				got, err := s.Eval(r)
				if err != nil {
					t.Errorf("%s %s on %s/%s: %v", p.file, p.id, rt, r.String("id"), err)
					continue
				}
				evaluated++
				if len(got) > 0 {
					nonEmpty++
				}
				for _, n := range got {
					if n.Type == "" || n.Value == nil {
						t.Errorf("%s on %s/%s: untyped or valueless node %+v", p.expr, rt, r.String("id"), n)
					}
					if _, isArray := n.Value.([]any); isArray {
						t.Errorf("%s on %s/%s: array not flattened", p.expr, rt, r.String("id"))
					}
				}
				general, err := e.Eval(r)
				if err != nil || !reflect.DeepEqual(general, got) {
					t.Errorf("%s on %s/%s: specialized %v, general %v (%v)", p.expr, rt, r.String("id"), got, general, err)
				}
			}
		}
	}
	t.Logf("%d parameters, %d evaluations, %d with results", len(params), evaluated, nonEmpty)
	// Guards against an evaluator that returns nothing: the examples
	// populate well over a quarter of the (parameter, resource) pairs.
	if nonEmpty*4 < evaluated {
		t.Errorf("only %d of %d evaluations gave results", nonEmpty, evaluated)
	}
}

// TestParameterPathsExistInTheR4Table checks every member name of every
// indexed expression against the element table of the types it is
// evaluated on, so that a result is never untyped by construction and a
// misspelt path cannot silently index nothing.
func TestParameterPathsExistInTheR4Table(t *testing.T) {
	params := loadSearchParams(t)
	for _, p := range params {
		e, err := Compile(p.expr)
		if err != nil {
			continue // reported by the test above
		}
		for _, rt := range p.types {
			if s := e.ForType(rt); s != nil {
				for _, miss := range unknownMembers(s.root, rt) {
					t.Errorf("%s %s: %s has no element %q", p.file, p.id, rt, miss)
				}
			}
		}
	}
}

// unknownMembers walks n statically from the type of rt, returning the
// member names no reachable type defines. It follows paths only; function
// arguments are checked against the type their focus has.
func unknownMembers(n node, rt string) []string {
	m := r4Model()
	var miss []string
	var walk func(n node, in []*typeInfo) []*typeInfo
	walk = func(n node, in []*typeInfo) []*typeInfo {
		switch n := n.(type) {
		case *memberNode:
			var out []*typeInfo
			found := false
			for _, ti := range in {
				if ei := ti.elems[n.name]; ei != nil {
					found = true
					out = append(out, ei.ti)
				}
				if ti.choices[n.name] {
					found = true
					for name, ei := range ti.elems {
						if ei.choice == n.name && strings.HasPrefix(name, n.name) {
							out = append(out, ei.ti)
						}
					}
				}
			}
			if !found && len(in) > 0 {
				miss = append(miss, n.name)
			}
			return slices.DeleteFunc(out, func(ti *typeInfo) bool { return ti == nil })
		case *pathNode:
			cur := walk(n.head, in)
			for _, s := range n.steps {
				cur = walk(s, cur)
			}
			return cur
		case *unionNode:
			var out []*typeInfo
			for _, op := range n.ops {
				out = append(out, walk(op, in)...)
			}
			return out
		case *whereNode:
			walk(n.crit, in)
			return in
		case existsNode:
			if n.crit != nil {
				walk(n.crit, in)
			}
			return nil
		case *eqNode:
			walk(n.l, in)
			walk(n.r, in)
			return nil
		case *logicNode:
			walk(n.l, in)
			walk(n.r, in)
			return nil
		case *asNode:
			var out []*typeInfo
			for _, ti := range walk(n.x, in) {
				if m.isType(ti.name, n.t.name) {
					out = append(out, ti)
				}
			}
			if ti := m.types[n.t.name]; ti != nil && len(out) == 0 {
				out = append(out, ti)
			}
			return out
		case *isNode:
			walk(n.x, in)
			return nil
		case thisNode, firstFn, lastFn, *indexNode:
			return in
		case *extensionNode:
			return []*typeInfo{m.types["Extension"]}
		}
		return nil
	}
	walk(n, []*typeInfo{m.resources[rt]})
	return miss
}

package fhirpath

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

func TestCompileRejects(t *testing.T) {
	for _, tc := range []struct {
		name, expr, msg string
	}{
		{"unknown function", "Patient.name.foo()", "unknown function foo()"},
		{"unknown function at the start", "bar(1)", "unknown function bar()"},
		{"wrong number of arguments", "Patient.name.where()", "where() takes 1 argument(s), got 0"},
		{"arguments to a function taking none", "Patient.name.first(1)", "first() takes no arguments"},
		{"extension() with a non-literal url", "Patient.extension(url)", "url must be a string literal"},
		{"unknown type after is", "Patient.name is Foo", "unknown type Foo"},
		{"unknown type in as()", "Observation.value.as(Quantityy)", "unknown type Quantityy"},
		{"unknown System type", "Patient.gender is System.Foo", "unknown type System.Foo"},
		{"capitalized name that is no type", "Patinet.name", "unknown type Patinet"},
		{"empty expression", "", "unexpected end of expression"},
		{"trailing dot", "Patient.", "expected a name after '.'"},
		{"double dot", "Patient..name", "expected a name after '.'"},
		{"unclosed call", "Patient.name.where(", "unexpected end of expression"},
		{"unclosed parenthesis", "(Patient.name", `expected ")"`},
		{"unbalanced parenthesis", "Patient.name)", `unexpected ")"`},
		{"dangling union", "Patient.name |", "unexpected end of expression"},
		{"unterminated string", "Patient.name.where(family = 'Shaw", "unterminated literal"},
		{"bad escape", `'\q'`, `unknown escape \q`},
		{"unterminated comment", "Patient /* name", "unterminated comment"},
		{"non-integer index", "Patient.name[given]", "only an integer literal may index"},
		{"unclosed index", "Patient.name[0", `expected "]"`},
		{"unexpected character", "Patient.name ^ 2", `unexpected character '^'`},
		{"arithmetic", "Patient.name.count() + 1", `operator "+" is not supported`},
		{"comparison", "Patient.birthDate < '2000'", `operator "<" is not supported`},
		{"membership", "Patient.gender in 'female'", `operator "in" is not supported`},
		{"implies", "Patient.active implies true", `operator "implies" is not supported`},
		{"date literal", "Patient.birthDate = @2000-01-01", "date and time literals are not supported"},
		{"unsupported variable", "$index", "variable $index is not supported"},
		{"unsupported environment variable", "%ucum", "environment variable %ucum is not supported"},
		{"runaway nesting", strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100), "nested too deeply"},
		{"runaway operator chain", strings.Repeat("true = ", 5000) + "true", "longer than 16384 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Compile(tc.expr)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Compile(%q) = %v, %v; want an *Error", tc.expr, e, err)
			}
			if !strings.Contains(perr.Msg, tc.msg) {
				t.Errorf("Compile(%q): %q does not mention %q", tc.expr, perr.Msg, tc.msg)
			}
			if perr.Pos < 0 || perr.Pos > len(tc.expr) {
				t.Errorf("Compile(%q): position %d outside the expression", tc.expr, perr.Pos)
			}
		})
	}
}

func TestEvalFails(t *testing.T) {
	obsOnly, err := Compile("Observation.status")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		expr *Expr
		res  string
		msg  string
	}{
		{"where() criteria giving several items", mustCompile(t, "Patient.name.where(given)"), patientJSON, "expected a single boolean, got 2 items"},
		{"and on several items", mustCompile(t, "Patient.name.given and true"), patientJSON, "expected a single boolean, got 3 items"},
		{"is on several items", mustCompile(t, "Patient.name is HumanName"), patientJSON, "'is HumanName' on 2 items"},
		{"a resource type R4 does not define", mustCompile(t, "Resource.id"), `{"resourceType":"Patientt"}`, `"Patientt" is not an R4 resource type`},
		{"no resourceType", mustCompile(t, "Resource.id"), `{"id":"x"}`, `"" is not an R4 resource type`},
		{"specialized for another type", obsOnly.ForType("Observation"), patientJSON, "specialized for Observation, not Patient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.expr.Eval(mustParse(t, tc.res))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Eval = %v, %v; want an error mentioning %q", show(got), err, tc.msg)
			}
		})
	}
}

func mustCompile(tb testing.TB, s string) *Expr {
	tb.Helper()
	e, err := Compile(s)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestForType(t *testing.T) {
	const shared = "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient)"
	for _, tc := range []struct {
		name, expr, rt string
		applies        bool
	}{
		{"keeps a union with a branch for the type", shared, "Observation", true},
		{"drops a union with no branch for the type", shared, "Patient", false},
		{"drops a single path for another type", "Goal.subject", "Patient", false},
		{"drops a parenthesized as for another type", "(Goal.start as date)", "Patient", false},
		{"keeps Resource-level paths for every type", "Resource.meta.tag", "Specimen", true},
		{"keeps DomainResource paths for domain resources", "DomainResource.text", "Patient", true},
		{"drops DomainResource paths for a Bundle", "DomainResource.text", "Bundle", false},
		{"drops = with a side for another type", "Goal.subject = 'x'", "Patient", false},
		{"keeps exists(), which is false rather than empty", "Goal.subject.exists()", "Patient", true},
		{"drops an unknown resource type", "Resource.id", "Patientt", false},
		{"drops the abstract Resource itself", "Resource.id", "Resource", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCompile(t, tc.expr).ForType(tc.rt)
			if (got != nil) != tc.applies {
				t.Errorf("ForType(%s) of %q = %v, want applies=%v", tc.rt, tc.expr, got, tc.applies)
			}
		})
	}
}

func TestForTypeGivesTheSameResultsAsTheFullExpression(t *testing.T) {
	for _, tc := range []struct{ res, expr string }{
		{observationJSON, "AllergyIntolerance.patient | Observation.subject.where(resolve() is Patient) | Observation.performer"},
		{organizationJSON, "Organization.name | Organization.alias | Location.alias"},
		{patientJSON, "Patient.deceased.exists() and Patient.deceased != false"},
		{patientJSON, "Patient.telecom.where(system='email') | Person.telecom.where(system='email')"},
	} {
		r := mustParse(t, tc.res)
		e := mustCompile(t, tc.expr)
		full, err := e.Eval(r)
		if err != nil {
			t.Fatal(err)
		}
		special, err := e.ForType(r.String("resourceType")).Eval(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(full) == 0 || !reflect.DeepEqual(full, special) {
			t.Errorf("%s: full %q, specialized %q", tc.expr, show(full), show(special))
		}
	}
}

func TestNilExprEvaluatesToNothing(t *testing.T) {
	var e *Expr // as ForType returns when no branch applies
	got, err := e.Eval(mustParse(t, patientJSON))
	if got != nil || err != nil {
		t.Errorf("nil Expr: %v, %v", got, err)
	}
	if e.String() != "" || e.ForType("Patient") != nil {
		t.Error("nil Expr is not inert")
	}
}

func TestEvalIsSafeForConcurrentUse(t *testing.T) {
	exprs := []*Expr{
		mustCompile(t, "Patient.name.given | Observation.component.code.coding.code"),
		mustCompile(t, "Patient.telecom.where(system='phone') | Observation.performer.where(resolve() is Organization)"),
	}
	// The goroutines share the resources, as concurrent writes of
	// different parameters over one resource would.
	resources := []*fhirjson.Object{mustParse(t, patientJSON), mustParse(t, observationJSON)}
	var want [][]string
	for _, e := range exprs {
		for _, r := range resources {
			got, err := e.Eval(r)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, show(got))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				i := 0
				for _, e := range exprs {
					for _, r := range resources {
						got, err := e.Eval(r)
						if err != nil || !reflect.DeepEqual(show(got), want[i]) {
							errs <- e.String()
							return
						}
						i++
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("%s: concurrent results differ", e)
	}
}

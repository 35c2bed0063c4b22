package bulk

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

// Spec is what a kick-off asked for, checked: the kick-off handler builds
// it, CheckFilters and CheckElements validate it, and the worker compiles
// it again, type by type, with the same functions.
type Spec struct {
	Level string `json:"level"`
	// Group is the Group's id at Group level.
	Group string `json:"group,omitempty"`
	// Types are the resource types to export, in order.
	Types []string `json:"types"`
	// TypeFilters are the _typeFilter queries by type (the part after
	// "Type?"); several for one type are alternatives.
	TypeFilters map[string][]string `json:"typeFilters,omitempty"`
	// Elements are the _elements entries: "element" or "Type.element".
	Elements []string `json:"elements,omitempty"`
	// Since is _since, an instant in the store's index layout; "" for none.
	Since string `json:"since,omitempty"`
	// Patients, at Patient and Group level, are the ids of the patients
	// whose compartments are exported; nil at Patient level means every
	// patient in reach.
	Patients []string `json:"patients,omitempty"`
	// AllPatients is Patient level without a patient list.
	AllPatients bool `json:"allPatients,omitempty"`
	// Base is the FHIR base references are compiled against.
	Base string `json:"base"`
}

// InstantLayout is the store's layout of instants (store.Query.Since).
const InstantLayout = "2006-01-02T15:04:05.000Z"

// FormatInstant formats t as the store compares instants.
func FormatInstant(t time.Time) string { return t.UTC().Format(InstantLayout) }

// paramError is the kick-off's answer to a bad parameter (400).
func paramError(param, format string, args ...any) error {
	return &search.ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// maxFilterClauses bounds the clauses alternative _typeFilter queries of a
// type multiply into.
const maxFilterClauses = 64

// maxClausePredicates bounds the alternatives one of those clauses ORs,
// as the search compiler bounds a parameter's comma-separated values: OR-ing
// queries of one clause each adds up predicates in one clause, which no
// clause count catches, past what the engines accept in one query.
const maxClausePredicates = 500

// filterPlan is what the _typeFilter queries of one type add to its
// queries.
type filterPlan struct {
	where         []store.Clause
	ids           []string
	since, before string
}

// compileFilters compiles the _typeFilter queries of typ. One query is a
// conjunction of clauses (store.Query.Where); several are alternatives
// (Bulk Data 2.0.0: a resource is exported when it matches any of them),
// which in the store's conjunctive form is the product of their clauses:
// (A∧B)∨(C∧D) = (A∨C)∧(A∨D)∧(B∨C)∧(B∨D). _id and _lastUpdated, which are
// not clauses, are accepted in a type's only query.
func compileFilters(typ string, queries []string, base string) (filterPlan, error) {
	var fp filterPlan
	if len(queries) > maxClausePredicates {
		// Each alternative adds a predicate to every clause of the product.
		return fp, paramError("_typeFilter", "the %d _typeFilter queries of %s combine into clauses of more than %d alternatives: use fewer queries", len(queries), typ, maxClausePredicates)
	}
	var alts [][]store.Clause
	for _, raw := range queries {
		vals, err := url.ParseQuery(raw)
		if err != nil || len(vals) == 0 {
			return fp, paramError("_typeFilter", "%s?%s is not a search query", typ, raw)
		}
		for k := range vals {
			if search.IsResultParam(k) {
				return fp, paramError("_typeFilter", "%s?%s: %s is not a search filter", typ, raw, k)
			}
		}
		s, err := search.Compile(typ, vals, search.Options{Strict: true, BaseURL: base})
		if err != nil {
			return fp, paramError("_typeFilter", "%s?%s: %v", typ, raw, err)
		}
		q := s.Query
		if len(q.IDs) > 0 || q.Since != "" || q.Before != "" {
			if len(queries) > 1 {
				return fp, paramError("_typeFilter", "%s?%s: _id and _lastUpdated are accepted only in a type's one _typeFilter", typ, raw)
			}
			fp.ids, fp.since, fp.before = q.IDs, q.Since, q.Before
		}
		alts = append(alts, q.Where)
	}
	if len(alts) == 1 {
		fp.where = alts[0]
		return fp, nil
	}
	product := [][]store.Predicate{nil}
	for _, alt := range alts {
		if len(alt) == 0 {
			// An alternative that filters nothing admits everything.
			return filterPlan{}, nil
		}
		if len(product)*len(alt) > maxFilterClauses {
			return fp, paramError("_typeFilter", "the _typeFilter queries of %s combine into more than %d clauses: use fewer or simpler queries", typ, maxFilterClauses)
		}
		var next [][]store.Predicate
		for _, p := range product {
			for _, c := range alt {
				if len(p)+len(c) > maxClausePredicates {
					return fp, paramError("_typeFilter", "the _typeFilter queries of %s combine into clauses of more than %d alternatives: use fewer or simpler queries", typ, maxClausePredicates)
				}
				next = append(next, slices.Concat(p, c))
			}
		}
		product = next
	}
	for _, p := range product {
		fp.where = append(fp.where, store.Clause(p))
	}
	return fp, nil
}

// CheckFilters validates the _typeFilter queries of typ (which must be
// exported) and returns their clauses, for the caller to authorize the
// chains among them.
func (spec *Spec) CheckFilters(typ string) ([]store.Clause, error) {
	if !slices.Contains(spec.Types, typ) {
		return nil, paramError("_typeFilter", "%s is not among the types exported (_type)", typ)
	}
	fp, err := compileFilters(typ, spec.TypeFilters[typ], spec.Base)
	return fp.where, err
}

// ParseTypeFilter splits one _typeFilter value, "Type?query".
func ParseTypeFilter(v string) (typ, query string, err error) {
	typ, query, ok := strings.Cut(v, "?")
	if !ok || !validate.IsResourceType(typ) || query == "" {
		return "", "", paramError("_typeFilter", "%q is not [ResourceType]?[search query]", v)
	}
	return typ, query, nil
}

// CheckElements validates _elements: "Type.element" names an element of
// an exported type, and "element" an element of at least one.
func (spec *Spec) CheckElements() error {
	for _, e := range spec.Elements {
		if typ, name, ok := strings.Cut(e, "."); ok {
			if !slices.Contains(spec.Types, typ) {
				return paramError("_elements", "%s: %s is not among the types exported", e, typ)
			}
			if _, err := search.ParseSubset(typ, url.Values{"_elements": {name}}); err != nil {
				return paramError("_elements", "%s: %s has no top-level element %s", e, typ, name)
			}
			continue
		}
		if !slices.ContainsFunc(spec.Types, func(t string) bool { return hasElement(t, e) }) {
			return paramError("_elements", "%s is an element of none of the types exported", e)
		}
	}
	return nil
}

func hasElement(typ, name string) bool {
	_, err := search.ParseSubset(typ, url.Values{"_elements": {name}})
	return err == nil
}

// subset is what _elements leaves of a typ resource: the entries naming
// typ and those naming an element typ has; nil (the whole resource) when
// none applies.
func (spec *Spec) subset(typ string) *search.Subset {
	var names []string
	for _, e := range spec.Elements {
		t, name, typed := strings.Cut(e, ".")
		switch {
		case typed && t == typ:
			names = append(names, name)
		case !typed && hasElement(typ, e):
			names = append(names, e)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sub, err := search.ParseSubset(typ, url.Values{"_elements": {strings.Join(names, ",")}})
	if err != nil {
		return nil
	}
	return sub
}

// InPatientCompartment reports whether resources of typ can be in a
// patient's compartment: the types Patient and Group level exports.
func InPatientCompartment(typ string) bool { return !search.OutsidePatientCompartments(typ) }

// anyPatient is the clause "in some patient's compartment": a Patient
// reference in one of typ's compartment parameters. Patients are all in
// their own (nil: no clause).
func anyPatient(typ string) store.Clause {
	if typ == "Patient" {
		return nil
	}
	var c store.Clause
	for _, p := range search.CompartmentParams(typ) {
		c = append(c, store.Predicate{Param: p, Match: store.MatchPrefix, Value: "Patient/"})
	}
	return c
}

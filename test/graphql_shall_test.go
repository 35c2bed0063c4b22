package test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

// TestGraphQLShallSearches runs every query TestUSCoreShallSearches builds
// for the SHALL searches of US Core 4.0.0 and 6.1.0 both as a GraphQL list
// and as a REST search, with tokens of different reach, and checks that
// both return the same resources. The seeded patients belong to a
// practice and the US Core examples to none, so the tokens see different
// parts of the store: the practice's token all of it, the harness's token
// (another practice) the examples only, a seeded patient's token its
// compartment and the shared reference data.
func TestGraphQLShallSearches(t *testing.T) {
	examples := usCoreExamples(t)
	searches := shallSearches(t)
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		importUSCoreExamples(t, e, dir, examples)
		if out, err := e.cli(t, dir, "practice", "create", "--name", "PRAC1", "--pin", "PRAC1", "--log-level", "error"); err != nil {
			t.Fatalf("practice create: %v\n%s", err, out)
		}
		if out, err := e.cli(t, dir, "seed", "--patients", "3", "--seed", "11", "--practice", "PRAC1", "--log-level", "error"); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		s := e.start(t, dir)
		practice := s.as(s.mint("--scope", "system/*.rs", "--practice", "PRAC1"))
		shared := ids(t, s, "Patient?_count=1000")
		seeded := slices.DeleteFunc(ids(t, practice, "Patient?_count=1000"), func(id string) bool { return slices.Contains(shared, id) })
		if len(seeded) != 3 {
			t.Fatalf("PRAC1 sees %d patients besides the examples' %v, want the 3 seeded", len(seeded), shared)
		}
		tokens := []struct {
			name string
			s    *server
		}{
			{"practice PRAC1", practice},
			{"practice " + testPractice, s},
			{"patient " + seeded[0], s.as(s.mint("--user-kind", "patient", "--patient", seeded[0], "--scope", "patient/*.rs"))},
		}

		// The queries, built from what the widest token sees.
		type typedQuery struct {
			search string // the SHALL search, Type?param+param
			typ    string
			values url.Values
		}
		var queries []typedQuery
		repeated := 0
		stored := map[string][]map[string]any{}
		for _, sr := range searches {
			all, ok := stored[sr.Type]
			if !ok {
				all = listAll(t, practice, sr.Type)
				stored[sr.Type] = all
			}
			built := shallQueries(sr, all)
			if len(built) == 0 {
				t.Errorf("no stored %s has values for %v", sr.Type, sr.Params)
			}
			for _, q := range built {
				// One GraphQL argument holds one value: a parameter
				// given twice (date=ge…&date=le…) has no spelling.
				if repeatsAParameter(q.values) {
					repeated++
					continue
				}
				queries = append(queries, typedQuery{sr.Type + "?" + strings.Join(sr.Params, "+"), sr.Type, q.values})
			}
		}
		t.Logf("%d queries of %d SHALL searches; %d not expressible as one GraphQL list (a parameter repeated)", len(queries), len(searches), repeated)

		// What the widest token found, to show the others see less.
		widest := make([][]string, len(queries))
		for i, tok := range tokens {
			t.Run(tok.name, func(t *testing.T) {
				nonEmpty, narrower := 0, 0
				matched := map[string]bool{}
				for n, q := range queries {
					want := restPage(t, tok.s, q.typ, q.values)
					got, g := gqlListIDs(t, tok.s, q.typ, q.values)
					if len(g.Errors) > 0 {
						t.Errorf("%s?%s: GraphQL errors (REST found %v): %s", q.typ, q.values.Encode(), want, g.raw)
						continue
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s?%s\nGraphQL %v\n   REST %v", q.typ, q.values.Encode(), got, want)
					}
					if len(want) > 0 {
						nonEmpty++
						matched[q.search] = true
					}
					if i == 0 {
						widest[n] = want
					} else if len(want) < len(widest[n]) {
						narrower++
					}
				}
				// Comparisons of empty lists prove nothing.
				if nonEmpty < 40 {
					t.Errorf("only %d of %d queries match anything", nonEmpty, len(queries))
				}
				if i == 0 {
					t.Logf("%d queries: %d with matches", len(queries), nonEmpty)
					for _, q := range queries {
						if !matched[q.search] {
							t.Errorf("no query of %s matches anything", q.search)
							matched[q.search] = true
						}
					}
					return
				}
				t.Logf("%d queries: %d with matches, %d matching less than with %s", len(queries), nonEmpty, narrower, tokens[0].name)
				// A token that sees what the widest sees does not show
				// that both APIs filter by the token.
				if narrower == 0 {
					t.Errorf("no query matches less than with %s", tokens[0].name)
				}
			})
		}
	})
}

// repeatsAParameter reports whether a search gives some parameter more
// than once.
func repeatsAParameter(values url.Values) bool {
	for _, vs := range values {
		if len(vs) > 1 {
			return true
		}
	}
	return false
}

// restPage runs a search on one page of store.MaxPageSize and returns the
// ids of its matches, sorted. It fails the test when the search is refused
// or its matches do not fit on the page: the GraphQL list is one page too.
func restPage(t *testing.T, s *server, typ string, values url.Values) []string {
	t.Helper()
	q := maps.Clone(values)
	q.Set("_count", fmt.Sprint(store.MaxPageSize))
	b := expect(t, s.do("GET", typ+"?"+q.Encode(), nil), http.StatusOK)
	for _, l := range asList(b["link"]) {
		if l.(map[string]any)["relation"] == "next" {
			t.Fatalf("%s?%s has more than one page of %d", typ, q.Encode(), store.MaxPageSize)
		}
	}
	out := []string{}
	for _, e := range asList(b["entry"]) {
		e := e.(map[string]any)
		if srch, _ := e["search"].(map[string]any); str(srch["mode"]) == "match" {
			out = append(out, str(e["resource"].(map[string]any)["id"]))
		}
	}
	slices.Sort(out)
	return out
}

// gqlListIDs runs a search as the GraphQL list of typ, every value passed
// as a variable (no escaping to get wrong), on one page of
// store.MaxPageSize, and returns the ids listed, sorted, and the answer.
func gqlListIDs(t *testing.T, s *server, typ string, values url.Values) ([]string, gqlReply) {
	t.Helper()
	vars := map[string]any{"count": store.MaxPageSize}
	var decls, args []string
	for i, code := range slices.Sorted(maps.Keys(values)) {
		v := fmt.Sprintf("v%d", i)
		vars[v] = values.Get(code)
		decls = append(decls, "$"+v+": String")
		args = append(args, argName(code)+": $"+v)
	}
	query := fmt.Sprintf("query(%s, $count: Int) { list: %sList(%s, _count: $count) { id } }",
		strings.Join(decls, ", "), typ, strings.Join(args, ", "))
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		t.Fatal(err)
	}
	g := gqlDecode(t, s.do("POST", s.root+"/graphql", body, "Content-Type: application/json"))
	return listIDs(g.Data["list"]), g
}

// argName is the GraphQL argument of a search parameter: '-' after the
// first character becomes '_' (schema/fhir.graphqls).
func argName(code string) string {
	return code[:1] + strings.ReplaceAll(code[1:], "-", "_")
}

package test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	fhirschema "github.com/fhirgraph/fhirgraph/schema"
)

// TestUSCoreShallSearches runs every SHALL search and required combination
// of the US Core 4.0.0 and 6.1.0 server CapabilityStatements over HTTP, on
// the US Core examples and seeded patients, with values taken from the
// stored resources, and checks that each returns exactly the ids that an
// independent evaluation picks out of all stored resources of the type.
// The evaluation (shallParams and match below) reads the resources' JSON
// with its own paths and the R4 search rules; it shares no code with the
// server's FHIRPath extraction, index or query engines.
func TestUSCoreShallSearches(t *testing.T) {
	examples := usCoreExamples(t)
	searches := shallSearches(t)
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		importUSCoreExamples(t, e, dir, examples)
		if out, err := e.cli(t, dir, "seed", "--patients", "3", "--seed", "11", "--log-level", "error"); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
		s := e.start(t, dir)
		stored := map[string][]map[string]any{}
		for _, sr := range searches {
			all, ok := stored[sr.Type]
			if !ok {
				all = listAll(t, s, sr.Type)
				stored[sr.Type] = all
			}
			t.Run(sr.Type+"?"+strings.Join(sr.Params, "+"), func(t *testing.T) {
				queries := shallQueries(sr, all)
				if len(queries) == 0 {
					t.Fatalf("no stored %s has values for %v", sr.Type, sr.Params)
				}
				matched := 0
				for _, q := range queries {
					var want []string
					for _, r := range all {
						if q.matches(r) {
							want = append(want, str(r["id"]))
						}
					}
					got := ids(t, s, sr.Type+"?"+q.values.Encode())
					slices.Sort(got)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Errorf("%s?%s\n got %v\nwant %v", sr.Type, q.values.Encode(), got, want)
					}
					// POST _search is the same search whatever the engine:
					// checked once, where it is cheap.
					if e.name == embedded.name {
						posted := postIDs(t, s, sr.Type, q.values)
						slices.Sort(posted)
						if !slices.Equal(posted, got) {
							t.Errorf("POST %s/_search %s\n got %v\n GET %v", sr.Type, q.values.Encode(), posted, got)
						}
						checkConditionalCreate(t, s, sr.Type, q.values, want)
					}
					if len(want) > 0 {
						matched++
					}
				}
				// A search whose queries all come back empty proves nothing.
				if matched == 0 {
					t.Errorf("none of the %d queries matches a stored %s", len(queries), sr.Type)
				}
			})
		}
	})
}

// shallSearches lists the SHALL searches and combinations of the
// registry, and fails if the evaluation below does not know a parameter.
// usCoreExamples are the folders of the US Core 4.0.0 and 6.1.0 examples.
func usCoreExamples(t *testing.T) []string {
	return []string{
		sharedDir(t, "fhir-defs/us-core-4.0.0/examples"),
		sharedDir(t, "fhir-defs/us-core-6.1.0/examples"),
	}
}

// importUSCoreExamples imports the examples into the store at dir. Two
// (the cbc reports) carry text without div, which R4 forbids: they are
// rejected and the run reports it.
func importUSCoreExamples(t *testing.T, e engine, dir string, examples []string) {
	t.Helper()
	out, err := e.cli(t, dir, "import", append([]string{"--log-level", "error"}, examples...)...)
	if !strings.Contains(out, ", 2 rejected") {
		t.Fatalf("importing the US Core examples: %v\n%s", err, out)
	}
}

func shallSearches(t testing.TB) []fhirschema.RequiredSearch {
	out := fhirschema.Search().ShallSearches()
	for _, sr := range out {
		for _, p := range sr.Params {
			if _, ok := shallParams[sr.Type+"."+p]; !ok {
				t.Fatalf("no independent evaluation for the SHALL parameter %s.%s", sr.Type, p)
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d SHALL searches in the registry", len(out))
	}
	return out
}

// checkConditionalCreate sends a create whose If-None-Exist is the
// search, which matched want (at least one resource): it must find what
// the search found and create nothing — the existing resource back for
// one match, 412 for several.
func checkConditionalCreate(t *testing.T, s *server, typ string, values url.Values, want []string) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	r := s.do("POST", typ, `{"resourceType":"`+typ+`"}`, "If-None-Exist: "+values.Encode())
	switch {
	case len(want) == 1 && r.status == http.StatusOK:
		if id := str(r.json(t)["id"]); id != want[0] {
			t.Errorf("If-None-Exist: %s found %s, the search %s", values.Encode(), id, want[0])
		}
	case len(want) > 1 && r.status == http.StatusPreconditionFailed:
	default:
		t.Errorf("If-None-Exist: %s (the search matches %d): status %d %s", values.Encode(), len(want), r.status, r.body)
	}
}

// postIDs runs a search as POST [type]/_search with a form body and
// returns the ids of its matches, following next links.
func postIDs(t *testing.T, s *server, typ string, values url.Values) []string {
	t.Helper()
	b := expect(t, s.do("POST", typ+"/_search", values.Encode(), "Content-Type: application/x-www-form-urlencoded"), http.StatusOK)
	var out []string
	for _, e := range asList(b["entry"]) {
		e := e.(map[string]any)
		if e["search"].(map[string]any)["mode"] == "match" {
			out = append(out, str(e["resource"].(map[string]any)["id"]))
		}
	}
	for _, l := range asList(b["link"]) {
		if l.(map[string]any)["relation"] == "next" {
			out = append(out, ids(t, s, str(l.(map[string]any)["url"]))...)
		}
	}
	return out
}

// listAll reads every stored resource of typ.
func listAll(t *testing.T, s *server, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	next := typ + "?_count=1000"
	for next != "" {
		b := expect(t, s.do("GET", next, nil), http.StatusOK)
		for _, e := range asList(b["entry"]) {
			out = append(out, e.(map[string]any)["resource"].(map[string]any))
		}
		next = ""
		for _, l := range asList(b["link"]) {
			if l.(map[string]any)["relation"] == "next" {
				next = str(l.(map[string]any)["url"])
			}
		}
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

// paramKind is how a parameter's values are read and compared.
type paramKind int

const (
	kindID        paramKind = iota // the resource id
	kindReference                  // Reference.reference to target
	kindToken                      // code, Coding or CodeableConcept
	kindIdentifier
	kindString // string, HumanName or Address parts
	kindDate   // date, dateTime, instant or Period
)

// shallParam says where a parameter's values live, as JSON paths
// ("effective[x]" is any choice of effective; arrays are walked).
type shallParam struct {
	kind   paramKind
	paths  []string
	target string // kindReference: the type referenced
}

var shallParams = map[string]shallParam{
	"AllergyIntolerance.patient":    {kind: kindReference, paths: []string{"patient"}, target: "Patient"},
	"CarePlan.patient":              {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"CarePlan.category":             {kind: kindToken, paths: []string{"category"}},
	"CareTeam.patient":              {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"CareTeam.status":               {kind: kindToken, paths: []string{"status"}},
	"Condition.patient":             {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"Condition.category":            {kind: kindToken, paths: []string{"category"}},
	"Coverage.patient":              {kind: kindReference, paths: []string{"beneficiary"}, target: "Patient"},
	"Device.patient":                {kind: kindReference, paths: []string{"patient"}, target: "Patient"},
	"DiagnosticReport.patient":      {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"DiagnosticReport.category":     {kind: kindToken, paths: []string{"category"}},
	"DiagnosticReport.code":         {kind: kindToken, paths: []string{"code"}},
	"DiagnosticReport.date":         {kind: kindDate, paths: []string{"effective[x]"}},
	"DocumentReference._id":         {kind: kindID},
	"DocumentReference.patient":     {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"DocumentReference.category":    {kind: kindToken, paths: []string{"category"}},
	"DocumentReference.type":        {kind: kindToken, paths: []string{"type"}},
	"DocumentReference.date":        {kind: kindDate, paths: []string{"date"}},
	"Encounter._id":                 {kind: kindID},
	"Encounter.patient":             {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"Encounter.date":                {kind: kindDate, paths: []string{"period"}},
	"Goal.patient":                  {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"Immunization.patient":          {kind: kindReference, paths: []string{"patient"}, target: "Patient"},
	"Location.address":              {kind: kindString, paths: []string{"address"}},
	"Location.name":                 {kind: kindString, paths: []string{"name", "alias"}},
	"MedicationDispense.patient":    {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"MedicationRequest.patient":     {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"MedicationRequest.intent":      {kind: kindToken, paths: []string{"intent"}},
	"MedicationRequest.status":      {kind: kindToken, paths: []string{"status"}},
	"Observation.patient":           {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"Observation.category":          {kind: kindToken, paths: []string{"category"}},
	"Observation.code":              {kind: kindToken, paths: []string{"code"}},
	"Observation.date":              {kind: kindDate, paths: []string{"effective[x]"}},
	"Organization.address":          {kind: kindString, paths: []string{"address"}},
	"Organization.name":             {kind: kindString, paths: []string{"name", "alias"}},
	"Patient._id":                   {kind: kindID},
	"Patient.identifier":            {kind: kindIdentifier, paths: []string{"identifier"}},
	"Patient.name":                  {kind: kindString, paths: []string{"name"}},
	"Patient.birthdate":             {kind: kindDate, paths: []string{"birthDate"}},
	"Patient.gender":                {kind: kindToken, paths: []string{"gender"}},
	"Practitioner.identifier":       {kind: kindIdentifier, paths: []string{"identifier"}},
	"Practitioner.name":             {kind: kindString, paths: []string{"name"}},
	"PractitionerRole.practitioner": {kind: kindReference, paths: []string{"practitioner"}, target: "Practitioner"},
	"PractitionerRole.specialty":    {kind: kindToken, paths: []string{"specialty"}},
	"Procedure.patient":             {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"Procedure.date":                {kind: kindDate, paths: []string{"performed[x]"}},
	"QuestionnaireResponse._id":     {kind: kindID},
	"QuestionnaireResponse.patient": {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"RelatedPerson._id":             {kind: kindID},
	"ServiceRequest._id":            {kind: kindID},
	"ServiceRequest.patient":        {kind: kindReference, paths: []string{"subject"}, target: "Patient"},
	"ServiceRequest.category":       {kind: kindToken, paths: []string{"category"}},
	"ServiceRequest.code":           {kind: kindToken, paths: []string{"code"}},
	"ServiceRequest.authored":       {kind: kindDate, paths: []string{"authoredOn"}},
	"Specimen._id":                  {kind: kindID},
}

// value is one indexed value of a resource as the evaluation sees it.
type value struct {
	system, code string    // token, identifier (code is the value), reference ("Type/id"), id
	text         string    // string
	lo, hi       time.Time // date: [lo, hi)
}

// nodes walks path (dot-separated; "x[x]" matches any choice of x) in v.
func nodes(v any, path string) []any {
	if path == "" {
		if l, ok := v.([]any); ok {
			return l
		}
		return []any{v}
	}
	head, rest, _ := strings.Cut(path, ".")
	var out []any
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			out = append(out, nodes(e, path)...)
		}
	case map[string]any:
		if choice, ok := strings.CutSuffix(head, "[x]"); ok {
			for k, e := range v {
				if strings.HasPrefix(k, choice) && len(k) > len(choice) && unicode.IsUpper(rune(k[len(choice)])) {
					out = append(out, nodes(e, rest)...)
				}
			}
		} else if e, ok := v[head]; ok {
			out = append(out, nodes(e, rest)...)
		}
	}
	return out
}

// values reads the values of p in resource r.
func (p shallParam) values(r map[string]any) []value {
	if p.kind == kindID {
		return []value{{code: str(r["id"])}}
	}
	var out []value
	for _, path := range p.paths {
		for _, n := range nodes(r, path) {
			out = append(out, p.read(n)...)
		}
	}
	return out
}

func (p shallParam) read(n any) []value {
	m, _ := n.(map[string]any)
	switch p.kind {
	case kindReference:
		ref := str(m["reference"])
		if i := strings.Index(ref, "/fhir/"); i >= 0 && strings.HasPrefix(ref, "http") {
			ref = ref[i+len("/fhir/"):]
		}
		if strings.HasPrefix(ref, p.target+"/") {
			return []value{{code: ref}}
		}
	case kindToken:
		if s, ok := n.(string); ok {
			return []value{{code: s}}
		}
		var out []value
		for _, c := range append(asList(m["coding"]), m) {
			c, _ := c.(map[string]any)
			if code := str(c["code"]); code != "" {
				out = append(out, value{system: str(c["system"]), code: code})
			}
		}
		return out
	case kindIdentifier:
		if v := str(m["value"]); v != "" {
			return []value{{system: str(m["system"]), code: v}}
		}
	case kindString:
		if s, ok := n.(string); ok {
			return []value{{text: s}}
		}
		var out []value
		for _, k := range []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"} {
			for _, s := range nodes(m, k) {
				if s, ok := s.(string); ok {
					out = append(out, value{text: s})
				}
			}
		}
		return out
	case kindDate:
		if s, ok := n.(string); ok {
			if lo, hi, ok := dateRange(s); ok {
				return []value{{lo: lo, hi: hi}}
			}
			return nil
		}
		if m == nil || (m["start"] == nil && m["end"] == nil) {
			return nil
		}
		v := value{lo: time.Unix(-1<<40, 0), hi: time.Unix(1<<40, 0)}
		if lo, _, ok := dateRange(str(m["start"])); ok {
			v.lo = lo
		}
		if _, hi, ok := dateRange(str(m["end"])); ok {
			v.hi = hi
		}
		return []value{v}
	}
	return nil
}

var dateForm = regexp.MustCompile(`^(\d{4})(-\d{2})?(-\d{2})?(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$`)

// dateRange is the range [lo, hi) a FHIR date, dateTime or instant covers at
// its precision; dates without a time are taken in UTC.
func dateRange(s string) (lo, hi time.Time, ok bool) {
	m := dateForm.FindStringSubmatch(s)
	if m == nil {
		return lo, hi, false
	}
	var err error
	switch {
	case m[1] != "" && m[2] == "":
		lo, err = time.Parse("2006", s)
		hi = lo.AddDate(1, 0, 0)
	case m[3] == "":
		lo, err = time.Parse("2006-01", s)
		hi = lo.AddDate(0, 1, 0)
	case m[4] == "":
		lo, err = time.Parse("2006-01-02", s)
		hi = lo.AddDate(0, 0, 1)
	case m[5] == "":
		lo, err = time.Parse("2006-01-02T15:04Z07:00", s)
		hi = lo.Add(time.Minute)
	case m[6] == "":
		lo, err = time.Parse(time.RFC3339, s)
		hi = lo.Add(time.Second)
	default:
		lo, err = time.Parse(time.RFC3339Nano, s)
		lo = lo.Truncate(time.Millisecond)
		hi = lo.Add(time.Millisecond)
	}
	return lo, hi, err == nil
}

// fold is what string search compares: lower case, without accents, with
// runs of white space as one space.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, _ := transform.String(t, s)
	return strings.Join(strings.Fields(strings.ToLower(out)), " ")
}

// shallQuery is one search and the conditions the evaluation checks.
type shallQuery struct {
	values url.Values
	conds  []func(r map[string]any) bool
}

func (q shallQuery) matches(r map[string]any) bool {
	for _, c := range q.conds {
		if !c(r) {
			return false
		}
	}
	return true
}

// datePrefixes are cycled through the date parameters' queries.
var datePrefixes = []string{"eq", "ge", "le", "gt", "lt", "sa", "eb", "ne"}

// shallQueries builds, from up to four stored resources having values for
// every parameter of sr, queries in two spellings each (plain and
// qualified: code and system|code, id and Type/id, a prefix and the whole
// string in upper case, days and years), every date comparator at the
// precision of seconds, and queries OR-ing two resources' values.
func shallQueries(sr fhirschema.RequiredSearch, all []map[string]any) []shallQuery {
	var samples []map[string]any
	for _, r := range all {
		ok := true
		for _, p := range sr.Params {
			ok = ok && len(shallParams[sr.Type+"."+p].values(r)) > 0
		}
		if ok {
			samples = append(samples, r)
		}
	}
	if len(samples) > 4 {
		step := len(samples) / 4
		samples = []map[string]any{samples[0], samples[step], samples[2*step], samples[3*step]}
	}
	var out []shallQuery
	n := 0
	for _, r := range samples {
		for spelling := range 2 {
			q := shallQuery{values: url.Values{}}
			for _, code := range sr.Params {
				p := shallParams[sr.Type+"."+code]
				v := p.values(r)[0]
				n++
				arg, cond := p.query(v, spelling, datePrefixes[n%len(datePrefixes)])
				q.values.Set(code, arg)
				q.conds = append(q.conds, func(r map[string]any) bool { return cond(p.values(r)) })
			}
			out = append(out, q)
		}
	}
	// Each comparator on a date at the precision of seconds, which tells
	// periods that reach into the searched second from those within it.
	for _, code := range sr.Params {
		p := shallParams[sr.Type+"."+code]
		if p.kind != kindDate {
			continue
		}
		for _, r := range samples {
			for _, prefix := range datePrefixes {
				q := shallQuery{values: url.Values{}}
				for _, other := range sr.Params {
					p := shallParams[sr.Type+"."+other]
					spelling := 0
					if other == code {
						spelling = 2
					}
					arg, cond := p.query(p.values(r)[0], spelling, prefix)
					q.values.Set(other, arg)
					q.conds = append(q.conds, func(r map[string]any) bool { return cond(p.values(r)) })
				}
				out = append(out, q)
			}
		}
	}
	// Each parameter in turn OR-ing two resources' values, the others
	// as the first resource has them.
	if len(samples) > 1 {
		first, last := samples[0], samples[len(samples)-1]
		for _, code := range sr.Params {
			q := shallQuery{values: url.Values{}}
			for _, other := range sr.Params {
				p := shallParams[sr.Type+"."+other]
				arg, cond := p.query(p.values(first)[0], 0, "eq")
				if other == code {
					b, condB := p.query(p.values(last)[0], 0, "eq")
					condA := cond
					arg, cond = arg+","+b, func(vs []value) bool { return condA(vs) || condB(vs) }
				}
				q.values.Set(other, arg)
				q.conds = append(q.conds, func(r map[string]any) bool { return cond(p.values(r)) })
			}
			out = append(out, q)
		}
	}
	return out
}

// escape protects the characters search values give a meaning (R4 search
// §3.1.1.6).
var escape = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `$`, `\$`, `|`, `\|`)

// query spells a search value for v and returns the condition a
// resource's values must meet to match it, after R4 search §3.1.1.4: some
// value matches, or for ne, none lies within the searched range.
func (p shallParam) query(v value, spelling int, prefix string) (string, func([]value) bool) {
	some := func(f func(value) bool) func([]value) bool {
		return func(vs []value) bool { return slices.ContainsFunc(vs, f) }
	}
	switch p.kind {
	case kindID:
		return v.code, some(func(w value) bool { return w.code == v.code })
	case kindReference:
		if spelling == 0 {
			id := strings.TrimPrefix(v.code, p.target+"/")
			return id, some(func(w value) bool { return w.code == p.target+"/"+id })
		}
		return v.code, some(func(w value) bool { return w.code == v.code })
	case kindToken, kindIdentifier:
		if spelling == 0 || v.system == "" {
			return v.code, some(func(w value) bool { return w.code == v.code })
		}
		return v.system + "|" + v.code, some(func(w value) bool { return w.code == v.code && w.system == v.system })
	case kindString:
		q := strings.ToUpper(v.text)
		if spelling == 0 {
			r := []rune(strings.TrimSpace(v.text))
			q = string(r[:min(3, len(r))])
		}
		return escape.Replace(q), some(func(w value) bool { return strings.HasPrefix(fold(w.text), fold(q)) })
	}
	// kindDate: the day, year or second of the sample, in UTC.
	layout := []string{"2006-01-02", "2006", "2006-01-02T15:04:05Z07:00"}[spelling]
	day := v.lo.UTC()
	if v.lo.Before(time.Unix(-1<<39, 0)) { // a period open at its start
		day = v.hi.UTC().Add(-time.Millisecond)
	}
	q := day.Format(layout)
	var s value
	s.lo, s.hi, _ = dateRange(q)
	within := func(t value) bool { return !t.lo.Before(s.lo) && !t.hi.After(s.hi) }
	conds := map[string]func(value) bool{
		"eq": within,
		"gt": func(t value) bool { return t.hi.After(s.hi) },
		"lt": func(t value) bool { return t.lo.Before(s.lo) },
		"ge": func(t value) bool { return t.hi.After(s.hi) || within(t) },
		"le": func(t value) bool { return t.lo.Before(s.lo) || within(t) },
		"sa": func(t value) bool { return !t.lo.Before(s.hi) },
		"eb": func(t value) bool { return !t.hi.After(s.lo) },
	}
	if prefix == "ne" {
		return prefix + q, func(vs []value) bool { return !slices.ContainsFunc(vs, within) }
	}
	return prefix + q, some(conds[prefix])
}

package app

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/ingest"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/store"
)

// groupCmd is `fhirgraph group create`: a Group of the patients a search
// finds, a cohort to search by (Patient?_has…, Group?member=…) or to export
// (Group/[id]/$export).
func groupCmd(ctx context.Context, e *env, args []string) error {
	return runActions(ctx, e, "group", []action{
		{"create", "--name N --query 'Type?params' [--id ID] [--practice PIN] [--json]", groupCreate},
	}, args)
}

// maxGroupMembers bounds a cohort: a Group is one resource.
const maxGroupMembers = 100_000

func groupCreate(ctx context.Context, e *env, lead *flag.FlagSet, args []string) error {
	fs := newFlagSet("group create", e)
	var sf storeFlags
	sf.register(fs, e)
	name := fs.String("name", "", "the Group's name")
	query := fs.String("query", "", "a FHIR search, Type?params (as after /fhir/): the members are the patients of its matches (a Patient search's matches themselves)")
	id := fs.String("id", "", "the Group's id (default: from the name); creating it again replaces its members")
	practice := fs.String("practice", "", "PIN of a practice: the search reads only its data (and shared data), and the Group belongs to it")
	baseURL := baseURLFlag(fs, e, "public URL of the server (env FHIRGRAPH_BASE_URL): absolute references under it count as relative ones")
	asJSON := fs.Bool("json", false, "print the Group as JSON")
	if _, err := parseAction(fs, lead, args, 0); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("--name: required")
	}
	if *id == "" {
		*id = groupID(*name)
	}
	typ, raw, _ := strings.Cut(*query, "?")
	params, err := url.ParseQuery(raw)
	if typ == "" || err != nil {
		return fmt.Errorf("--query %q: want Type?params", *query)
	}
	base := fhirBase(*baseURL)
	compiled, err := search.Compile(typ, params, search.Options{Strict: true, BaseURL: base})
	if err != nil {
		return fmt.Errorf("--query: %w", err)
	}
	st, _, err := sf.openWithLog(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	pin, err := practicePIN(ctx, st, *practice)
	if err != nil {
		return err
	}
	q := compiled.Query
	if pin != "" {
		q.Practices = []string{pin, ""}
	}
	members, err := cohort(ctx, st, q, base)
	if err != nil {
		return err
	}
	group := &fhirjson.Object{}
	group.Set("resourceType", "Group")
	group.Set("id", *id)
	group.Set("type", "person")
	group.Set("actual", true)
	group.Set("name", *name)
	group.Set("quantity", json.Number(strconv.Itoa(len(members))))
	var entries []any
	for _, m := range members {
		entity := &fhirjson.Object{}
		entity.Set("reference", m)
		entry := &fhirjson.Object{}
		entry.Set("entity", entity)
		entries = append(entries, entry)
	}
	if len(entries) > 0 {
		group.Set("member", entries)
	}
	var rejected string
	stats, err := ingest.Load(ctx, st, func(emit func(ingest.Item) error) error {
		return emit(ingest.Item{Where: "group create", Obj: group})
	}, ingest.Options{Strict: true, Base: base, Practice: pin, Reject: func(r ingest.Rejection) { rejected = r.Reason }})
	if err != nil {
		return fmt.Errorf("group create: %w %s", err, rejected)
	}
	if *asJSON {
		_, err := e.stdout.Write(append(fhirjson.Marshal(group), '\n'))
		return err
	}
	verb := "created"
	if stats.Updated > 0 || stats.Unchanged > 0 {
		verb = "updated"
	}
	fmt.Fprintf(e.stdout, "%s Group/%s (%s) with %d members\n", verb, *id, *name, len(members))
	return nil
}

// cohort runs q to its end and returns the patients of its matches,
// "Patient/id", sorted.
func cohort(ctx context.Context, st store.Store, q store.Query, base string) ([]string, error) {
	q.Count, q.Total, q.CountOnly = store.MaxPageSize, false, false
	seen := map[string]bool{}
	for {
		page, err := st.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, res := range page.Resources {
			var patients []string
			if res.Type == "Patient" {
				patients = []string{"Patient/" + res.ID}
			} else if obj, err := fhirjson.Parse(res.Body); err == nil {
				patients = search.PatientCompartments(res.Type, res.ID, search.Index(obj, base))
			}
			for _, p := range patients {
				seen[p] = true
			}
		}
		if len(seen) > maxGroupMembers {
			return nil, fmt.Errorf("the search finds more than %d patients; narrow it", maxGroupMembers)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	members := make([]string, 0, len(seen))
	for p := range seen {
		members = append(members, p)
	}
	slices.Sort(members)
	return members, nil
}

// groupID makes a FHIR id of a name: lower-case letters and digits, other
// runs as '-', at most 64 characters.
func groupID(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	id := strings.TrimSuffix(b.String(), "-")
	if len(id) > 64 {
		id = strings.TrimSuffix(id[:64], "-")
	}
	if id == "" {
		id = "group"
	}
	return id
}

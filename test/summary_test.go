package test

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// members lists a resource's top-level member names, sorted.
func members(res map[string]any) []string {
	return slices.Sorted(maps.Keys(res))
}

// subsetted reports whether a resource carries the SUBSETTED tag.
func subsetted(res map[string]any) bool {
	meta, _ := res["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	for _, tag := range tags {
		tag := tag.(map[string]any)
		if tag["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" && tag["code"] == "SUBSETTED" {
			return true
		}
	}
	return false
}

// entryResources returns a searchset's resources by id, with their
// search modes.
func entryResources(t *testing.T, b map[string]any) (map[string]map[string]any, map[string]string) {
	t.Helper()
	res, modes := map[string]map[string]any{}, map[string]string{}
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		e := e.(map[string]any)
		r := e["resource"].(map[string]any)
		id := str(r["id"])
		if r["resourceType"] == "OperationOutcome" {
			id = "outcome"
		}
		res[id] = r
		modes[id] = str(e["search"].(map[string]any)["mode"])
	}
	return res, modes
}

var summaryFixtures = []string{
	`{"resourceType":"Patient","id":"su1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Ada</div>"},` +
		`"identifier":[{"system":"urn:mrn","value":"su1"}],"name":[{"family":"Summary"}],"gender":"female","birthDate":"1970-03-04",` +
		`"_birthDate":{"extension":[{"url":"http://example.org/ext","valueString":"approx"}]},"maritalStatus":{"text":"single"}}`,
	`{"resourceType":"Observation","id":"suo1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Hb</div>"},` +
		`"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]},"subject":{"reference":"Patient/su1"},` +
		`"valueQuantity":{"value":13.2,"unit":"g/dL"},"note":[{"text":"fasting"}]}`,
}

func TestSummaryAndElements(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		for _, f := range summaryFixtures {
			typ, id := "Patient", "su1"
			if strings.Contains(f, `"Observation"`) {
				typ, id = "Observation", "suo1"
			}
			expect(t, s.do("PUT", typ+"/"+id, f), http.StatusCreated)
		}
		cases := []struct {
			query       string
			want        map[string][]string // id → top-level members
			subsetted   []string            // ids that must carry the tag
			unsubsetted []string
		}{
			{"Patient?_id=su1&_elements=name,birthDate", map[string][]string{"su1": {"_birthDate", "birthDate", "id", "meta", "name", "resourceType"}}, []string{"su1"}, nil},
			{"Observation?_id=suo1&_elements=value", map[string][]string{"suo1": {"code", "id", "meta", "resourceType", "status", "valueQuantity"}}, []string{"suo1"}, nil},
			{"Observation?_id=suo1&_elements=valueQuantity,note", map[string][]string{"suo1": {"code", "id", "meta", "note", "resourceType", "status", "valueQuantity"}}, []string{"suo1"}, nil},
			{"Observation?_id=suo1&_summary=true", map[string][]string{"suo1": {"code", "id", "meta", "resourceType", "status", "subject", "valueQuantity"}}, []string{"suo1"}, nil},
			// maritalStatus and text are not summary elements.
			{"Patient?_id=su1&_summary=true", map[string][]string{"su1": {"_birthDate", "birthDate", "gender", "id", "identifier", "meta", "name", "resourceType"}}, []string{"su1"}, nil},
			{"Observation?_id=suo1&_summary=text", map[string][]string{"suo1": {"code", "id", "meta", "resourceType", "status", "text"}}, []string{"suo1"}, nil},
			{"Patient?_id=su1&_summary=data", map[string][]string{"su1": {"_birthDate", "birthDate", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType"}}, []string{"su1"}, nil},
			{"Patient?_id=su1&_summary=false", map[string][]string{"su1": {"_birthDate", "birthDate", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType", "text"}}, nil, []string{"su1"}},
			// _summary shapes included resources too; _elements, which names
			// the searched type's elements, only the matches.
			{"Observation?_id=suo1&_summary=data&_include=Observation:subject", map[string][]string{
				"suo1": {"code", "id", "meta", "note", "resourceType", "status", "subject", "valueQuantity"},
				"su1":  {"_birthDate", "birthDate", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType"}}, []string{"suo1", "su1"}, nil},
			{"Observation?_id=suo1&_elements=subject&_include=Observation:subject", map[string][]string{
				"suo1": {"code", "id", "meta", "resourceType", "status", "subject"},
				"su1":  {"_birthDate", "birthDate", "gender", "id", "identifier", "maritalStatus", "meta", "name", "resourceType", "text"}}, []string{"suo1"}, []string{"su1"}},
		}
		for _, c := range cases {
			t.Run(c.query, func(t *testing.T) {
				b := expect(t, s.do("GET", c.query, nil), http.StatusOK)
				got, _ := entryResources(t, b)
				if len(got) != len(c.want) {
					t.Errorf("entries %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(c.want)))
				}
				for id, want := range c.want {
					if m := members(got[id]); !slices.Equal(m, want) {
						t.Errorf("%s members %v, want %v", id, m, want)
					}
				}
				for _, id := range c.subsetted {
					if !subsetted(got[id]) {
						t.Errorf("%s is not tagged SUBSETTED: %v", id, got[id]["meta"])
					}
				}
				for _, id := range c.unsubsetted {
					if subsetted(got[id]) {
						t.Errorf("%s is tagged SUBSETTED but is whole", id)
					}
				}
			})
		}
		// Stored resources stay whole.
		whole := expect(t, s.do("GET", "Patient/su1", nil), http.StatusOK)
		if subsetted(whole) || whole["text"] == nil {
			t.Errorf("a subsetted search changed the stored resource: %v", whole)
		}
		// Read takes them too.
		read := expect(t, s.do("GET", "Patient/su1?_elements=gender", nil), http.StatusOK)
		if m := members(read); !slices.Equal(m, []string{"gender", "id", "meta", "resourceType"}) || !subsetted(read) {
			t.Errorf("read with _elements: %v", read)
		}
		read = expect(t, s.do("GET", "Observation/suo1?_summary=true", nil), http.StatusOK)
		if m := members(read); !slices.Equal(m, []string{"code", "id", "meta", "resourceType", "status", "subject", "valueQuantity"}) || !subsetted(read) {
			t.Errorf("read with _summary=true: %v", read)
		}
		// _summary=count is unchanged.
		if b := expect(t, s.do("GET", "Observation?subject=su1&_summary=count", nil), http.StatusOK); b["total"] != 1.0 || b["entry"] != nil {
			t.Errorf("_summary=count: %v", b)
		}
		for _, c := range []struct{ path, names string }{
			{"Patient?_summary=yes", "_summary"},
			{"Patient?_summary=true&_summary=data", "_summary"},
			{"Patient?_elements=nonsense", "_elements"},
			{"Patient?_elements=name,,gender", "_elements"},
			{"Patient?_elements=name.family", "_elements"},
			{"Patient?_elements=contact.name", "_elements"},
			{"Patient?_elements=name&_summary=true", "_elements"},
			{"Patient?_elements:x=name", "_elements"},
			{"Observation?_elements=value[x]", "_elements"},
			{"Patient/su1?_summary=maybe", "_summary"},
			{"Patient/su1?_elements=status", "_elements"},
			{"Patient/su1/Observation?_elements=nonsense", "_elements"},
		} {
			t.Run(c.path, func(t *testing.T) {
				outcomeNames(t, s.do("GET", c.path, nil), http.StatusBadRequest, c.names)
			})
		}
	})
}

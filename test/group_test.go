package test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestGroupCreateMakesACohortFromASearch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		for _, id := range []string{"g1", "g2", "g3"} {
			expect(t, s.do("PUT", "Patient/"+id, patient("Cohort", `,"id":"`+id+`"`)), http.StatusCreated)
		}
		condition := func(id, patient, code string) string {
			return `{"resourceType":"Condition","id":"` + id + `","subject":{"reference":"Patient/` + patient + `"},"code":{"coding":[{"system":"http://snomed.info/sct","code":"` + code + `"}]}}`
		}
		expect(t, s.do("PUT", "Condition/c1", condition("c1", "g1", "44054006")), http.StatusCreated)
		expect(t, s.do("PUT", "Condition/c2", condition("c2", "g3", "44054006")), http.StatusCreated)
		expect(t, s.do("PUT", "Condition/c3", condition("c3", "g3", "44054006")), http.StatusCreated)
		expect(t, s.do("PUT", "Condition/c4", condition("c4", "g2", "38341003")), http.StatusCreated)

		out, err := e.cli(t, dir, "group", "create", "--name", "Type 2 diabetes", "--query", "Condition?code=http://snomed.info/sct|44054006", "--practice", testPractice, "--log-level", "error")
		if err != nil || !strings.Contains(out, "created Group/type-2-diabetes (Type 2 diabetes) with 2 members") {
			t.Fatalf("group create: %v\n%s", err, out)
		}
		g := expect(t, s.do("GET", "Group/type-2-diabetes", nil), http.StatusOK)
		var members []string
		for _, m := range g["member"].([]any) {
			members = append(members, str(at(m, "entity", "reference")))
		}
		if !reflect.DeepEqual(members, []string{"Patient/g1", "Patient/g3"}) || g["quantity"] != float64(2) || g["actual"] != true || g["type"] != "person" {
			t.Errorf("Group: %v", g)
		}
		// Searchable by member; created again, it is replaced.
		sameIDs(t, "Group?member=Patient/g3", restIDs(t, s, "Group?member=Patient/g3"), "type-2-diabetes")
		if out, err := e.cli(t, dir, "group", "create", "--name", "Type 2 diabetes", "--query", "Patient?family=Cohort", "--log-level", "error"); err != nil || !strings.Contains(out, "updated Group/type-2-diabetes (Type 2 diabetes) with 3 members") {
			t.Fatalf("group create again: %v\n%s", err, out)
		}
		for name, args := range map[string][]string{
			"no name":          {"--query", "Patient?family=Cohort"},
			"no type":          {"--name", "x", "--query", "?family=Cohort"},
			"unknown param":    {"--name", "x", "--query", "Patient?nope=1"},
			"unknown practice": {"--name", "x", "--query", "Patient?family=Cohort", "--practice", "NOPE"},
		} {
			if out, err := e.cli(t, dir, "group", append([]string{"create", "--log-level", "error"}, args...)...); err == nil {
				t.Errorf("%s: no error\n%s", name, out)
			}
		}
	})
}

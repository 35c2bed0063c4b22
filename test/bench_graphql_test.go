package test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// nestedQuery is the dashboard query of the GraphQL benchmark: a page of 50
// patients, each with its conditions, observations and encounters, and the
// practitioners the encounters name.
const nestedQuery = `{ PatientList(_count: 50) { id gender birthDate name { family given }
	ConditionList(_reference: "patient") { id clinicalStatus { coding { code } } code { coding { system code display } } onsetDateTime }
	ObservationList(_reference: "patient") { id status code { coding { system code } } valueQuantity { value unit } effectiveDateTime }
	EncounterList(_reference: "patient") { id status period { start end }
		participant { individual { reference resource { ... on Practitioner { id name { family given } } } } } } } }`

// BenchmarkGraphQLNested measures nestedQuery over HTTP against seed data
// (see benchServer), and what a REST client does to get the same
// resources: rest-per-patient asks for each patient's conditions,
// observations and encounters (first page of 50, as the GraphQL lists),
// then the practitioners in one _id search; rest-batched asks for all 50
// patients' resources of each type in one search (paging on), then the
// practitioners. Reports median and p99 latency, and the store operations
// one round makes.
func BenchmarkGraphQLNested(b *testing.B) {
	s := benchServer(b)
	client := &http.Client{}
	body, _ := json.Marshal(map[string]string{"query": nestedQuery})
	graphQL := func(b *testing.B) int {
		req, _ := http.NewRequest("POST", s.root+"/graphql", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Data struct {
				PatientList []struct {
					ConditionList, ObservationList, EncounterList []json.RawMessage
				}
			}
			Errors []any
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) > 0 || resp.StatusCode != http.StatusOK {
			b.Fatalf("GraphQL: %d %v %v", resp.StatusCode, err, out.Errors)
		}
		n := len(out.Data.PatientList)
		for _, p := range out.Data.PatientList {
			n += len(p.ConditionList) + len(p.ObservationList) + len(p.EncounterList)
		}
		return n
	}
	// rest fetches a searchset (following next links when all is set) and
	// returns its resources.
	rest := func(b *testing.B, path string, all bool) []map[string]any {
		var out []map[string]any
		for u := s.base + "/" + path; u != ""; {
			resp, err := s.get(client, u)
			if err != nil {
				b.Fatal(err)
			}
			var bundle struct {
				Link  []struct{ Relation, URL string }
				Entry []struct{ Resource map[string]any }
			}
			err = json.NewDecoder(resp.Body).Decode(&bundle)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: %d %v", path, resp.StatusCode, err)
			}
			for _, e := range bundle.Entry {
				out = append(out, e.Resource)
			}
			u = ""
			for _, l := range bundle.Link {
				if l.Relation == "next" && all {
					u = l.URL
				}
			}
		}
		return out
	}
	practitioners := func(b *testing.B, encounters []map[string]any) int {
		var ids []string
		for _, e := range encounters {
			parts, _ := e["participant"].([]any)
			for _, p := range parts {
				ref := str(at(p, "individual", "reference"))
				if id, ok := strings.CutPrefix(ref, "Practitioner/"); ok && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == 0 {
			return 0
		}
		return len(rest(b, "Practitioner?_count=1000&_id="+strings.Join(ids, ","), true))
	}
	restPerPatient := func(b *testing.B) int {
		patients := rest(b, "Patient?_count=50", false)
		n := len(patients)
		var encounters []map[string]any
		for _, p := range patients {
			id := str(p["id"])
			n += len(rest(b, "Condition?_count=50&patient="+id, false))
			n += len(rest(b, "Observation?_count=50&patient="+id, false))
			e := rest(b, "Encounter?_count=50&patient="+id, false)
			n += len(e)
			encounters = append(encounters, e...)
		}
		practitioners(b, encounters)
		return n
	}
	restBatched := func(b *testing.B) int {
		patients := rest(b, "Patient?_count=50", false)
		var ids []string
		for _, p := range patients {
			ids = append(ids, str(p["id"]))
		}
		list := url.QueryEscape(strings.Join(ids, ","))
		n := len(patients)
		n += len(rest(b, "Condition?_count=1000&patient="+list, true))
		n += len(rest(b, "Observation?_count=1000&patient="+list, true))
		e := rest(b, "Encounter?_count=1000&patient="+list, true)
		practitioners(b, e)
		return n + len(e)
	}
	for _, c := range []struct {
		name string
		run  func(*testing.B) int
	}{{"graphql", graphQL}, {"rest-per-patient", restPerPatient}, {"rest-batched", restBatched}} {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			n := 0
			ops := storeOps(b, s)
			for b.Loop() {
				t0 := time.Now()
				n = c.run(b)
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(n), "resources")
			// The server is otherwise idle: its store operations are the
			// client's.
			b.ReportMetric(float64(storeOps(b, s)-ops)/float64(b.N), "store-ops/op")
		})
	}
}

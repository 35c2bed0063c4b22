package test

import (
	"net/http"
	"strings"
	"testing"
)

const txPatientAndObservation = `{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Patient","name":[{"family":"Tx"}]},
  "request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059","resource":{"resourceType":"Observation","status":"final","code":{"text":"weight"},
  "subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
  "request":{"method":"POST","url":"Observation"}}
]}`

func TestTransactionRewritesReferences(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		if !e.transactions {
			expectTransactionRefused(t, s, txPatientAndObservation)
			return
		}
		resp := expect(t, s.do("POST", "", txPatientAndObservation), http.StatusOK)
		if resp["type"] != "transaction-response" {
			t.Fatalf("type %v", resp["type"])
		}
		entries := resp["entry"].([]any)
		if len(entries) != 2 {
			t.Fatalf("%d entries", len(entries))
		}
		var locations []string
		for _, e := range entries {
			r := e.(map[string]any)["response"].(map[string]any)
			if r["status"] != "201 Created" {
				t.Errorf("entry status %v", r["status"])
			}
			locations = append(locations, str(r["location"]))
		}
		patientID := strings.Split(locations[0], "/")[1]
		obs := expect(t, s.do("GET", strings.TrimSuffix(locations[1], "/_history/1"), nil), http.StatusOK)
		if got := obs["subject"].(map[string]any)["reference"]; got != "Patient/"+patientID {
			t.Errorf("subject.reference = %v, want Patient/%s", got, patientID)
		}
		expect(t, s.do("GET", "Patient/"+patientID, nil), http.StatusOK)
	})
}

// TestTransactionIsAllOrNothing: a transaction whose later entry fails leaves
// no trace of its earlier entries.
func TestTransactionIsAllOrNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		expect(t, s.do("PUT", "Patient/p1", patient("One", `,"id":"p1"`)), http.StatusCreated)
		expect(t, s.do("PUT", "Patient/p1", patient("One", `,"id":"p1"`)), http.StatusOK)
		cases := []struct {
			name   string
			bundle string
			status int
			where  string
		}{
			{"stale ifMatch in the last entry", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","name":[{"family":"New"}]},"request":{"method":"POST","url":"Patient"}},
				{"resource":{"resourceType":"Patient","id":"p2","name":[{"family":"Two"}]},"request":{"method":"PUT","url":"Patient/p2"}},
				{"resource":{"resourceType":"Patient","id":"p1","name":[{"family":"Changed"}]},"request":{"method":"PUT","url":"Patient/p1","ifMatch":"W/\"1\""}}]}`,
				http.StatusPreconditionFailed, "Bundle.entry[2]"},
			{"invalid resource in the second entry", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","name":[{"family":"New"}]},"request":{"method":"POST","url":"Patient"}},
				{"resource":{"resourceType":"Patient","id":"p2","birthDate":"not-a-date"},"request":{"method":"PUT","url":"Patient/p2"}}]}`,
				http.StatusUnprocessableEntity, "Bundle.entry[1].resource.birthDate"},
			{"dangling urn reference", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0b7e5e0c-5a4b-4a43-9d1e-9e9b3bc1a001"}},"request":{"method":"POST","url":"Observation"}}]}`,
				http.StatusUnprocessableEntity, "Bundle.entry[0].resource"},
			{"same resource changed twice", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PUT","url":"Patient/p2"}},
				{"request":{"method":"DELETE","url":"Patient/p2"}}]}`,
				http.StatusBadRequest, ""},
			{"entry without request", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PUT","url":"Patient/p2"}},
				{"resource":{"resourceType":"Patient"}}]}`,
				http.StatusBadRequest, "Bundle.entry[1].request"},
			{"unsupported method", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PATCH","url":"Patient/p2"}}]}`,
				http.StatusBadRequest, "Bundle.entry[0].request.method"},
			{"resourceType differs from url", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PUT","url":"Observation/p2"}}]}`,
				http.StatusBadRequest, "Bundle.entry[0].resource.resourceType"},
			{"search url", `{"resourceType":"Bundle","type":"transaction","entry":[
				{"request":{"method":"GET","url":"Patient?name=x"}}]}`,
				http.StatusBadRequest, "Bundle.entry[0].request.url"},
			{"not a transaction", `{"resourceType":"Bundle","type":"collection"}`, http.StatusBadRequest, ""},
			{"not a Bundle", patient("X"), http.StatusBadRequest, ""},
		}
		if !e.transactions { // the first case gets to the store, which refuses it
			cases[0].status, cases[0].where = http.StatusNotImplemented, ""
		}
		before := systemVersions(t, s)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				oo := expectOutcome(t, s.do("POST", "", c.bundle), c.status)
				if c.where != "" && !strings.Contains(string(mustJSON(t, oo["issue"])), `"`+c.where+`"`) {
					t.Errorf("no issue at %s: %v", c.where, oo)
				}
			})
		}
		if after := systemVersions(t, s); after != before {
			t.Errorf("failed transactions wrote: %d versions before, %d after", before, after)
		}
		expectOutcome(t, s.do("GET", "Patient/p2", nil), http.StatusNotFound)
	})
}

func TestTransactionOrderAndReads(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		expect(t, s.do("PUT", "Patient/gone", patient("Gone", `,"id":"gone"`)), http.StatusCreated)
		bundle := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"request":{"method":"GET","url":"Patient/keep"}},
			{"resource":{"resourceType":"Patient","id":"keep","name":[{"family":"Keep"}]},"request":{"method":"PUT","url":"Patient/keep"}},
			{"request":{"method":"DELETE","url":"Patient/gone"}},
			{"request":{"method":"DELETE","url":"Patient/never"}}]}`
		if !e.transactions {
			expectTransactionRefused(t, s, bundle)
			expect(t, s.do("GET", "Patient/gone", nil), http.StatusOK)
			return
		}
		resp := expect(t, s.do("POST", "", bundle), http.StatusOK)
		entries := resp["entry"].([]any)
		get := entries[0].(map[string]any)
		if get["response"].(map[string]any)["status"] != "200 OK" || get["resource"].(map[string]any)["id"] != "keep" {
			t.Errorf("GET runs after the writes of its transaction: %v", get)
		}
		for i, want := range []string{"200 OK", "201 Created", "204 No Content", "204 No Content"} {
			if got := entries[i].(map[string]any)["response"].(map[string]any)["status"]; got != want {
				t.Errorf("entry %d status %v, want %s", i, got, want)
			}
		}
		expectOutcome(t, s.do("GET", "Patient/gone", nil), http.StatusGone)
	})
}

func TestBatchEntriesSucceedOrFailAlone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := e.start(t, "")
		resp := expect(t, s.do("POST", "", `{"resourceType":"Bundle","type":"batch","entry":[
			{"resource":{"resourceType":"Patient","name":[{"family":"Ok"}]},"request":{"method":"POST","url":"Patient"}},
			{"resource":{"resourceType":"Patient","birthDate":"nope"},"request":{"method":"POST","url":"Patient"}},
			{"request":{"method":"GET","url":"Patient/missing"}},
			{"request":{"method":"BREW","url":"Patient"}}]}`), http.StatusOK)
		if resp["type"] != "batch-response" {
			t.Fatalf("type %v", resp["type"])
		}
		want := []string{"201", "422", "404", "400"}
		for i, e := range resp["entry"].([]any) {
			r := e.(map[string]any)["response"].(map[string]any)
			if !strings.HasPrefix(str(r["status"]), want[i]) {
				t.Errorf("entry %d status %v, want %s", i, r["status"], want[i])
			}
			if want[i] != "201" && r["outcome"] == nil {
				t.Errorf("entry %d failed without an outcome", i)
			}
		}
	})
}

// expectTransactionRefused checks that a store without transactions refuses
// a transaction of several writes, saying why, and writes nothing.
func expectTransactionRefused(t *testing.T, s *server, bundle string) {
	t.Helper()
	before := systemVersions(t, s)
	oo := expectOutcome(t, s.do("POST", "", bundle), http.StatusNotImplemented)
	if msg := string(mustJSON(t, oo["issue"])); !strings.Contains(msg, "replica set") {
		t.Errorf("refusal does not say what is needed: %s", msg)
	}
	if after := systemVersions(t, s); after != before {
		t.Errorf("a refused transaction wrote: %d versions before, %d after", before, after)
	}
}

package test

import (
	"encoding/json"
	"net/http"
	"testing"
)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDataSurvivesRestart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		dir := t.TempDir()
		s := e.start(t, dir)
		id := str(expect(t, s.do("POST", "Patient", patient("Persist")), http.StatusCreated)["id"])
		expect(t, s.do("PUT", "Patient/"+id, patient("Persist2", `,"id":"`+id+`"`)), http.StatusOK)
		s.stop()

		s2 := e.start(t, dir)
		got := expect(t, s2.do("GET", "Patient/"+id, nil), http.StatusOK)
		if got["meta"].(map[string]any)["versionId"] != "2" {
			t.Errorf("after restart: %v", got["meta"])
		}
		expect(t, s2.do("GET", "Patient/"+id+"/_history/1", nil), http.StatusOK)
	})
}

package resource

import (
	"bytes"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/store"
)

// A write's Stamp splices versionId and lastUpdated into the content it
// marshaled once; the body must be what marshaling the stamped resource
// again gives, with or without a client meta, whatever the id holds.
func TestStampIsTheStampedResourceMarshaled(t *testing.T) {
	when := time.Date(2024, 3, 1, 10, 0, 0, 123e6, time.UTC)
	for _, body := range []string{
		`{"resourceType":"Patient","gender":"female","id":"a"}`,
		`{"resourceType":"Patient","id":"a","meta":{"versionId":"9","lastUpdated":"2020-01-01T00:00:00Z"},"gender":"female"}`,
		`{"gender":"female","meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"],"lastUpdated":"2020-01-01T00:00:00Z"},"resourceType":"Patient","name":[{"family":"Ó\"Brien <b>"}]}`,
		`{"resourceType":"Patient","meta":{"versionId":"2"}}`,
	} {
		for _, id := range []string{"a", "p-1.2"} {
			obj, err := fhirjson.Parse([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			w, issues := Prepare(store.OpUpdate, "Patient", id, obj, "")
			if issues != nil {
				t.Fatalf("%s: %v", body, issues)
			}
			got, err := w.Stamp(12, when)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := fhirjson.Parse(w.Content)
			stampMeta(again, 12, when)
			if want := fhirjson.Marshal(again); !bytes.Equal(got, want) {
				t.Errorf("%s\n got %s\nwant %s", body, got, want)
			}
		}
	}
}

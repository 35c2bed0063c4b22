package validate

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// typicalPatient is a US Core style Patient of about 2 KB: race and
// ethnicity extensions, identifiers, names, telecom, address, a contained
// resource and a primitive with a `_name` shadow.
const typicalPatient = `{"resourceType":"Patient","id":"example-1","meta":{"versionId":"3","lastUpdated":"2023-06-01T10:15:30.123Z","profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Amy V. Baxter, born 1987-02-20</div>"},
"contained":[{"resourceType":"Organization","id":"org1","active":true,"name":"Acme Clinic"}],
"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]},
{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity","extension":[{"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2186-5","display":"Not Hispanic or Latino"}},{"url":"text","valueString":"Not Hispanic or Latino"}]},
{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}],
"identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR","display":"Medical Record Number"}],"text":"Medical Record Number"},"system":"http://hospital.smarthealthit.org","value":"1032702"},
{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-47-5984"}],
"active":true,
"name":[{"use":"official","family":"Baxter","given":["Amy","V."],"_given":[null,{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier","valueCode":"IN"}]}],"period":{"start":"1987-02-20"}},{"use":"maiden","family":"Shaw","given":["Amy"]}],
"telecom":[{"system":"phone","value":"555-555-5555","use":"home"},{"system":"email","value":"amy.shaw@example.com","rank":1}],
"gender":"female","birthDate":"1987-02-20","deceasedBoolean":false,
"address":[{"use":"home","type":"both","line":["49 Meadow St"],"city":"Mounds","district":"Creek","state":"OK","postalCode":"74047","country":"US","period":{"start":"2016-12-06T08:00:00-05:00"}}],
"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M"}]},
"multipleBirthInteger":1,
"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-US"}]},"preferred":true}],
"managingOrganization":{"reference":"#org1","display":"Acme Clinic"}}`

func BenchmarkResource(b *testing.B) {
	cases := []struct{ name, json string }{{"typical-patient-2KB", typicalPatient}}
	for _, name := range []string{"Patient", "Observation", "Encounter", "DiagnosticReport"} {
		if line := firstLine(filepath.Join(sharedDir, "peers-data", name+".ndjson")); line != "" {
			cases = append(cases, struct{ name, json string }{"peers-" + name, line})
		}
	}
	for _, c := range cases {
		r, err := fhirjson.Parse([]byte(c.json))
		if err != nil {
			b.Fatal(err)
		}
		if issues := Resource(r); issues != nil {
			b.Fatalf("%s is not valid: %+v", c.name, issues)
		}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.json)))
			b.ReportAllocs()
			for b.Loop() {
				Resource(r)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
		})
	}
}

// BenchmarkPeerData validates a spread of the peers' export (every 10th
// resource), single-threaded, and parses and validates it on all cores as
// the import path does.
func BenchmarkPeerData(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(sharedDir, "peers-data", "*.ndjson"))
	if len(files) == 0 {
		b.Skip("no peers-data next to the checkout")
	}
	var docs [][]byte
	var trees []*fhirjson.Object
	size := 0
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 64<<20)
		for i := 0; sc.Scan(); i++ {
			if i%10 != 0 {
				continue
			}
			doc := append([]byte(nil), sc.Bytes()...)
			r, err := fhirjson.Parse(doc)
			if err != nil {
				b.Fatal(err)
			}
			docs, trees, size = append(docs, doc), append(trees, r), size+len(doc)
		}
		f.Close()
	}
	b.Run("validate", func(b *testing.B) {
		b.SetBytes(int64(size / len(trees)))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			Resource(trees[i%len(trees)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	})
	b.Run("parse+validate-parallel", func(b *testing.B) {
		b.SetBytes(int64(size / len(docs)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				r, err := fhirjson.Parse(docs[i%len(docs)])
				if err != nil {
					b.Error(err)
					return
				}
				Resource(r)
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	})
}

func firstLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}

package search

import (
	"errors"
	"net/url"
	"testing"
)

const subsetPatient = `{"resourceType":"Patient","id":"p1","meta":{"versionId":"2","lastUpdated":"2024-01-01T00:00:00.000Z"},` +
	`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Ada</div>"},"implicitRules":"http://x",` +
	`"identifier":[{"system":"urn:mrn","value":"1"}],"name":[{"family":"Lovelace"}],"gender":"female",` +
	`"birthDate":"1970-03-04","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}}`

const subsettedTag = `"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"Subsetted"}]`

func TestSubsetKeepsWhatWasAskedForAndTagsIt(t *testing.T) {
	meta := `"meta":{"versionId":"2","lastUpdated":"2024-01-01T00:00:00.000Z",` + subsettedTag + `}`
	obs := `{"resourceType":"Observation","id":"o1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},` +
		`"status":"final","code":{"text":"Hb"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1},"note":[{"text":"n"}]}`
	obsTag := `"meta":{` + subsettedTag + `}`
	cases := []struct {
		name, typ, body, query, want string
	}{
		{"_elements keeps the named elements and a primitive's extensions", "Patient", subsetPatient, "_elements=birthDate,name",
			`{"resourceType":"Patient","id":"p1",` + meta + `,"name":[{"family":"Lovelace"}],"birthDate":"1970-03-04","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}}`},
		{"_elements names a choice without [x] and keeps mandatory elements", "Observation", obs, "_elements=value",
			`{"resourceType":"Observation","id":"o1",` + obsTag + `,"status":"final","code":{"text":"Hb"},"valueQuantity":{"value":1}}`},
		{"_elements may repeat", "Patient", subsetPatient, "_elements=gender&_elements=gender",
			`{"resourceType":"Patient","id":"p1",` + meta + `,"gender":"female"}`},
		{"_summary=data removes text only", "Patient", subsetPatient, "_summary=data",
			`{"resourceType":"Patient","id":"p1",` + meta + `,"implicitRules":"http://x","identifier":[{"system":"urn:mrn","value":"1"}],"name":[{"family":"Lovelace"}],"gender":"female","birthDate":"1970-03-04","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}}`},
		{"_summary=text keeps text, id, meta and mandatory elements", "Observation", obs, "_summary=text",
			`{"resourceType":"Observation","id":"o1",` + obsTag + `,"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"status":"final","code":{"text":"Hb"}}`},
		{"_summary=true keeps the summary elements, not text or note", "Observation", obs, "_summary=true",
			`{"resourceType":"Observation","id":"o1",` + obsTag + `,"status":"final","code":{"text":"Hb"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1}}`},
		{"_summary=true on a type without mandatory elements", "Patient", subsetPatient, "_summary=true",
			`{"resourceType":"Patient","id":"p1",` + meta + `,"implicitRules":"http://x","identifier":[{"system":"urn:mrn","value":"1"}],"name":[{"family":"Lovelace"}],"gender":"female","birthDate":"1970-03-04","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}}`},
		{"_summary=true leaves out what is not summary", "Patient", `{"resourceType":"Patient","id":"p1","photo":[{"url":"http://x/p.png"}],"contact":[{"gender":"male"}],"gender":"male"}`, "_summary=true",
			`{"resourceType":"Patient","id":"p1","meta":{` + subsettedTag + `},"gender":"male"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params, _ := url.ParseQuery(c.query)
			sub, err := ParseSubset(c.typ, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(sub.Apply(c.typ, []byte(c.body))); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestSubsetTagsOnce(t *testing.T) {
	sub := &Subset{Summary: "data"}
	once := sub.Apply("Patient", []byte(subsetPatient))
	if twice := sub.Apply("Patient", once); string(twice) != string(once) {
		t.Errorf("second application changed the resource:\n%s\n%s", once, twice)
	}
}

func TestSubsetNothingToLeaveOut(t *testing.T) {
	for _, q := range []string{"", "_summary=false", "_summary=count", "_count=3"} {
		params, _ := url.ParseQuery(q)
		sub, err := ParseSubset("Patient", params)
		if err != nil || sub != nil {
			t.Errorf("%q: got %+v, %v; want nil, nil", q, sub, err)
		}
		if got := sub.Apply("Patient", []byte(subsetPatient)); string(got) != subsetPatient {
			t.Errorf("%q: a nil subset changed the resource: %s", q, got)
		}
	}
}

func TestSubsetRefusesMalformedValues(t *testing.T) {
	cases := map[string]string{
		"_summary=yes":                    "_summary",
		"_summary=true&_summary=data":     "_summary",
		"_elements=nonsense":              "_elements",
		"_elements=name,":                 "_elements",
		"_elements=":                      "_elements",
		"_elements=value[x]":              "_elements",
		"_elements=name.family":           "_elements",
		"_elements=name&_summary=true":    "_elements",
		"_elements=valueQuantityX":        "_elements",
		"_elements=contact.name&_count=1": "_elements",
	}
	for q, param := range cases {
		params, _ := url.ParseQuery(q)
		_, err := ParseSubset("Patient", params)
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != param {
			t.Errorf("%q: got %v, want a ParamError naming %s", q, err, param)
		}
	}
	// Compile refuses them the same way.
	if _, err := Compile("Patient", url.Values{"_elements": {"nonsense"}}, Options{}); err == nil {
		t.Error("Compile accepted _elements=nonsense")
	}
}

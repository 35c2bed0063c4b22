package main

import (
	"bytes"
	"encoding/json"
	"strings"
)

// encode writes one parameter, profile, combination, … per line: compact,
// yet a regenerated registry diffs readably. Object keys come out in a
// fixed order (struct fields, sorted map keys), so the bytes are stable.
func (t *searchTable) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"generatedBy":"schema/internal/gen from the FHIR R4 and US Core SearchParameters and the US Core server CapabilityStatements; do not edit",` + "\n")
	writeList(&b, "versions", t.versions)
	b.WriteString(",\n")
	writeList(&b, "systemInteractions", t.systemInteractions)
	b.WriteString(",\n")
	writeList(&b, "common", t.common)
	b.WriteString(",\n\"resources\":[\n")
	for i, r := range t.resources {
		head := struct {
			Type   string       `json:"type"`
			Expect expectations `json:"exp,omitempty"`
		}{r.Type, r.Expect}
		b.WriteString(strings.TrimSuffix(marshal(head), "}"))
		writeField(&b, "profiles", r.Profiles)
		writeField(&b, "interactions", r.Interactions)
		writeField(&b, "referencePolicies", r.ReferencePolicies)
		writeField(&b, "operations", r.Operations)
		writeField(&b, "combinations", r.Combinations)
		writeField(&b, "includes", r.Includes)
		writeField(&b, "revIncludes", r.RevIncludes)
		writeField(&b, "params", r.Params)
		writeField(&b, "patientCompartment", r.PatientCompartment)
		b.WriteByte('}')
		if i < len(t.resources)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

// writeField writes `,"key":[…]` on lines of its own, or nothing for an
// empty list.
func writeField[T any](b *bytes.Buffer, key string, items []T) {
	if len(items) == 0 {
		return
	}
	b.WriteString(",\n")
	writeList(b, key, items)
}

func writeList[T any](b *bytes.Buffer, key string, items []T) {
	b.WriteString(quote(key) + ":[")
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n" + marshal(it))
	}
	b.WriteByte(']')
}

// marshal encodes v without HTML escaping, which would turn FHIRPath's
// comparison operators into \u003c sequences.
func marshal(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only plain structs, strings and maps are encoded
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Package fhirjson parses FHIR JSON into an order-preserving tree and writes
// it back. Unlike encoding/json into maps it refuses duplicate member names,
// keeps member order and keeps decimals exactly as written.
//
// Values in the tree are *Object, []any, string, json.Number, bool or nil.
package fhirjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Object is a JSON object with its members in document order.
type Object struct {
	Members []Member
}

// Member is one name/value pair of an Object.
type Member struct {
	Name  string
	Value any
}

// Get returns the value of the named member.
func (o *Object) Get(name string) (any, bool) {
	for _, m := range o.Members {
		if m.Name == name {
			return m.Value, true
		}
	}
	return nil, false
}

// String returns the named member when it is a string.
func (o *Object) String(name string) string {
	v, _ := o.Get(name)
	s, _ := v.(string)
	return s
}

// Object returns the named member when it is an object.
func (o *Object) Object(name string) *Object {
	v, _ := o.Get(name)
	obj, _ := v.(*Object)
	return obj
}

// Set replaces the named member's value, or appends the member.
func (o *Object) Set(name string, v any) {
	for i := range o.Members {
		if o.Members[i].Name == name {
			o.Members[i].Value = v
			return
		}
	}
	o.Members = append(o.Members, Member{Name: name, Value: v})
}

// Delete removes the named member if present.
func (o *Object) Delete(name string) {
	for i := range o.Members {
		if o.Members[i].Name == name {
			o.Members = append(o.Members[:i], o.Members[i+1:]...)
			return
		}
	}
}

// SyntaxError is a malformed document: invalid JSON, a duplicate member name,
// or a top level that is not an object. Path is the FHIRPath-like location
// of the problem when known.
type SyntaxError struct {
	Offset int64
	Path   string
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("%s (at %s, byte %d)", e.Msg, e.Path, e.Offset)
	}
	return fmt.Sprintf("%s (byte %d)", e.Msg, e.Offset)
}

// Parse reads exactly one JSON object from data.
func Parse(data []byte) (*Object, error) {
	s := scanner{data: data}
	s.skipSpace()
	if s.pos >= len(data) {
		return nil, s.fail("empty document")
	}
	if data[s.pos] != '{' {
		return nil, &SyntaxError{Offset: int64(s.pos), Msg: "a FHIR resource must be a JSON object"}
	}
	obj, err := s.object()
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(data) {
		return nil, &SyntaxError{Offset: int64(s.pos), Msg: "unexpected data after the JSON object"}
	}
	return obj, nil
}

// maxDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxDepth = 100

// Marshal writes a tree compactly, members in order.
func Marshal(v any) []byte {
	var b bytes.Buffer
	write(&b, v)
	return b.Bytes()
}

// MarshalIndent writes a tree with two-space indentation.
func MarshalIndent(v any) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, Marshal(v), "", "  "); err != nil {
		return Marshal(v)
	}
	return out.Bytes()
}

// MarshalJSON lets an Object be embedded in values encoded by encoding/json.
func (o *Object) MarshalJSON() ([]byte, error) { return Marshal(o), nil }

func write(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case *Object:
		b.WriteByte('{')
		for i, m := range t.Members {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, m.Name)
			b.WriteByte(':')
			write(b, m.Value)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			write(b, e)
		}
		b.WriteByte(']')
	case string:
		writeString(b, t)
	case json.Number:
		b.WriteString(string(t))
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	default:
		// Values built by callers (ints, structs) go through encoding/json.
		enc, err := json.Marshal(t)
		if err != nil {
			b.WriteString("null")
			return
		}
		b.Write(enc)
	}
}

// writeString writes s as a JSON string, escaping only what JSON requires
// (HTML characters stay as they are, as FHIR servers send them).
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// Path formats a location for error messages, FHIRPath style.
func Path(parts ...string) string { return strings.Join(parts, ".") }

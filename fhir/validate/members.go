package validate

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// member checks the value of a member named after element f.
func (s *state) member(o *fhirjson.Object, f *field, v any) {
	switch x := v.(type) {
	case []any:
		if !f.many {
			s.add(codeStructure, quote(f.name)+" takes a single value, not an array")
			return
		}
		if len(x) == 0 {
			s.add(codeStructure, "empty array: omit the element instead")
			return
		}
		var shadows []any
		looked := false
		for i, e := range x {
			s.index(i)
			switch {
			case e != nil:
				s.value(f, e)
			case f.kind != kindPrimitive:
				s.add(codeStructure, "null is not allowed in an array of "+f.typeName)
			default:
				// JSON keeps repeating primitives and their `_name` shadows
				// aligned by index, with null where one side has nothing.
				if !looked {
					sv, _ := o.Get(f.shadowName)
					shadows, _ = sv.([]any)
					looked = true
				}
				if i >= len(shadows) || shadows[i] == nil {
					s.add(codeStructure, "null in "+quote(f.name)+" is only allowed where "+quote(f.shadowName)+" has id or extensions at the same index")
				}
			}
		}
		s.index(-1)
	case nil:
		s.add(codeStructure, "null is not allowed here: omit the element instead")
	default:
		if f.many {
			s.add(codeStructure, quote(f.name)+" can repeat, so its value must be an array, even with one entry")
			return
		}
		s.value(f, x)
	}
}

// shadow checks `_name`, which carries the id and extensions of primitive f.
func (s *state) shadow(o *fhirjson.Object, f *field, v any) {
	primary, hasPrimary := o.Get(f.name)
	switch x := v.(type) {
	case []any:
		if !f.many {
			s.add(codeStructure, quote(f.shadowName)+" takes a single object, not an array")
			return
		}
		if len(x) == 0 {
			s.add(codeStructure, "empty array: omit the element instead")
			return
		}
		values, isArray := primary.([]any)
		if hasPrimary && isArray && len(values) != len(x) {
			s.add(codeStructure, quote(f.shadowName)+" has "+strconv.Itoa(len(x))+" entries but "+quote(f.name)+" has "+
				strconv.Itoa(len(values))+": they must align index by index, with null for nothing")
			return
		}
		for i, e := range x {
			s.index(i)
			hasValue := i < len(values) && values[i] != nil
			switch e := e.(type) {
			case nil:
				// A null on both sides is reported by member.
				if !isArray {
					s.add(codeStructure, "null in "+quote(f.shadowName)+" needs a value in "+quote(f.name)+" at the same index")
				}
			case *fhirjson.Object:
				s.shadowObject(e, f, hasValue)
			default:
				s.add(codeStructure, quote(f.shadowName)+" entries must be objects holding id and extensions, or null, not "+describe(e))
			}
		}
		s.index(-1)
	case *fhirjson.Object:
		if f.many {
			s.add(codeStructure, quote(f.name)+" can repeat, so "+quote(f.shadowName)+" must be an array aligned with it")
			return
		}
		s.shadowObject(x, f, hasPrimary && primary != nil)
	case nil:
		s.add(codeStructure, "null is not allowed here: omit the element instead")
	default:
		s.add(codeStructure, quote(f.shadowName)+" must be an object holding id and extensions, not "+describe(x))
	}
}

func (s *state) shadowObject(o *fhirjson.Object, f *field, hasValue bool) {
	if o == nil {
		s.add(codeStructure, "null is not allowed here: omit the element instead")
		return
	}
	s.object(o, f.prim.shadow, false)
	if _, ok := o.Get("extension"); !ok && !hasValue && len(o.Members) > 0 {
		s.add(codeStructure, quote(f.name)+" has neither a value nor extensions")
	}
}

// value checks one non-null value of element f.
func (s *state) value(f *field, v any) {
	if f.kind == kindPrimitive {
		s.primitive(f.prim, v)
		return
	}
	o, ok := v.(*fhirjson.Object)
	if !ok || o == nil {
		s.add(codeStructure, quote(f.name)+" must be a JSON object ("+f.typeName+"), not "+describe(v))
		return
	}
	if f.kind == kindResource {
		s.resource(o)
		return
	}
	s.object(o, f.node, false)
}

func (s *state) primitive(p *primitive, v any) {
	var text string
	switch x := v.(type) {
	case string:
		if p.json != jsonString {
			s.add(codeValue, p.name+" must be "+p.json.String()+", not a string")
			return
		}
		if x == "" {
			s.add(codeValue, "empty string: FHIR strings may not be empty; omit the element instead")
			return
		}
		if p.maxLength > 0 && len(x) > p.maxLength && utf8.RuneCountInString(x) > p.maxLength {
			s.add(codeValue, p.name+" is longer than "+strconv.Itoa(p.maxLength)+" characters")
			return
		}
		text = x
	case json.Number:
		if p.json != jsonNumber {
			s.add(codeValue, p.name+" must be "+p.json.String()+", not a number")
			return
		}
		text = string(x)
	case bool:
		if p.json != jsonBool {
			s.add(codeValue, p.name+" must be "+p.json.String()+", not true/false")
		}
		return
	case *fhirjson.Object, []any:
		s.add(codeStructure, p.name+" must be "+p.json.String()+", not "+describe(v))
		return
	default:
		s.add(codeValue, p.name+" must be "+p.json.String())
		return
	}
	if !p.check(text) {
		s.add(codeValue, quote(text)+" is not a valid "+p.name+": expected "+p.hint)
	}
}

func (k jsonKind) String() string {
	switch k {
	case jsonNumber:
		return "a JSON number"
	case jsonBool:
		return "JSON true or false"
	}
	return "a JSON string"
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true/false"
	case *fhirjson.Object:
		if x == nil {
			return "null"
		}
		return "an object"
	case []any:
		return "an array"
	case nil:
		return "null"
	}
	return "an unsupported value"
}

// quote quotes s for a message, shortened so a huge value cannot flood it.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

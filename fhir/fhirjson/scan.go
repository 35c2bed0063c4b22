package fhirjson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a recursive-descent JSON parser building the tree directly. It
// is several times faster than encoding/json's token API, which matters:
// every resource written or imported is parsed once.
type scanner struct {
	data  []byte
	pos   int
	depth int
	stack []string // member names and [i] of the location being parsed
}

func (s *scanner) fail(format string, args ...any) error {
	return &SyntaxError{Offset: int64(s.pos), Path: s.path(), Msg: "invalid JSON: " + fmt.Sprintf(format, args...)}
}

// path renders the location being parsed, built only when reporting an
// error so the common case allocates nothing for it.
func (s *scanner) path() string {
	var b []byte
	for _, seg := range s.stack {
		if len(b) > 0 && (seg == "" || seg[0] != '[') {
			b = append(b, '.')
		}
		b = append(b, seg...)
	}
	return string(b)
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value() (any, error) {
	s.skipSpace()
	if s.pos >= len(s.data) {
		return nil, s.fail("unexpected end of input")
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		return s.string()
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return nil, s.fail("unexpected character %q", c)
	}
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return &SyntaxError{Offset: int64(s.pos), Path: s.path(), Msg: "JSON nested too deeply"}
	}
	return nil
}

func (s *scanner) object() (*Object, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer func() { s.depth-- }()
	s.pos++ // {
	obj := &Object{}
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return obj, nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return nil, s.fail("expected a member name")
		}
		name, err := s.string()
		if err != nil {
			return nil, err
		}
		for _, m := range obj.Members {
			if m.Name == name {
				return nil, &SyntaxError{Offset: int64(s.pos), Path: s.path(), Msg: fmt.Sprintf("duplicate JSON member %q", name)}
			}
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, s.fail("expected ':' after member name %q", name)
		}
		s.pos++
		s.stack = append(s.stack, name)
		v, err := s.value()
		if err != nil {
			return nil, err
		}
		s.stack = s.stack[:len(s.stack)-1]
		obj.Members = append(obj.Members, Member{Name: name, Value: v})
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, s.fail("unexpected end of input in an object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return obj, nil
		default:
			return nil, s.fail("expected ',' or '}' in an object")
		}
	}
}

func (s *scanner) array() ([]any, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer func() { s.depth-- }()
	s.pos++ // [
	arr := []any{}
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return arr, nil
	}
	for {
		s.stack = append(s.stack, "["+strconv.Itoa(len(arr))+"]")
		v, err := s.value()
		if err != nil {
			return nil, err
		}
		s.stack = s.stack[:len(s.stack)-1]
		arr = append(arr, v)
		s.skipSpace()
		if s.pos >= len(s.data) {
			return nil, s.fail("unexpected end of input in an array")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return arr, nil
		default:
			return nil, s.fail("expected ',' or ']' in an array")
		}
	}
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.fail("unexpected characters (expected %s)", word)
	}
	s.pos += len(word)
	return nil
}

// number checks JSON number grammar and keeps the text as written.
func (s *scanner) number() (json.Number, error) {
	start := s.pos
	d := s.data
	if d[s.pos] == '-' {
		s.pos++
	}
	digits := func() int {
		n := 0
		for s.pos < len(d) && d[s.pos] >= '0' && d[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	intStart := s.pos
	if n := digits(); n == 0 || (n > 1 && d[intStart] == '0') {
		return "", s.fail("malformed number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return "", s.fail("malformed number")
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return "", s.fail("malformed number")
		}
	}
	return json.Number(d[start:s.pos]), nil
}

// string reads a JSON string; invalid UTF-8 is refused rather than
// silently replaced, so stored text is what the client meant.
func (s *scanner) string() (string, error) {
	s.pos++ // opening quote
	start := s.pos
	d := s.data
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			str := string(d[start:s.pos])
			s.pos++
			if !utf8.ValidString(str) {
				return "", s.fail("string is not valid UTF-8")
			}
			return str, nil
		case c == '\\':
			return s.escapedString(start)
		case c < 0x20:
			return "", s.fail("control character in a string")
		}
		s.pos++
	}
	return "", s.fail("unterminated string")
}

func (s *scanner) escapedString(start int) (string, error) {
	d := s.data
	buf := make([]byte, 0, s.pos-start+16)
	buf = append(buf, d[start:s.pos]...)
	for s.pos < len(d) {
		c := d[s.pos]
		switch {
		case c == '"':
			s.pos++
			if !utf8.Valid(buf) {
				return "", s.fail("string is not valid UTF-8")
			}
			return string(buf), nil
		case c < 0x20:
			return "", s.fail("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			s.pos++
			continue
		}
		s.pos++
		if s.pos >= len(d) {
			break
		}
		e := d[s.pos]
		s.pos++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", s.fail("malformed \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.pos+1 < len(d) && d[s.pos] == '\\' && d[s.pos+1] == 'u' {
					s.pos += 2
					if r2, ok = s.hex4(); !ok {
						return "", s.fail("malformed \\u escape")
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", s.fail("unknown escape \\%c", e)
		}
	}
	return "", s.fail("unterminated string")
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.data)-s.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.pos : s.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.pos += 4
	return r, true
}

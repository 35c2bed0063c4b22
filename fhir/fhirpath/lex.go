package fhirpath

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokVar   // $this, $index, $total
	tokExt   // %resource, %context, %`name`, %'name'
	tokPunct // operators and brackets
)

// token is one lexeme. For tokIdent, tokString, tokVar and tokExt, text is
// the decoded value (quotes, backticks and escapes removed).
type token struct {
	kind tokKind
	text string
	pos  int
	// quoted marks a backtick-delimited identifier, which is never a
	// keyword: `div` names an element, div is an operator.
	quoted bool
}

// Error is a malformed or unsupported expression, reported by Compile.
type Error struct {
	Expr string
	Pos  int // byte offset into Expr
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("fhirpath: %s (at offset %d of %q)", e.Msg, e.Pos, e.Expr)
}

// lex splits src into tokens, ending with tokEOF.
func lex(src string) ([]token, error) {
	var toks []token
	fail := func(pos int, format string, args ...any) ([]token, error) {
		return nil, &Error{Expr: src, Pos: pos, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return fail(i, "unterminated comment")
			}
			i += end + 4
		case isIdentStart(c):
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			toks = append(toks, token{kind: tokIdent, text: src[i:j], pos: i})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			// A dot makes a decimal only when a digit follows, so that
			// "1.exists()" would still read as an invocation on 1.
			if j+1 < len(src) && src[j] == '.' && isDigit(src[j+1]) {
				j += 2
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], pos: i})
			i = j
		case c == '\'' || c == '`':
			s, n, err := unquote(src[i:], c)
			if err != nil {
				return fail(i, "%s", err)
			}
			kind := tokString
			if c == '`' {
				kind = tokIdent
				if s == "" {
					return fail(i, "empty identifier")
				}
			}
			toks = append(toks, token{kind: kind, text: s, pos: i, quoted: c == '`'})
			i += n
		case c == '$':
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return fail(i, "expected a name after $")
			}
			toks = append(toks, token{kind: tokVar, text: src[i+1 : j], pos: i})
			i = j
		case c == '%':
			if i+1 < len(src) && (src[i+1] == '\'' || src[i+1] == '`') {
				s, n, err := unquote(src[i+1:], src[i+1])
				if err != nil {
					return fail(i, "%s", err)
				}
				if s == "" {
					return fail(i, "empty name after %%")
				}
				toks = append(toks, token{kind: tokExt, text: s, pos: i})
				i += 1 + n
				continue
			}
			j := i + 1
			for j < len(src) && isIdentPart(src[j]) {
				j++
			}
			if j == i+1 {
				return fail(i, "expected a name after %%")
			}
			toks = append(toks, token{kind: tokExt, text: src[i+1 : j], pos: i})
			i = j
		default:
			op := punct(src[i:])
			if op == "" {
				r, _ := utf8.DecodeRuneInString(src[i:])
				return fail(i, "unexpected character %q", r)
			}
			toks = append(toks, token{kind: tokPunct, text: op, pos: i})
			i += len(op)
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(src)}), nil
}

// punct returns the operator or bracket that s starts with, longest first.
func punct(s string) string {
	if len(s) >= 2 {
		switch s[:2] {
		case "!=", "!~", "<=", ">=":
			return s[:2]
		}
	}
	switch s[0] {
	case '.', '(', ')', '[', ']', '{', '}', ',', '|', '=', '~', '<', '>', '+', '-', '*', '/', '&', '@':
		return s[:1]
	}
	return ""
}

// unquote decodes a literal delimited by q ('…' or `…`) at the start of s,
// returning the value and the number of bytes consumed.
func unquote(s string, q byte) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c != '\\':
			b.WriteByte(c)
		case i+1 >= len(s):
			return "", 0, fmt.Errorf("unterminated literal")
		default:
			i++
			switch e := s[i]; e {
			case '\'', '"', '`', '\\', '/':
				b.WriteByte(e)
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if i+4 >= len(s) {
					return "", 0, fmt.Errorf("short \\u escape")
				}
				var r rune
				for _, h := range []byte(s[i+1 : i+5]) {
					d := hexVal(h)
					if d < 0 {
						return "", 0, fmt.Errorf("bad \\u escape")
					}
					r = r<<4 | rune(d)
				}
				b.WriteRune(r)
				i += 4
			default:
				return "", 0, fmt.Errorf("unknown escape \\%c", e)
			}
		}
	}
	return "", 0, fmt.Errorf("unterminated literal")
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

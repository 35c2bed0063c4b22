package validate

import "strings"

// checkers are hand-written equivalents of the R4 primitive regexes in the
// element table: matching a regex costs a few hundred nanoseconds, and a
// resource holds dozens of primitives. TestCheckersAgreeWithDefinitionRegex
// holds each one to its regex. The date forms are also checked against the
// calendar (no 2023-02-30), which the regexes cannot express.
var checkers = map[string]struct {
	check func(string) bool
	hint  string
}{
	"string":       {isString, "a non-empty string"},
	"markdown":     {isString, "non-empty markdown"},
	"code":         {isCode, "a code: no leading, trailing or repeated whitespace"},
	"id":           {isID, "an id: 1 to 64 of A-Z, a-z, 0-9, '-' and '.'"},
	"uri":          {isURI, "a URI without whitespace"},
	"url":          {isURI, "a URL without whitespace"},
	"canonical":    {isURI, "a canonical URL without whitespace"},
	"oid":          {isOID, "an OID like urn:oid:1.2.3"},
	"uuid":         {isUUID, "a lowercase UUID like urn:uuid:c757873d-ec9a-4326-a141-556f43239520"},
	"base64Binary": {isBase64, "base64 data"},
	"boolean":      {func(s string) bool { return s == "true" || s == "false" }, "true or false"},
	"integer":      {isInteger, "a whole number from -2147483648 to 2147483647"},
	"positiveInt":  {isPositiveInt, "a whole number from 1 to 2147483647"},
	"unsignedInt":  {isUnsignedInt, "a whole number from 0 to 2147483647"},
	"decimal":      {isDecimal, "a decimal number"},
	"date":         {isDate, "a date: YYYY, YYYY-MM or YYYY-MM-DD"},
	"dateTime":     {isDateTime, "a dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a time zone (Z or ±hh:mm)"},
	"instant":      {isInstant, "an instant: YYYY-MM-DDThh:mm:ss[.fff] with a time zone (Z or ±hh:mm)"},
	"time":         {isTime, "a time: hh:mm:ss[.fff]"},
	"xhtml":        {isXHTML, "an XHTML <div> element"},
}

// isSpace is the \s of the definitions' regexes (RE2 syntax).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isString is [ \r\n\t\S]+: any text but a form feed.
func isString(s string) bool { return s != "" && strings.IndexByte(s, '\f') < 0 }

// isCode is [^\s]+(\s[^\s]+)*.
func isCode(s string) bool {
	if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if isSpace(s[i]) && isSpace(s[i-1]) {
			return false
		}
	}
	return true
}

// isID is [A-Za-z0-9\-\.]{1,64}.
func isID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isURI is \S*, non-empty as every JSON primitive must be.
func isURI(s string) bool {
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return false
		}
	}
	return s != ""
}

// isOID is urn:oid:[0-2](\.(0|[1-9][0-9]*))+.
func isOID(s string) bool {
	rest, ok := strings.CutPrefix(s, "urn:oid:")
	if !ok || len(rest) < 3 || rest[0] < '0' || rest[0] > '2' {
		return false
	}
	arcs := strings.Split(rest[1:], ".")
	if arcs[0] != "" { // rest[1] must be the first dot
		return false
	}
	for _, a := range arcs[1:] {
		if a == "" || !allDigits(a) || (a[0] == '0' && len(a) > 1) {
			return false
		}
	}
	return true
}

// isUUID is urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}.
func isUUID(s string) bool {
	rest, ok := strings.CutPrefix(s, "urn:uuid:")
	if !ok || len(rest) != 36 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(isDigit(c) || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isBase64 is (\s*([0-9a-zA-Z\+/=]){4}\s*)+: whitespace may only fall
// between groups of four characters.
func isBase64(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isSpace(c):
			if n%4 != 0 {
				return false
			}
		case isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '+' || c == '/' || c == '=':
			n++
		default:
			return false
		}
	}
	return n > 0 && n%4 == 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isInteger is -?([0]|([1-9][0-9]*)) within 32 bits.
func isInteger(s string) bool {
	if neg, ok := strings.CutPrefix(s, "-"); ok {
		return isWhole(neg, 2147483648)
	}
	return isWhole(s, 2147483647)
}

// isPositiveInt is [1-9][0-9]* up to 2147483647.
func isPositiveInt(s string) bool { return s != "0" && isWhole(s, 2147483647) }

// isUnsignedInt is [0]|([1-9][0-9]*) up to 2147483647.
func isUnsignedInt(s string) bool { return isWhole(s, 2147483647) }

// isWhole reports whether s is 0 or digits without a leading zero, at most max.
func isWhole(s string, max int64) bool {
	if s == "" || len(s) > 10 || !allDigits(s) || (s[0] == '0' && len(s) > 1) {
		return false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		v = v*10 + int64(s[i]-'0')
	}
	return v <= max
}

// isDecimal is -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 || (s[0] == '0' && i > 1) {
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) {
			return false
		}
		return allDigits(s[i:])
	}
	return i == len(s)
}

func isXHTML(s string) bool { return strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "<div") }

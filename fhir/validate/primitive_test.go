package validate

import (
	"regexp"
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/schema"
)

// samples are tried against every primitive, so each checker meets the
// near misses of the other types too.
var samples = []string{
	"", "a", "abc", " a", "a ", "a  b", "a b", "a\tb", "a\fb", "a\nb", "a\vb", "ünïcødé", "a_b", "a-b.c",
	strings.Repeat("a", 64), strings.Repeat("a", 65), "<div>x</div>",
	"true", "false", "True",
	"0", "-0", "00", "01", "1", "-1", "+1", "1.5", "1.", ".5", "-.5", "1e5", "1E-5", "1e", "1e+", "-1.50e+10", "0.0", "00.1",
	"2147483647", "2147483648", "-2147483648", "-2147483649", "99999999999",
	"2020", "0000", "0001", "1000", "0100", "0010", "202", "2020-", "2020-1", "2020-01", "2020-13", "2020-00", "2020-01-",
	"2020-01-01", "2020-02-29", "2021-02-29", "1900-02-29", "2000-02-29", "2020-04-31", "2020-01-32", "2020-01-00", "2020-01-1",
	"2020-01-01T10:00:00Z", "2020-01-01T10:00:00", "2020-01-01T10:00Z", "2020-01-01T24:00:00Z", "2020-01-01T23:59:60.123+14:00",
	"2020-01-01T10:00:00+14:01", "2020-01-01T10:00:00-13:59", "2020-01-01T10:00:00+1300", "2020-01-01T10:00:00.Z",
	"2020-01T10:00:00Z", "2020T10:00:00Z", "2020-01-01T10:00:00Zjunk", "2020-01-01 10:00:00Z", "2021-02-29T10:00:00Z",
	"10:00:00", "10:00:00.5", "10:00", "24:00:00", "10:60:00", "10:00:61", "10:00:00Z", "1:00:00",
	"urn:oid:1.2.3", "urn:oid:3.1", "urn:oid:1", "urn:oid:1.", "urn:oid:1.02", "urn:oid:1.0", "urn:oid:1..2", "urn:oid:12.3", "urn:oid:2.999",
	"urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "urn:uuid:C757873D-ec9a-4326-a141-556f43239520",
	"urn:uuid:c757873d-ec9a-4326-a141-556f4323952", "urn:uuid:c757873dxec9a-4326-a141-556f43239520", "c757873d-ec9a-4326-a141-556f43239520",
	"http://x.org/a?b=c", "http://x y", "urn:x:y",
	"aGVsbG8=", "aGVs bG8=", "aGV sbG8=", "aGVsbG8", " aGVsbG8= ", "aGVs\nbG8=", "aGVs\r\n\r\nbG8=", "====", "aGV-bG8=",
}

// stricter lists where a checker deliberately rejects what the regex
// accepts: days missing from the calendar, integers beyond 32 bits, and
// empty URIs (no JSON primitive may be empty).
var stricter = map[string][]string{
	"date":        {"2021-02-29", "1900-02-29", "2020-04-31"},
	"dateTime":    {"2021-02-29", "1900-02-29", "2020-04-31", "2021-02-29T10:00:00Z"},
	"instant":     {"2021-02-29T10:00:00Z"},
	"integer":     {"2147483648", "-2147483649", "99999999999"},
	"positiveInt": {"2147483648", "99999999999"},
	"unsignedInt": {"2147483648", "99999999999"},
	"uri":         {""},
	"url":         {""},
	"canonical":   {""},
}

func TestCheckersAgreeWithDefinitionRegex(t *testing.T) {
	for _, ty := range schema.R4().Types {
		if ty.Kind != "primitive-type" || ty.Regex == "" {
			continue
		}
		t.Run(ty.Name, func(t *testing.T) {
			c, ok := checkers[ty.Name]
			if !ok {
				t.Fatalf("no checker for %s", ty.Name)
			}
			re := regexp.MustCompile(`^(?:` + ty.Regex + `)$`)
			for _, s := range samples {
				reOK, got := re.MatchString(s), c.check(s)
				want := reOK && !contains(stricter[ty.Name], s)
				if got != want {
					t.Errorf("check(%q) = %v, want %v (regex %v)", s, got, want, reOK)
				}
			}
			for _, s := range stricter[ty.Name] {
				if !re.MatchString(s) || !contains(samples, s) {
					t.Errorf("%q is listed as stricter but the regex rejects it or it is not sampled", s)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestEveryR4PrimitiveHasAChecker(t *testing.T) {
	for _, ty := range schema.R4().Types {
		if _, ok := checkers[ty.Name]; ty.Kind == "primitive-type" && !ok {
			t.Errorf("primitive %s would fall back to its regex", ty.Name)
		}
	}
}

func TestPrimitiveWithoutCheckerUsesItsRegex(t *testing.T) {
	p, err := newPrimitive(&schema.Type{Name: "madeUp", Kind: "primitive-type", JSON: "string", Regex: "[a-c]+|x"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in   string
		want bool
	}{{"abc", true}, {"x", true}, {"abd", false}, {"abcx", false}}
	for _, tt := range tests {
		if got := p.check(tt.in); got != tt.want {
			t.Errorf("check(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if _, err := newPrimitive(&schema.Type{Name: "broken", JSON: "string", Regex: "("}); err == nil {
		t.Error("a regex that does not compile was accepted")
	}
}

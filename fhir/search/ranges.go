package search

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Dates and numbers are indexed as ranges [low, high] of order-preserving
// strings, so both engines compare them with plain string comparisons on
// an index. A FHIR date is a range by nature: "2024" is all of 2024, and
// a search for it must follow the spec's range rules.

// instantLayout has a fixed width so strings order as the instants do.
const instantLayout = "2006-01-02T15:04:05.000Z"

// MinInstant and MaxInstant stand for an open end of a period.
const (
	MinInstant = "0001-01-01T00:00:00.000Z"
	MaxInstant = "9999-12-31T23:59:59.999Z"
)

// DateRange returns the instants a FHIR date, dateTime or instant covers at
// the precision given: "2024-03" covers all of March 2024. Values without a
// time zone are taken as UTC.
func DateRange(s string) (low, high string, err error) {
	t, prec, err := parseDate(s)
	if err != nil {
		return "", "", err
	}
	var end time.Time
	switch prec {
	case precYear:
		end = t.AddDate(1, 0, 0)
	case precMonth:
		end = t.AddDate(0, 1, 0)
	case precDay:
		end = t.AddDate(0, 0, 1)
	case precMinute:
		end = t.Add(time.Minute)
	case precSecond:
		end = t.Add(time.Second)
	default:
		end = t.Add(time.Millisecond)
	}
	return formatInstant(t), formatInstant(end.Add(-time.Millisecond)), nil
}

func formatInstant(t time.Time) string {
	t = t.UTC()
	if t.Year() < 1 {
		return MinInstant
	}
	if t.Year() > 9999 {
		return MaxInstant
	}
	return t.Format(instantLayout)
}

type precision int

const (
	precYear precision = iota
	precMonth
	precDay
	precMinute
	precSecond
	precMilli
)

// parseDate reads the FHIR date/dateTime/instant forms and tells the
// precision written.
func parseDate(s string) (time.Time, precision, error) {
	bad := func() (time.Time, precision, error) {
		return time.Time{}, 0, fmt.Errorf("%q is not a FHIR date, dateTime or instant", s)
	}
	switch len(s) {
	case 4:
		t, err := time.Parse("2006", s)
		if err != nil {
			return bad()
		}
		return t, precYear, nil
	case 7:
		t, err := time.Parse("2006-01", s)
		if err != nil {
			return bad()
		}
		return t, precMonth, nil
	case 10:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return bad()
		}
		return t, precDay, nil
	}
	if len(s) < 16 || s[10] != 'T' {
		return bad()
	}
	date, clock := s[:10], s[11:]
	zone := ""
	if i := strings.IndexAny(clock, "Z+-"); i >= 0 {
		clock, zone = clock[:i], clock[i:]
	}
	if zone == "" {
		zone = "Z"
	}
	var layout string
	var prec precision
	switch {
	case len(clock) == 5:
		layout, prec = "15:04", precMinute
	case len(clock) == 8:
		layout, prec = "15:04:05", precSecond
	case len(clock) > 9 && clock[8] == '.':
		layout, prec = "15:04:05."+strings.Repeat("0", len(clock)-9), precMilli
	default:
		return bad()
	}
	zoneLayout := "Z07:00"
	t, err := time.Parse("2006-01-02T"+layout+zoneLayout, date+"T"+clock+zone)
	if err != nil {
		return bad()
	}
	return t, prec, nil
}

// EncodeNumber maps a float64 to a fixed-width string that orders as the
// numbers do (negative numbers included).
func EncodeNumber(f float64) string {
	bits := math.Float64bits(f)
	if f >= 0 {
		bits ^= 1 << 63
	} else {
		bits = ^bits
	}
	s := strconv.FormatUint(bits, 16)
	return strings.Repeat("0", 16-len(s)) + s
}

// NumberRange is the implicit range of a decimal as written: "100" means
// [99.5, 100.5] and "100.00" means [99.995, 100.005] (FHIR R4 search,
// number). Exponent forms widen by their significant digits the same way.
func NumberRange(s string) (low, high float64, err error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, 0, fmt.Errorf("%q is not a number", s)
	}
	mant := strings.ToLower(s)
	exp := 0
	if i := strings.IndexByte(mant, 'e'); i >= 0 {
		exp, err = strconv.Atoi(mant[i+1:])
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not a number", s)
		}
		mant = mant[:i]
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return v - half, v + half, nil
}

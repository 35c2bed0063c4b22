package validate

// The R4 date and time forms, as their regexes in the element table define
// them, plus the calendar: a day must exist in its month.

func isDate(s string) bool {
	n, _, ok := datePrefix(s)
	return ok && n == len(s)
}

// isDateTime is a date, or a full date with a time and a time zone.
func isDateTime(s string) bool {
	n, parts, ok := datePrefix(s)
	if !ok || n == len(s) {
		return ok
	}
	return parts == 3 && s[n] == 'T' && isTimeWithZone(s[n+1:])
}

func isInstant(s string) bool {
	n, parts, ok := datePrefix(s)
	return ok && parts == 3 && n < len(s) && s[n] == 'T' && isTimeWithZone(s[n+1:])
}

func isTime(s string) bool {
	n, ok := timePrefix(s)
	return ok && n == len(s)
}

func isTimeWithZone(s string) bool {
	n, ok := timePrefix(s)
	return ok && isZone(s[n:])
}

// datePrefix reads YYYY, YYYY-MM or YYYY-MM-DD at the start of s and
// returns its length and how many parts it had.
func datePrefix(s string) (n, parts int, ok bool) {
	if len(s) < 4 || !allDigits(s[:4]) || s[:4] == "0000" {
		return 0, 0, false
	}
	if len(s) == 4 || s[4] != '-' {
		return 4, 1, true
	}
	month, ok := twoDigits(s, 5)
	if !ok || month < 1 || month > 12 {
		return 0, 0, false
	}
	if len(s) == 7 || s[7] != '-' {
		return 7, 2, true
	}
	day, ok := twoDigits(s, 8)
	if !ok || day < 1 || day > daysIn(month, year(s)) {
		return 0, 0, false
	}
	return 10, 3, true
}

// timePrefix reads hh:mm:ss with optional fraction at the start of s.
func timePrefix(s string) (int, bool) {
	h, ok1 := twoDigits(s, 0)
	m, ok2 := twoDigits(s, 3)
	sec, ok3 := twoDigits(s, 6)
	if !ok1 || !ok2 || !ok3 || s[2] != ':' || s[5] != ':' || h > 23 || m > 59 || sec > 60 {
		return 0, false
	}
	n := 8
	if n < len(s) && s[n] == '.' {
		n++
		start := n
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		if n == start {
			return 0, false
		}
	}
	return n, true
}

// isZone is Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00).
func isZone(s string) bool {
	if s == "Z" {
		return true
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return false
	}
	h, ok1 := twoDigits(s, 1)
	m, ok2 := twoDigits(s, 4)
	return ok1 && ok2 && (h <= 13 && m <= 59 || h == 14 && m == 0)
}

func twoDigits(s string, at int) (int, bool) {
	if at+2 > len(s) || !isDigit(s[at]) || !isDigit(s[at+1]) {
		return 0, false
	}
	return int(s[at]-'0')*10 + int(s[at+1]-'0'), true
}

func year(s string) int {
	return int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

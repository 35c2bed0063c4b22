package portal

import (
	_ "embed"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

//go:embed common-passwords.txt
var commonText string

var common = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonText, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			m[l] = true
		}
	}
	return m
}()

const maxPasswordLen = 256

// passwordProblem says what is wrong with a new password, or "" when it
// meets the policy: at least 8 characters, a capital letter, a special
// character, and not one of the most common passwords.
func passwordProblem(pw, email string) string {
	switch {
	case utf8.RuneCountInString(pw) < 8:
		return "Use at least 8 characters."
	case len(pw) > maxPasswordLen:
		return "Use at most 256 characters."
	case !utf8.ValidString(pw) || strings.IndexFunc(pw, unicode.IsControl) >= 0:
		return "Use only printable characters."
	case strings.IndexFunc(pw, unicode.IsUpper) < 0:
		return "Include at least one capital letter (A to Z)."
	case strings.IndexFunc(pw, func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) && !unicode.IsSpace(c) }) < 0:
		return "Include at least one special character, such as ! ? # or -."
	case isCommon(pw):
		return "This password is one of the most common ones. Choose one that is harder to guess."
	case email != "" && strings.EqualFold(pw, email):
		return "Do not use your email address as your password."
	}
	return ""
}

var unleet = strings.NewReplacer("@", "a", "4", "a", "0", "o", "1", "i", "!", "i", "3", "e", "$", "s", "5", "s", "7", "t")

// isCommon reports whether pw is a common password dressed up: its
// trailing digits and symbols dropped, letter-for-symbol swaps undone.
func isCommon(pw string) bool {
	s := strings.ToLower(pw)
	core := strings.TrimRightFunc(s, func(c rune) bool { return !unicode.IsLetter(c) })
	for _, cand := range []string{s, core, unleet.Replace(core), strings.TrimRightFunc(unleet.Replace(s), func(c rune) bool { return !unicode.IsLetter(c) })} {
		if common[cand] {
			return true
		}
	}
	return false
}

// normalizeEmail is the form emails are kept and compared in.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// emailProblem says what is wrong with an email address, or "".
func emailProblem(s string) string {
	a, err := mail.ParseAddress(s)
	switch {
	case s == "":
		return "Enter your email address."
	case len(s) > 254 || err != nil || a.Address != s || a.Name != "":
		return "Enter an email address like name@example.org."
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "Enter an email address like name@example.org."
	}
	return ""
}

const maxTextLen = 200

// textProblem says what is wrong with a required line of text named what,
// or "".
func textProblem(s, what string) string {
	switch {
	case s == "":
		return "Enter " + what + "."
	case !utf8.ValidString(s) || strings.IndexFunc(s, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0:
		return "Use only printable characters."
	case utf8.RuneCountInString(s) > maxTextLen:
		return "Use at most 200 characters."
	}
	return ""
}

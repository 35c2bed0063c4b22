// Package scope parses SMART on FHIR scopes, both SMART App Launch 1.0
// (patient/Observation.read) and 2.0 (patient/Observation.rs, granular
// patient/Observation.rs?category=…), as defined in SMART App Launch 2.0,
// "Scopes and Launch Context". It says what a scope string means; package
// authz/policy decides what a token holding it may do.
//
// Values of this package are immutable once parsed: a Scope or Set may be
// shared between goroutines (Cache does), and callers must not modify the
// slices and url.Values they expose.
package scope

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/fhirgraph/fhirgraph/schema"
)

// Kind says what a scope asks for.
type Kind uint8

const (
	// Other is any scope this package does not define (email,
	// https://example.org/custom, launch/diagnosticreport): kept, shown
	// back, and ignored for FHIR access.
	Other Kind = iota
	// Resource is a FHIR resource scope: patient/, user/ or system/.
	Resource
	Launch          // launch: EHR launch context
	LaunchPatient   // launch/patient
	LaunchEncounter // launch/encounter
	OpenID          // openid
	FHIRUser        // fhirUser
	Profile         // profile (SMART 1.0's fhirUser)
	OfflineAccess   // offline_access
	OnlineAccess    // online_access
)

// fixed holds the scopes whose whole text is the scope.
var fixed = map[string]Kind{
	"launch":           Launch,
	"launch/patient":   LaunchPatient,
	"launch/encounter": LaunchEncounter,
	"openid":           OpenID,
	"fhirUser":         FHIRUser,
	"profile":          Profile,
	"offline_access":   OfflineAccess,
	"online_access":    OnlineAccess,
}

// Context is whose data a resource scope reaches.
type Context uint8

const (
	// NoContext is the Context of scopes that are not resource scopes.
	NoContext Context = iota
	Patient           // patient/: the patient in context
	User              // user/: what the user may see
	System            // system/: what the client itself may see (backend services)
)

var contextNames = [...]string{NoContext: "", Patient: "patient", User: "user", System: "system"}

// String returns the scope prefix without its slash: "patient", "user",
// "system"; "" for NoContext.
func (c Context) String() string {
	if int(c) < len(contextNames) {
		return contextNames[c]
	}
	return fmt.Sprintf("Context(%d)", uint8(c))
}

// Version is the SMART App Launch version a resource scope is written in.
type Version uint8

const (
	NoVersion Version = iota // not a resource scope, or a Set without one
	V1                       // .read, .write, .*
	V2                       // ordered subset of .cruds
)

func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	}
	return ""
}

// Interactions is a set of SMART v2 permission letters.
type Interactions uint8

const (
	Create Interactions = 1 << iota // c
	Read                            // r: read, vread, instance history
	Update                          // u: update, patch
	Delete                          // d
	Search                          // s: search, type and system history

	// All is cruds.
	All = Create | Read | Update | Delete | Search
)

// letters is the order SMART v2 requires.
const letters = "cruds"

// Letter returns the Interactions of one v2 letter (c, r, u, d or s), and
// false for any other byte.
func Letter(b byte) (Interactions, bool) {
	i := strings.IndexByte(letters, b)
	if i < 0 {
		return 0, false
	}
	return 1 << i, true
}

// String returns the letters in SMART order ("rs", "cruds"); "" for none.
func (in Interactions) String() string {
	var b strings.Builder
	for i := range len(letters) {
		if in&(1<<i) != 0 {
			b.WriteByte(letters[i])
		}
	}
	return b.String()
}

// Has reports whether in holds every interaction of other.
func (in Interactions) Has(other Interactions) bool { return in&other == other }

// v1Permissions is SMART 2.0's reading of the 1.0 permission words
// ("v1 .read ⇒ v2 .rs, v1 .write ⇒ v2 .cud, v1 .* ⇒ v2 .cruds"). The
// policy's g2 lines repeat it for the Casbin decision; a policy test keeps
// the two equal.
var v1Permissions = map[string]Interactions{
	"read":  Read | Search,
	"write": Create | Update | Delete,
	"*":     All,
}

// V1Permission returns what a SMART v1 permission word ("read", "write",
// "*") grants, and false for any other word.
func V1Permission(word string) (Interactions, bool) {
	in, ok := v1Permissions[word]
	return in, ok
}

// Scope is one parsed scope. The zero Scope is an empty Other.
type Scope struct {
	Kind Kind
	// The fields below are set for Resource scopes only.
	Context Context
	// Type is the resource type, or "*" for every type.
	Type    string
	Version Version
	// Permission is the permission as written: a v1 word ("read",
	// "write", "*") or v2 letters ("rs").
	Permission string
	// Interactions is what Permission grants, as v2 letters (v1 read is
	// rs).
	Interactions Interactions
	// Query is the v2 granular restriction (?category=…): a resource is
	// covered when it matches every parameter, as in a FHIR search. Nil
	// when the scope has none; never empty otherwise.
	Query url.Values

	// text is the scope as written, for Other scopes.
	text string
}

// Error reports a scope that is not well formed. Every error of Parse and
// ParseScope is an *Error; token endpoints answer it with invalid_scope
// and may show Error() to the client.
type Error struct {
	Scope  string // the offending scope, or the whole string for set-level errors
	Reason string
	// Err is ErrMixedVersions for a set mixing SMART v1 and v2, else nil.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("scope %q: %s", e.Scope, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrMixedVersions is wrapped by the Error of a Set holding both SMART v1
// and v2 resource scopes, which a client may never do.
var ErrMixedVersions = errors.New("SMART v1 and v2 scopes mixed")

// ParseScope parses one scope. Scopes it does not define come back as
// Other; malformed patient/, user/ and system/ scopes, and FHIR resource
// scopes with another context (practitioner/Observation.read), are an
// *Error saying what is wrong.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, &Error{Scope: s, Reason: "empty scope"}
	}
	for i := range len(s) {
		if !nqchar(s[i]) {
			return Scope{}, &Error{Scope: s, Reason: fmt.Sprintf("character %q is not allowed in a scope (RFC 6749 §3.3)", s[i])}
		}
	}
	if k, ok := fixed[s]; ok {
		return Scope{Kind: k}, nil
	}
	prefix, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Scope{Kind: Other, text: s}, nil
	}
	var ctx Context
	switch prefix {
	case "patient":
		ctx = Patient
	case "user":
		ctx = User
	case "system":
		ctx = System
	default:
		if prefix != "launch" && isLetters(prefix) && looksLikeResource(rest) {
			return Scope{}, &Error{Scope: s, Reason: fmt.Sprintf("unknown context %q: want patient, user or system", prefix)}
		}
		return Scope{Kind: Other, text: s}, nil
	}
	sc, reason := parseResource(ctx, rest)
	if reason != "" {
		return Scope{}, &Error{Scope: s, Reason: reason}
	}
	return sc, nil
}

// parseResource parses what follows "patient/" (or user/, system/) and
// returns the reason it is malformed, if it is.
func parseResource(ctx Context, rest string) (Scope, string) {
	body, query, hasQuery := strings.Cut(rest, "?")
	typ, perm, ok := strings.Cut(body, ".")
	switch {
	case typ == "":
		return Scope{}, "empty resource type: want a FHIR resource type or *"
	case !ok:
		return Scope{}, "no permissions: want .rs, .cruds, … (SMART v2) or .read, .write, .* (SMART v1) after the resource type"
	case typ != "*" && !resourceTypes()[typ]:
		return Scope{}, fmt.Sprintf("unknown resource type %q", typ)
	case perm == "":
		return Scope{}, "empty permissions after the dot"
	}
	sc := Scope{Kind: Resource, Context: ctx, Type: typ, Permission: perm}
	if in, ok := v1Permissions[perm]; ok {
		sc.Version, sc.Interactions = V1, in
	} else {
		in, reason := parseLetters(perm)
		if reason != "" {
			return Scope{}, reason
		}
		sc.Version, sc.Interactions = V2, in
	}
	if !hasQuery {
		return sc, ""
	}
	if sc.Version == V1 {
		return Scope{}, "a granular query (?…) needs SMART v2 permissions (.rs, …), not ." + perm
	}
	q, reason := parseQuery(query)
	if reason != "" {
		return Scope{}, reason
	}
	sc.Query = q
	return sc, ""
}

func parseLetters(perm string) (Interactions, string) {
	var in Interactions
	last := -1
	for i := range len(perm) {
		at := strings.IndexByte(letters, perm[i])
		if at < 0 {
			return 0, fmt.Sprintf("permissions %q: %q is not a permission; want read, write, * (SMART v1) or an ordered subset of cruds (SMART v2)", perm, perm[i])
		}
		if at <= last {
			return 0, fmt.Sprintf("permissions %q: letters must be in the order c, r, u, d, s, each at most once", perm)
		}
		last = at
		in |= 1 << at
	}
	return in, ""
}

func parseQuery(query string) (url.Values, string) {
	if query == "" {
		return nil, "empty query after ?: want param=value pairs separated by &"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, "query: " + err.Error()
	}
	for _, part := range strings.Split(query, "&") {
		name, value, _ := strings.Cut(part, "=")
		switch {
		case name == "":
			return nil, fmt.Sprintf("query: parameter %q has no name", part)
		case value == "":
			return nil, fmt.Sprintf("query: parameter %q has no value", name)
		}
	}
	// Repeated parameters AND, so their order means nothing; sorted, equal
	// queries compare equal.
	for _, vs := range q {
		sort.Strings(vs)
	}
	return q, ""
}

// nqchar reports whether b may appear in a scope token (RFC 6749 §3.3:
// %x21 / %x23-5B / %x5D-7E).
func nqchar(b byte) bool {
	return b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)
}

func isLetters(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// looksLikeResource reports whether rest reads as "Type.perm" or "*.perm",
// so that a scope with an unknown context is reported rather than kept as
// Other.
func looksLikeResource(rest string) bool {
	if rest == "" || !strings.Contains(rest, ".") {
		return false
	}
	return rest[0] == '*' || (rest[0] >= 'A' && rest[0] <= 'Z')
}

var resourceTypes = sync.OnceValue(func() map[string]bool {
	m := make(map[string]bool)
	for _, t := range schema.R4().ResourceTypes {
		m[t] = true
	}
	return m
})

// String returns the canonical form of the scope: resource scopes with
// their permission as written (v1 words stay v1, as SMART 2.0 asks servers
// to answer) and their query with parameters sorted; Other scopes as
// given.
func (sc Scope) String() string {
	switch sc.Kind {
	case Other:
		return sc.text
	case Resource:
		s := sc.Context.String() + "/" + sc.Type + "." + sc.Permission
		if sc.Query != nil {
			s += "?" + encodeQuery(sc.Query)
		}
		return s
	}
	if int(sc.Kind) < len(kindText) {
		return kindText[sc.Kind]
	}
	return ""
}

// kindText is fixed, inverted.
var kindText = func() []string {
	t := make([]string, OnlineAccess+1)
	for text, k := range fixed {
		t[k] = text
	}
	return t
}()

// CoversType reports whether a resource scope reaches resources of typ.
func (sc Scope) CoversType(typ string) bool {
	return sc.Kind == Resource && (sc.Type == "*" || sc.Type == typ)
}

// encodeQuery writes q with names sorted (values are sorted by
// parseQuery), escaping only what ParseQuery would read differently, so
// system|code stays readable.
func encodeQuery(q url.Values) string {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		for _, v := range q[n] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			escape(&b, n)
			b.WriteByte('=')
			escape(&b, v)
		}
	}
	return b.String()
}

func escape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := range len(s) {
		c := s[i]
		if nqchar(c) && !strings.ContainsRune("%&+;=#?", rune(c)) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

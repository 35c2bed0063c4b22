package policy

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/fhirgraph/fhirgraph/authz/scope"
)

// Interaction is a FHIR REST interaction, named as in the R4
// CapabilityStatement (read, search-type, …). The policy's g lines say
// which SMART letter each needs.
type Interaction string

const (
	Read              Interaction = "read"
	VRead             Interaction = "vread"
	HistoryInstance   Interaction = "history-instance"
	HistoryType       Interaction = "history-type"
	HistorySystem     Interaction = "history-system"
	SearchType        Interaction = "search-type"
	SearchCompartment Interaction = "search-compartment"
	SearchSystem      Interaction = "search-system"
	Create            Interaction = "create"
	Update            Interaction = "update"
	Patch             Interaction = "patch"
	Delete            Interaction = "delete"
)

// UserKind is the kind of user a token acts for.
type UserKind string

const (
	// NoUser: the client acts for itself (SMART Backend Services,
	// client_credentials). Only such clients use system/ scopes.
	NoUser       UserKind = ""
	PatientUser  UserKind = "patient"
	Practitioner UserKind = "practitioner"
	Staff        UserKind = "staff"
)

// User is the user a token acts for.
type User struct {
	Kind UserKind
	// Patient is a patient user's own Patient id: user/ scopes of a
	// patient user reach that patient's compartment.
	Patient string
	// Practices are the practices a practitioner or staff user is a
	// member of.
	Practices []string
}

// Input is what a decision depends on: the token's claims and the request.
type Input struct {
	// Scopes are the token's granted scopes.
	Scopes scope.Set
	// LaunchPatient is the id of the patient in context (the token's
	// patient claim); patient/ scopes reach that patient's compartment and
	// nothing without one.
	LaunchPatient string
	User          User
	// ClientPractices are the practices that consented to the client.
	ClientPractices []string

	Interaction Interaction
	// Type is the resource type the interaction reads or writes. A
	// system-level search or history reaches several types: ask once per
	// type, as for the types of _include and _revinclude.
	Type string
}

// Decision is the answer to one Input.
type Decision struct {
	Allowed bool
	// Reason says why not, in words fit for a 403 OperationOutcome; empty
	// when Allowed.
	Reason string
	// Grants, when Allowed, are the alternative ways the token reaches
	// resources of the type: a resource is within the token's reach when
	// it matches at least one Grant. Never empty when Allowed; no Grant is
	// within another.
	Grants []Grant
}

// Grant is one way a token reaches resources; every filter it sets must
// hold. Its zero value reaches every resource of the type.
type Grant struct {
	// Compartment, when set ("Patient/123"), keeps resources in that
	// patient's compartment (R4 Patient CompartmentDefinition).
	Compartment string
	// Practices, when non-nil, keeps resources owned by one of them; it is
	// never empty when non-nil.
	Practices []string
	// Query, when non-nil, keeps resources matching every parameter, as a
	// FHIR search on the type would (a v2 granular scope). Shared with the
	// scope Set: callers must not modify it.
	Query url.Values
}

// Decide answers whether the token of in may do in.Interaction on
// in.Type, and with which filters. A denial is a Decision with Allowed
// false and a Reason; an error means the input itself is wrong (an
// interaction the policy does not know, no type, an unknown user kind) and
// is a defect of the caller, not of the token.
//
// Every resource scope of in.Scopes reaching in.Type whose letters include
// the interaction's is asked of the policy, once per practice in reach:
// the client's consented practices intersected with a practitioner's or
// staff user's practices; the client's for a backend client; none (no
// practice filter) for a patient user, whose own data it is. patient/
// scopes confine a grant to the compartment of in.LaunchPatient and are
// denied without one; user/ scopes of a patient user to the user's own
// compartment. Granular scopes add their query; grants within others are
// dropped, so an ungranular grant of a type overrides granular ones.
func (p *Policy) Decide(in Input) (Decision, error) {
	letter, ok := p.letters[in.Interaction]
	if !ok {
		return Decision{}, fmt.Errorf("policy: unknown interaction %q", in.Interaction)
	}
	if in.Type == "" {
		return Decision{}, fmt.Errorf("policy: no resource type for %s", in.Interaction)
	}
	who, err := principalOf(in)
	if err != nil {
		return Decision{}, err
	}
	var d Decision
	var why denial
	for _, sc := range in.Scopes.Scopes {
		if !sc.CoversType(in.Type) {
			continue
		}
		g, stage, err := p.grant(in, who, sc, letter)
		if err != nil {
			return Decision{}, err
		}
		if stage != granted {
			why.note(stage, sc.Context)
			continue
		}
		d.Grants = append(d.Grants, g)
	}
	if len(d.Grants) == 0 {
		return Decision{Reason: why.reason(in, who.sub, letter)}, nil
	}
	d.Allowed = true
	d.Grants = prune(d.Grants)
	return d, nil
}

// principal is who a token acts for, as the policy names it.
type principal struct {
	sub string // the policy's subject: patient, practitioner, staff, backend
	// practices are the Casbin domains in reach; nil for a patient user,
	// whose grants carry no practice filter.
	practices []string
}

func principalOf(in Input) (principal, error) {
	switch in.User.Kind {
	case NoUser:
		return principal{"backend", in.ClientPractices}, nil
	case PatientUser:
		return principal{sub: "patient"}, nil
	case Practitioner, Staff:
		return principal{string(in.User.Kind), intersect(in.User.Practices, in.ClientPractices)}, nil
	}
	return principal{}, fmt.Errorf("policy: unknown user kind %q", in.User.Kind)
}

// grant returns what one scope reaching in.Type grants, or the stage at
// which it grants nothing.
func (p *Policy) grant(in Input, who principal, sc scope.Scope, letter scope.Interactions) (Grant, int, error) {
	if !sc.Interactions.Has(letter) {
		return Grant{}, noLetter, nil
	}
	var g Grant
	switch {
	case sc.Context == scope.Patient && in.LaunchPatient == "":
		return Grant{}, noLaunchPatient, nil
	case sc.Context == scope.Patient:
		g.Compartment = "Patient/" + in.LaunchPatient
	case sc.Context == scope.User && in.User.Kind == PatientUser && in.User.Patient == "":
		return Grant{}, noUserPatient, nil
	case sc.Context == scope.User && in.User.Kind == PatientUser:
		g.Compartment = "Patient/" + in.User.Patient
	}
	// v1 words go to the policy as written (its g2 lines read them); a v2
	// scope holding the letter is asked about that letter.
	perm := sc.Permission
	if sc.Version == scope.V2 {
		perm = letter.String()
	}
	ask := func(dom string) (bool, error) {
		ok, err := p.e.Enforce(who.sub, sc.Context.String(), dom, in.Type, string(in.Interaction), perm)
		if err != nil {
			return false, fmt.Errorf("policy: %w", err)
		}
		return ok, nil
	}
	if in.User.Kind == PatientUser {
		ok, err := ask("-")
		if err != nil || !ok {
			return Grant{}, byPolicy, err
		}
	} else {
		if len(who.practices) == 0 {
			return Grant{}, noPractice, nil
		}
		for _, dom := range who.practices {
			ok, err := ask(dom)
			if err != nil {
				return Grant{}, byPolicy, err
			}
			if ok {
				g.Practices = append(g.Practices, dom)
			}
		}
		if g.Practices == nil {
			return Grant{}, byPolicy, nil
		}
	}
	g.Query = sc.Query
	return g, granted, nil
}

// Stages of a denial, in the order Decide reaches them (granted is none):
// the reason given is that of the latest stage any scope reached, the most
// specific one.
const (
	noType = iota
	noLetter
	noLaunchPatient
	noUserPatient
	noPractice
	byPolicy
	granted
)

type denial struct {
	stage int
	ctx   scope.Context // of the scope that reached the stage
}

func (d *denial) note(stage int, ctx scope.Context) {
	if stage > d.stage {
		d.stage, d.ctx = stage, ctx
	}
}

// reason words the denial, only once Decide denies.
func (d *denial) reason(in Input, sub string, letter scope.Interactions) string {
	switch d.stage {
	case noLetter:
		return fmt.Sprintf("the granted scopes do not allow %s on %s (it needs a scope with %q)", in.Interaction, in.Type, letter)
	case noLaunchPatient:
		return "patient/ scopes need a patient in context, and the token has none"
	case noUserPatient:
		return "user/ scopes of a patient user need the user's Patient record, and the user has none"
	case noPractice:
		if in.User.Kind == NoUser {
			return "no practice has consented to this client"
		}
		return "the user is a member of no practice that consented to this client"
	case byPolicy:
		s := fmt.Sprintf("%s tokens may not do %s on %s through %s/ scopes", sub, in.Interaction, in.Type, d.ctx)
		if in.User.Kind != PatientUser {
			s += " in the practices in reach"
		}
		return s
	}
	return fmt.Sprintf("the granted scopes give no access to %s", in.Type)
}

// intersect returns the members of a that are also in b, in a's order,
// without repeats; nil when none.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// prune drops the grants within another grant (and repeats, keeping the
// first).
func prune(gs []Grant) []Grant {
	if len(gs) < 2 {
		return gs
	}
	out := gs[:0:0]
	for i, g := range gs {
		within := false
		for j, h := range gs {
			if i != j && h.contains(g) && (!g.contains(h) || j < i) {
				within = true
				break
			}
		}
		if !within {
			out = append(out, g)
		}
	}
	return out
}

// contains reports whether every resource g reaches, h reaches.
func (h Grant) contains(g Grant) bool {
	if h.Compartment != "" && h.Compartment != g.Compartment {
		return false
	}
	if h.Practices != nil {
		if g.Practices == nil {
			return false
		}
		for _, pr := range g.Practices {
			if !slices.Contains(h.Practices, pr) {
				return false
			}
		}
	}
	for name, vs := range h.Query {
		for _, v := range vs {
			if !slices.Contains(g.Query[name], v) {
				return false
			}
		}
	}
	return true
}

package policy

import (
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/scope"
)

var (
	patientUser  = User{Kind: PatientUser, Patient: "p1"}
	practitioner = User{Kind: Practitioner, Practices: []string{"A", "B"}}
	staff        = User{Kind: Staff, Practices: []string{"A"}}
	clientAB     = []string{"A", "B"}
	lab          = url.Values{"category": {"laboratory"}}
	vitals       = url.Values{"category": {"vital-signs"}}
)

// Every scope form, in every context, against every interaction: allowed
// exactly when the scope's letters hold the interaction's letter and the
// scope reaches the type, with the context's filters.
func TestDecideEveryScopeFormAndInteraction(t *testing.T) {
	forms := []struct {
		perm, letters string
	}{
		{"read", "rs"}, {"write", "cud"}, {"*", "cruds"},
		{"c", "c"}, {"r", "r"}, {"u", "u"}, {"d", "d"}, {"s", "s"},
		{"rs", "rs"}, {"cud", "cud"}, {"cruds", "cruds"}, {"cu", "cu"}, {"rd", "rd"},
	}
	contexts := []struct {
		ctx   string
		in    Input
		grant Grant
	}{
		{"patient", Input{LaunchPatient: "p9", User: practitioner, ClientPractices: clientAB},
			Grant{Compartment: "Patient/p9", Practices: []string{"A", "B"}}},
		{"patient", Input{LaunchPatient: "p1", User: patientUser}, Grant{Compartment: "Patient/p1"}},
		{"user", Input{User: practitioner, ClientPractices: []string{"B"}}, Grant{Practices: []string{"B"}}},
		{"user", Input{User: patientUser}, Grant{Compartment: "Patient/p1"}},
		{"system", Input{ClientPractices: []string{"A"}}, Grant{Practices: []string{"A"}}},
	}
	p := newPolicy(t)
	for _, c := range contexts {
		for _, f := range forms {
			for _, typ := range []string{"Observation", "*"} {
				sc := c.ctx + "/" + typ + "." + f.perm
				for in, letter := range smartLetters {
					for _, target := range []string{"Observation", "Condition"} {
						input := c.in
						input.Scopes = mustParse(t, sc)
						input.Interaction, input.Type = in, target
						d := decide(t, p, input)
						want := strings.Contains(f.letters, letter) && (typ == "*" || target == "Observation")
						if d.Allowed != want {
							t.Errorf("%s by %s: %s on %s: Allowed = %v (%s), want %v", sc, c.in.User.Kind, in, target, d.Allowed, d.Reason, want)
							continue
						}
						if want && !reflect.DeepEqual(d.Grants, []Grant{c.grant}) {
							t.Errorf("%s by %s: %s on %s: Grants = %+v, want %+v", sc, c.in.User.Kind, in, target, d.Grants, c.grant)
						}
						if !want && d.Reason == "" {
							t.Errorf("%s: %s on %s: denied without a reason", sc, in, target)
						}
					}
				}
			}
		}
	}
}

// SMART 2.0 reads v1 read as rs, write as cud and * as cruds: the same
// token in either version gets the same decision.
func TestDecideV1AndV2Agree(t *testing.T) {
	pairs := [][2]string{
		{"patient/Observation.read", "patient/Observation.rs"},
		{"patient/*.write", "patient/*.cud"},
		{"user/*.*", "user/*.cruds"},
		{"user/Observation.read user/Condition.write", "user/Condition.cud user/Observation.rs"},
		{"system/*.read", "system/*.rs"},
	}
	p := newPolicy(t)
	for _, pair := range pairs {
		for in := range smartLetters {
			for _, user := range []User{patientUser, practitioner, {}} {
				base := Input{LaunchPatient: "p1", User: user, ClientPractices: clientAB, Interaction: in, Type: "Condition"}
				v1, v2 := base, base
				v1.Scopes, v2.Scopes = mustParse(t, pair[0]), mustParse(t, pair[1])
				d1, d2 := decide(t, p, v1), decide(t, p, v2)
				if !reflect.DeepEqual(d1, d2) {
					t.Errorf("%q and %q by %q, %s: %+v vs %+v", pair[0], pair[1], user.Kind, in, d1, d2)
				}
			}
		}
	}
}

func TestDecideContextsAndPrincipals(t *testing.T) {
	tests := []struct {
		name   string
		in     Input
		grants []Grant // nil: denied
		reason string  // a denial's reason says this
	}{
		{"patient/ without a patient in context is denied",
			Input{Scopes: mustParse(t, "patient/*.rs"), User: practitioner, ClientPractices: clientAB, Interaction: Read, Type: "Observation"},
			nil, "need a patient in context"},
		{"patient/ for a patient user without launch patient is denied",
			Input{Scopes: mustParse(t, "patient/*.rs"), User: patientUser, Interaction: Read, Type: "Observation"},
			nil, "need a patient in context"},
		{"user/ of a patient user reaches their compartment",
			Input{Scopes: mustParse(t, "user/Observation.rs"), User: patientUser, Interaction: SearchType, Type: "Observation"},
			[]Grant{{Compartment: "Patient/p1"}}, ""},
		{"user/ of a patient user with no Patient record is denied",
			Input{Scopes: mustParse(t, "user/Observation.rs"), User: User{Kind: PatientUser}, Interaction: SearchType, Type: "Observation"},
			nil, "user's Patient record"},
		{"patient/ and user/ of a patient user on the same patient are one grant",
			Input{Scopes: mustParse(t, "patient/*.rs user/*.rs"), LaunchPatient: "p1", User: patientUser, Interaction: Read, Type: "Observation"},
			[]Grant{{Compartment: "Patient/p1"}}, ""},
		{"a patient user's proxy launch reaches both compartments",
			Input{Scopes: mustParse(t, "patient/*.rs user/*.rs"), LaunchPatient: "child", User: patientUser, Interaction: Read, Type: "Observation"},
			[]Grant{{Compartment: "Patient/child"}, {Compartment: "Patient/p1"}}, ""},
		{"a patient user's grant ignores the client's practices",
			Input{Scopes: mustParse(t, "patient/*.rs"), LaunchPatient: "p1", User: patientUser, ClientPractices: []string{"Z"}, Interaction: Read, Type: "Observation"},
			[]Grant{{Compartment: "Patient/p1"}}, ""},
		{"system/ for a patient user is denied by policy",
			Input{Scopes: mustParse(t, "system/*.rs"), User: patientUser, Interaction: Read, Type: "Observation"},
			nil, "patient tokens may not do read on Observation through system/ scopes"},
		{"system/ for a practitioner is denied by policy",
			Input{Scopes: mustParse(t, "system/*.rs"), User: practitioner, ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			nil, "practitioner tokens may not"},
		{"user/ for a backend client is denied by policy",
			Input{Scopes: mustParse(t, "user/*.rs"), ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			nil, "backend tokens may not"},
		{"patient/ for a backend client has no patient",
			Input{Scopes: mustParse(t, "patient/*.rs"), ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			nil, "need a patient in context"},
		{"a practitioner's user/ grant covers their patient/ grant",
			Input{Scopes: mustParse(t, "patient/*.rs user/Observation.rs"), LaunchPatient: "p9", User: practitioner, ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			[]Grant{{Practices: []string{"A", "B"}}}, ""},
		{"a practitioner's patient/ grant alone keeps the compartment",
			Input{Scopes: mustParse(t, "patient/*.rs user/Condition.rs"), LaunchPatient: "p9", User: practitioner, ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			[]Grant{{Compartment: "Patient/p9", Practices: []string{"A", "B"}}}, ""},
		{"staff read AuditEvent",
			Input{Scopes: mustParse(t, "user/AuditEvent.rs"), User: staff, ClientPractices: clientAB, Interaction: SearchType, Type: "AuditEvent"},
			[]Grant{{Practices: []string{"A"}}}, ""},
		{"staff read AuditEvent through a wildcard",
			Input{Scopes: mustParse(t, "user/*.read"), User: staff, ClientPractices: clientAB, Interaction: Read, Type: "AuditEvent"},
			[]Grant{{Practices: []string{"A"}}}, ""},
		{"staff do not write AuditEvent",
			Input{Scopes: mustParse(t, "user/*.cruds"), User: staff, ClientPractices: clientAB, Interaction: Create, Type: "AuditEvent"},
			nil, "staff tokens may not do create on AuditEvent"},
		{"staff read the clinical data of their practices",
			Input{Scopes: mustParse(t, "user/*.cruds"), User: staff, ClientPractices: clientAB, Interaction: SearchType, Type: "Observation"},
			[]Grant{{Practices: []string{"A"}}}, ""},
		{"staff do not write clinical data",
			Input{Scopes: mustParse(t, "user/*.cruds"), User: staff, ClientPractices: clientAB, Interaction: Update, Type: "Observation"},
			nil, "staff tokens may not do update on Observation"},
		{"staff need a user/ scope",
			Input{Scopes: mustParse(t, "patient/*.rs"), LaunchPatient: "p1", User: staff, ClientPractices: clientAB, Interaction: Read, Type: "Observation"},
			nil, "staff tokens may not do read on Observation through patient/ scopes"},
		{"staff need a scope for AuditEvent",
			Input{Scopes: mustParse(t, "user/Observation.rs"), User: staff, ClientPractices: clientAB, Interaction: Read, Type: "AuditEvent"},
			nil, "give no access to AuditEvent"},
		{"practitioners do not read AuditEvent",
			Input{Scopes: mustParse(t, "user/*.cruds"), User: practitioner, ClientPractices: clientAB, Interaction: SearchType, Type: "AuditEvent"},
			nil, "practitioner tokens may not do search-type on AuditEvent"},
		{"patients do not read AuditEvent",
			Input{Scopes: mustParse(t, "patient/*.cruds"), LaunchPatient: "p1", User: patientUser, Interaction: Read, Type: "AuditEvent"},
			nil, "patient tokens may not"},
		{"backend clients do not read AuditEvent",
			Input{Scopes: mustParse(t, "system/*.rs"), ClientPractices: clientAB, Interaction: SearchType, Type: "AuditEvent"},
			nil, "backend tokens may not"},
		{"no scope for the type",
			Input{Scopes: mustParse(t, "patient/Observation.rs launch/patient openid fhirUser"), LaunchPatient: "p1", User: patientUser, Interaction: Read, Type: "Condition"},
			nil, "the granted scopes give no access to Condition"},
		{"no resource scopes at all",
			Input{Scopes: mustParse(t, "openid fhirUser offline_access https://x/custom"), LaunchPatient: "p1", User: patientUser, Interaction: Read, Type: "Patient"},
			nil, "give no access to Patient"},
		{"scope for the type without the letter",
			Input{Scopes: mustParse(t, "patient/Observation.rs"), LaunchPatient: "p1", User: patientUser, Interaction: Create, Type: "Observation"},
			nil, `do not allow create on Observation (it needs a scope with "c")`},
		{"the most specific reason wins",
			Input{Scopes: mustParse(t, "patient/Observation.r user/Observation.rs"), User: practitioner, ClientPractices: []string{"Z"}, Interaction: SearchType, Type: "Observation"},
			nil, "no practice that consented"},
	}
	p := newPolicy(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(t, p, tt.in)
			checkDecision(t, d, tt.grants, tt.reason)
		})
	}
}

func TestDecidePractices(t *testing.T) {
	tests := []struct {
		name   string
		in     Input
		grants []Grant
		reason string
	}{
		{"a practitioner reaches the practices both they and the client have",
			Input{User: User{Kind: Practitioner, Practices: []string{"A", "B", "C"}}, ClientPractices: []string{"C", "B", "D"}},
			[]Grant{{Practices: []string{"B", "C"}}}, ""},
		{"repeated practices count once",
			Input{User: User{Kind: Practitioner, Practices: []string{"A", "A"}}, ClientPractices: []string{"A", "A"}},
			[]Grant{{Practices: []string{"A"}}}, ""},
		{"no practice in common",
			Input{User: User{Kind: Practitioner, Practices: []string{"A"}}, ClientPractices: []string{"B"}},
			nil, "the user is a member of no practice that consented to this client"},
		{"a practitioner of no practice",
			Input{User: User{Kind: Practitioner}, ClientPractices: []string{"B"}},
			nil, "no practice that consented"},
		{"a client no practice consented to",
			Input{User: User{Kind: Practitioner, Practices: []string{"A"}}},
			nil, "no practice that consented"},
		{"a backend client reaches its consented practices",
			Input{Scopes: mustParse(t, "system/Observation.rs"), ClientPractices: []string{"X", "Y"}},
			[]Grant{{Practices: []string{"X", "Y"}}}, ""},
		{"a backend client without consent",
			Input{Scopes: mustParse(t, "system/Observation.rs")},
			nil, "no practice has consented to this client"},
	}
	p := newPolicy(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Scopes.Scopes == nil {
				in.Scopes = mustParse(t, "user/Observation.rs")
			}
			in.Interaction, in.Type = SearchType, "Observation"
			checkDecision(t, decide(t, p, in), tt.grants, tt.reason)
		})
	}
}

// Practices are Casbin domains: a policy line for one practice applies
// there only.
func TestDecidePracticeDomainRules(t *testing.T) {
	custom := strings.Replace(policyText, "p, practitioner, user, *, *, d, allow", "p, practitioner, user, A, *, d, allow", 1)
	custom += "\np, practitioner, *, B, Observation, *, deny\n"
	if custom == policyText+"\np, practitioner, *, B, Observation, *, deny\n" {
		t.Fatal("the practitioner delete line moved; update this test")
	}
	p, err := NewFromText(modelText, custom)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		practices   []string
		interaction Interaction
		typ         string
		grants      []Grant
		reason      string
	}{
		{"delete only where allowed", []string{"A", "B", "C"}, Delete, "Condition", []Grant{{Practices: []string{"A"}}}, ""},
		{"read everywhere", []string{"A", "B", "C"}, Read, "Condition", []Grant{{Practices: []string{"A", "B", "C"}}}, ""},
		{"a practice's deny", []string{"A", "B", "C"}, Read, "Observation", []Grant{{Practices: []string{"A", "C"}}}, ""},
		{"allowed in none of the practices in reach", []string{"B", "C"}, Delete, "Condition", nil, "may not do delete on Condition through user/ scopes in the practices in reach"},
		{"denied in the only practice in reach", []string{"B"}, SearchType, "Observation", nil, "in the practices in reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Scopes: mustParse(t, "user/*.cruds"), User: User{Kind: Practitioner, Practices: tt.practices}, ClientPractices: []string{"A", "B", "C"},
				Interaction: tt.interaction, Type: tt.typ}
			checkDecision(t, decide(t, p, in), tt.grants, tt.reason)
		})
	}
}

func TestDecideGranularFilters(t *testing.T) {
	tests := []struct {
		name        string
		scopes      string
		interaction Interaction
		grants      []Grant
	}{
		{"one granular scope", "patient/Observation.rs?category=laboratory", SearchType,
			[]Grant{{Compartment: "Patient/p1", Query: lab}}},
		{"granular scopes of a type OR", "patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs", SearchType,
			[]Grant{{Compartment: "Patient/p1", Query: lab}, {Compartment: "Patient/p1", Query: vitals}}},
		{"an ungranular scope of the type overrides", "patient/Observation.rs?category=laboratory patient/Observation.rs", SearchType,
			[]Grant{{Compartment: "Patient/p1"}}},
		{"a wildcard overrides", "patient/Observation.rs?category=laboratory patient/*.rs", Read,
			[]Grant{{Compartment: "Patient/p1"}}},
		{"an ungranular scope without the letter does not override", "patient/Observation.rs?category=laboratory patient/Observation.r", SearchType,
			[]Grant{{Compartment: "Patient/p1", Query: lab}}},
		{"an ungranular scope with the letter does", "patient/Observation.rs?category=laboratory patient/Observation.r", Read,
			[]Grant{{Compartment: "Patient/p1"}}},
		{"a wider granular scope covers a narrower one", "patient/Observation.rs?category=laboratory&code=1234-5 patient/Observation.rs?category=laboratory", SearchType,
			[]Grant{{Compartment: "Patient/p1", Query: lab}}},
		{"several parameters AND in one grant", "patient/Observation.rs?category=laboratory&code=1234-5", SearchType,
			[]Grant{{Compartment: "Patient/p1", Query: url.Values{"category": {"laboratory"}, "code": {"1234-5"}}}}},
		{"another type's granular scope does not apply", "patient/Condition.rs?category=problem-list-item patient/Observation.rs", SearchType,
			[]Grant{{Compartment: "Patient/p1"}}},
	}
	p := newPolicy(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Scopes: mustParse(t, tt.scopes), LaunchPatient: "p1", User: patientUser, Interaction: tt.interaction, Type: "Observation"}
			checkDecision(t, decide(t, p, in), tt.grants, "")
		})
	}
}

// A practitioner holding both a patient/ grant and a narrower user/ grant
// reaches either: the decision keeps both alternatives.
func TestDecideKeepsAlternativesOfDifferentContexts(t *testing.T) {
	p := newPolicy(t)
	in := Input{
		Scopes:        mustParse(t, "patient/Observation.rs user/Observation.rs?category=laboratory"),
		LaunchPatient: "p9", User: practitioner, ClientPractices: clientAB,
		Interaction: SearchType, Type: "Observation",
	}
	checkDecision(t, decide(t, p, in), []Grant{
		{Compartment: "Patient/p9", Practices: []string{"A", "B"}},
		{Practices: []string{"A", "B"}, Query: lab},
	}, "")
}

func TestDecideIsSafeForConcurrentUse(t *testing.T) {
	p := newPolicy(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				typ := []string{"Observation", "Condition", "AuditEvent"}[(i+j)%3]
				in := Input{Scopes: mustParse(t, "user/*.rs"), User: practitioner, ClientPractices: clientAB, Interaction: Read, Type: typ}
				d, err := p.Decide(in)
				if err != nil || d.Allowed != (typ != "AuditEvent") {
					t.Errorf("%s: %+v, %v", typ, d, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDecideRefusesBadInput(t *testing.T) {
	p := newPolicy(t)
	s := mustParse(t, "user/*.rs")
	for name, in := range map[string]Input{
		"unknown interaction": {Scopes: s, User: patientUser, Interaction: "operation", Type: "Patient"},
		"no type":             {Scopes: s, User: patientUser, Interaction: Read},
		"unknown user kind":   {Scopes: s, User: User{Kind: "admin"}, Interaction: Read, Type: "Patient"},
	} {
		if d, err := p.Decide(in); err == nil {
			t.Errorf("%s: Decide = %+v, want an error", name, d)
		}
	}
}

func decide(t testing.TB, p *Policy, in Input) Decision {
	t.Helper()
	d, err := p.Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func checkDecision(t *testing.T, d Decision, grants []Grant, reason string) {
	t.Helper()
	if grants == nil {
		if d.Allowed || d.Grants != nil {
			t.Fatalf("allowed with %+v, want denied", d.Grants)
		}
		if !strings.Contains(d.Reason, reason) {
			t.Errorf("reason %q does not say %q", d.Reason, reason)
		}
		return
	}
	if !d.Allowed {
		t.Fatalf("denied: %s", d.Reason)
	}
	if d.Reason != "" {
		t.Errorf("allowed with reason %q", d.Reason)
	}
	if !reflect.DeepEqual(d.Grants, grants) {
		t.Errorf("Grants = %+v, want %+v", d.Grants, grants)
	}
}

func mustParse(t testing.TB, s string) scope.Set {
	t.Helper()
	set, err := scope.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

package scope

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const labCategory = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

func TestParseScopeReadsEveryForm(t *testing.T) {
	lab := url.Values{"category": {labCategory}}
	tests := []struct {
		in   string
		want Scope
	}{
		// SMART v1 resource scopes.
		{"patient/Observation.read", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V1, Permission: "read", Interactions: Read | Search}},
		{"patient/Observation.write", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V1, Permission: "write", Interactions: Create | Update | Delete}},
		{"patient/Observation.*", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V1, Permission: "*", Interactions: All}},
		{"user/*.*", Scope{Kind: Resource, Context: User, Type: "*", Version: V1, Permission: "*", Interactions: All}},
		{"user/Patient.read", Scope{Kind: Resource, Context: User, Type: "Patient", Version: V1, Permission: "read", Interactions: Read | Search}},
		{"system/*.read", Scope{Kind: Resource, Context: System, Type: "*", Version: V1, Permission: "read", Interactions: Read | Search}},
		{"system/Encounter.write", Scope{Kind: Resource, Context: System, Type: "Encounter", Version: V1, Permission: "write", Interactions: Create | Update | Delete}},
		// SMART v2 resource scopes: any ordered subset of cruds.
		{"patient/Observation.rs", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "rs", Interactions: Read | Search}},
		{"patient/Patient.r", Scope{Kind: Resource, Context: Patient, Type: "Patient", Version: V2, Permission: "r", Interactions: Read}},
		{"patient/Observation.c", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "c", Interactions: Create}},
		{"patient/Observation.u", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "u", Interactions: Update}},
		{"patient/Observation.d", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "d", Interactions: Delete}},
		{"patient/Observation.s", Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "s", Interactions: Search}},
		{"patient/AllergyIntolerance.cud", Scope{Kind: Resource, Context: Patient, Type: "AllergyIntolerance", Version: V2, Permission: "cud", Interactions: Create | Update | Delete}},
		{"user/*.cruds", Scope{Kind: Resource, Context: User, Type: "*", Version: V2, Permission: "cruds", Interactions: All}},
		{"user/Appointment.cs", Scope{Kind: Resource, Context: User, Type: "Appointment", Version: V2, Permission: "cs", Interactions: Create | Search}},
		{"system/*.rs", Scope{Kind: Resource, Context: System, Type: "*", Version: V2, Permission: "rs", Interactions: Read | Search}},
		{"system/Encounter.ud", Scope{Kind: Resource, Context: System, Type: "Encounter", Version: V2, Permission: "ud", Interactions: Update | Delete}},
		// Granular v2 scopes.
		{"patient/Observation.rs?category=" + labCategory,
			Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "rs", Interactions: Read | Search, Query: lab}},
		{"user/Condition.rs?category=problem-list-item&clinical-status=active",
			Scope{Kind: Resource, Context: User, Type: "Condition", Version: V2, Permission: "rs", Interactions: Read | Search,
				Query: url.Values{"category": {"problem-list-item"}, "clinical-status": {"active"}}}},
		{"patient/Observation.s?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
			Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "s", Interactions: Search,
				Query: url.Values{"code:in": {"http://valueset.example.org/ValueSet/diabetes-codes"}}}},
		{"patient/Observation.rs?category=a%26b", // an escaped & is part of the value
			Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "rs", Interactions: Read | Search,
				Query: url.Values{"category": {"a&b"}}}},
		{"patient/Observation.rs?category=vital-signs&category=laboratory", // repeated parameters AND
			Scope{Kind: Resource, Context: Patient, Type: "Observation", Version: V2, Permission: "rs", Interactions: Read | Search,
				Query: url.Values{"category": {"laboratory", "vital-signs"}}}},
		// Context and identity scopes.
		{"launch", Scope{Kind: Launch}},
		{"launch/patient", Scope{Kind: LaunchPatient}},
		{"launch/encounter", Scope{Kind: LaunchEncounter}},
		{"openid", Scope{Kind: OpenID}},
		{"fhirUser", Scope{Kind: FHIRUser}},
		{"profile", Scope{Kind: Profile}},
		{"offline_access", Scope{Kind: OfflineAccess}},
		{"online_access", Scope{Kind: OnlineAccess}},
		// Scopes this package does not define are kept.
		{"email", Scope{Kind: Other, text: "email"}},
		{"https://x/custom", Scope{Kind: Other, text: "https://x/custom"}},
		{"launch/diagnosticreport", Scope{Kind: Other, text: "launch/diagnosticreport"}},
		{"launch/list?role=https://example.org/med-list-at-home", Scope{Kind: Other, text: "launch/list?role=https://example.org/med-list-at-home"}},
		{"api/foo.bar", Scope{Kind: Other, text: "api/foo.bar"}},
		{"fhiruser", Scope{Kind: Other, text: "fhiruser"}},
		{".read", Scope{Kind: Other, text: ".read"}},
		{"x/", Scope{Kind: Other, text: "x/"}},
		{"abc/Observation", Scope{Kind: Other, text: "abc/Observation"}},
		{"a1/Observation.rs", Scope{Kind: Other, text: "a1/Observation.rs"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err != nil {
				t.Fatalf("ParseScope: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseScope = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseScopeSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{"", "empty scope"},
		{"patient/.read", "empty resource type"},
		{"patient/.rs", "empty resource type"},
		{"patient/", "empty resource type"},
		{"user/Observation", "no permissions"},
		{"patient/Observation.", "empty permissions"},
		{"patient/observation.read", `unknown resource type "observation"`},
		{"patient/Foo.rs", `unknown resource type "Foo"`},
		{"patient/Observation.dus", "letters must be in the order"},
		{"patient/Observation.sr", "letters must be in the order"},
		{"patient/Observation.rr", "letters must be in the order"},
		{"patient/Observation.crudss", "letters must be in the order"},
		{"patient/Observation.rx", `'x' is not a permission`},
		{"patient/Observation.READ", `'R' is not a permission`},
		{"patient/Observation.rd?", "empty query"},
		{"patient/Observation.rs?", "empty query"},
		{"patient/Observation.rs?category", `"category" has no value`},
		{"patient/Observation.rs?category=", `"category" has no value`},
		{"patient/Observation.rs?=laboratory", "has no name"},
		{"patient/Observation.rs?category=lab&", "has no name"},
		{"patient/Observation.rs?a=%zz", "query: "},
		{"patient/Observation.read?category=laboratory", "needs SMART v2 permissions"},
		{"patient/Observation.*?category=laboratory", "needs SMART v2 permissions"},
		{"practitioner/Observation.read", `unknown context "practitioner"`},
		{"Patient/Observation.rs", `unknown context "Patient"`},
		{"group/*.rs", `unknown context "group"`},
		{"patient/Observation .read", "character ' ' is not allowed"},
		{"patient/Observation.rs\t", `character '\t' is not allowed`},
		{"patient/Observation.rs?category=\"lab\"", `character '"' is not allowed`},
		{"user/Observation.rs?category=caf\xc3\xa9", "is not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if err == nil {
				t.Fatalf("ParseScope = %+v, want an error", got)
			}
			var se *Error
			if !errors.As(err, &se) || se.Scope != tt.in {
				t.Fatalf("error %v is not an *Error naming the scope", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}

func TestScopeStringIsCanonicalAndRoundTrips(t *testing.T) {
	tests := []struct{ in, want string }{
		{"patient/Observation.read", "patient/Observation.read"},
		{"user/*.*", "user/*.*"},
		{"system/*.rs", "system/*.rs"},
		{"launch/patient", "launch/patient"},
		{"fhirUser", "fhirUser"},
		{"https://x/custom", "https://x/custom"},
		{"patient/Observation.rs?category=" + labCategory, "patient/Observation.rs?category=" + labCategory},
		{"user/Condition.rs?clinical-status=active&category=problem-list-item", "user/Condition.rs?category=problem-list-item&clinical-status=active"},
		{"user/Observation.rs?category=vital-signs&category=laboratory", "user/Observation.rs?category=laboratory&category=vital-signs"},
		{"patient/Observation.rs?category=%6Cab", "patient/Observation.rs?category=lab"},
		{"patient/Observation.rs?category=a%26b%3Dc", "patient/Observation.rs?category=a%26b%3Dc"},
		{"patient/Observation.rs?category=a+b", "patient/Observation.rs?category=a%20b"},
		{"patient/Observation.rs?code=x%2By", "patient/Observation.rs?code=x%2By"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sc, err := ParseScope(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := sc.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
			again, err := ParseScope(sc.String())
			if err != nil {
				t.Fatalf("canonical form does not parse: %v", err)
			}
			if !reflect.DeepEqual(again, sc) {
				t.Errorf("round trip = %+v, want %+v", again, sc)
			}
		})
	}
}

func TestInteractionsLetters(t *testing.T) {
	if got := All.String(); got != "cruds" {
		t.Errorf("All = %q", got)
	}
	if got := (Search | Read).String(); got != "rs" {
		t.Errorf("Search|Read = %q, want rs (SMART order)", got)
	}
	for i := range len(letters) {
		in, ok := Letter(letters[i])
		if !ok || in.String() != letters[i:i+1] {
			t.Errorf("Letter(%q) = %v, %v", letters[i], in, ok)
		}
	}
	if _, ok := Letter('x'); ok {
		t.Error("Letter('x') is a letter")
	}
	if !(Read | Search).Has(Read) || (Read).Has(Read|Search) {
		t.Error("Has does not compare sets")
	}
}

func TestV1PermissionIsSMART2Reading(t *testing.T) {
	for word, want := range map[string]string{"read": "rs", "write": "cud", "*": "cruds"} {
		got, ok := V1Permission(word)
		if !ok || got.String() != want {
			t.Errorf("V1Permission(%q) = %q, %v; want %q", word, got, ok, want)
		}
	}
	if _, ok := V1Permission("rs"); ok {
		t.Error("rs is a v1 word")
	}
}

package policy

import (
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/scope"
)

// benchScopes is what a patient app of the certification kind asks for:
// ten scopes, two of them granular.
const benchScopes = "launch/patient openid fhirUser offline_access patient/Patient.rs " +
	"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory " +
	"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs " +
	"patient/Condition.rs patient/MedicationRequest.rs patient/Encounter.rs"

const benchPractitionerScopes = "launch openid fhirUser offline_access patient/*.rs user/Patient.rs " +
	"user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory " +
	"user/Condition.rs user/Encounter.rs user/Appointment.cruds"

// One decision as a request makes it: parse the token's scope string,
// decide, build the filters.
func BenchmarkDecide(b *testing.B) {
	cases := []struct {
		name   string
		scopes string
		in     Input
	}{
		{"patient", benchScopes, Input{LaunchPatient: "p1", User: User{Kind: PatientUser, Patient: "p1"}, Interaction: SearchType, Type: "Observation"}},
		{"practitioner", benchPractitionerScopes, Input{LaunchPatient: "p1", User: User{Kind: Practitioner, Practices: []string{"A", "B", "C"}},
			ClientPractices: []string{"C", "B", "Z"}, Interaction: SearchType, Type: "Observation"}},
	}
	for _, c := range cases {
		b.Run(c.name+"/parse-each-time", func(b *testing.B) {
			p := newPolicy(b)
			b.ReportAllocs()
			for b.Loop() {
				s, err := scope.Parse(c.scopes)
				if err != nil {
					b.Fatal(err)
				}
				in := c.in
				in.Scopes = s
				if d, err := p.Decide(in); err != nil || !d.Allowed {
					b.Fatal(d.Reason, err)
				}
			}
		})
		b.Run(c.name+"/scope-cache", func(b *testing.B) {
			p := newPolicy(b)
			var cache scope.Cache
			b.ReportAllocs()
			for b.Loop() {
				s, err := cache.Parse(c.scopes)
				if err != nil {
					b.Fatal(err)
				}
				in := c.in
				in.Scopes = s
				if d, err := p.Decide(in); err != nil || !d.Allowed {
					b.Fatal(d.Reason, err)
				}
			}
		})
		// Without Casbin's decision cache: what a decision costs the
		// first time its request is seen.
		b.Run(c.name+"/no-casbin-cache", func(b *testing.B) {
			p := newPolicy(b)
			p.e.EnableCache(false)
			b.ReportAllocs()
			for b.Loop() {
				s, err := scope.Parse(c.scopes)
				if err != nil {
					b.Fatal(err)
				}
				in := c.in
				in.Scopes = s
				if d, err := p.Decide(in); err != nil || !d.Allowed {
					b.Fatal(d.Reason, err)
				}
			}
		})
	}
}

func BenchmarkParseScopes(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scope.Parse(benchScopes); err != nil {
			b.Fatal(err)
		}
	}
}

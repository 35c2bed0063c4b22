package policy

import (
	"strings"
	"testing"

	"github.com/fhirgraph/fhirgraph/authz/scope"
)

// smartLetters is SMART App Launch 2.0's table of which letter each FHIR
// interaction needs, written out here independently of policy.csv.
var smartLetters = map[Interaction]string{
	Read: "r", VRead: "r", HistoryInstance: "r",
	SearchType: "s", SearchCompartment: "s", SearchSystem: "s", HistoryType: "s", HistorySystem: "s",
	Create: "c", Update: "u", Patch: "u", Delete: "d",
}

func TestPolicyMapsEveryInteractionToItsSMARTLetter(t *testing.T) {
	p := newPolicy(t)
	for in, want := range smartLetters {
		got, ok := p.Letter(in)
		if !ok || got.String() != want {
			t.Errorf("Letter(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if len(p.letters) != len(smartLetters) {
		t.Errorf("policy maps %d interactions, SMART names %d", len(p.letters), len(smartLetters))
	}
	if _, ok := p.Letter("operation"); ok {
		t.Error("an unknown interaction has a letter")
	}
}

// The policy's g2 lines and package scope's V1Permission both read the
// SMART v1 words; they must agree, or narrowing and decisions would differ.
func TestPolicyV1WordsAgreeWithScopePackage(t *testing.T) {
	p := newPolicy(t)
	lines, err := p.e.GetNamedGroupingPolicy("g2")
	if err != nil {
		t.Fatal(err)
	}
	fromPolicy := map[string]scope.Interactions{}
	for _, l := range lines {
		letter, ok := scope.Letter(l[1][0])
		if len(l[1]) != 1 || !ok {
			t.Fatalf("g2, %s, %s: not a letter", l[0], l[1])
		}
		fromPolicy[l[0]] |= letter
	}
	for _, word := range []string{"read", "write", "*"} {
		want, _ := scope.V1Permission(word)
		if fromPolicy[word] != want {
			t.Errorf("policy reads v1 %q as %q, package scope as %q", word, fromPolicy[word], want)
		}
	}
	if len(fromPolicy) != 3 {
		t.Errorf("policy has g2 lines for %d words, want read, write and *", len(fromPolicy))
	}
}

func TestNewFromTextRefusesMalformedPolicy(t *testing.T) {
	tests := []struct {
		name, model, policy, says string
	}{
		{"bad model", "[request_definition]\nr = sub\n", policyText, "model"},
		{"unknown policy type", modelText, policyText + "\np9, a, b\n", `"p9" is not a policy type`},
		{"too few fields", modelText, policyText + "\np, patient, user, *, *, r\n", "p takes 6 fields, not 5"},
		{"too many grouping fields", modelText, policyText + "\ng, read, r, x\n", "g takes 2 fields, not 3"},
		{"unknown effect", modelText, policyText + "\np, patient, user, *, *, r, permit\n", `effect "permit"`},
		{"not a letter", modelText, "g, read, x\n", `"x" is not a SMART letter`},
		{"two letters", modelText, "g, read, rs\n", `"rs" is not a SMART letter`},
		{"one interaction, two letters", modelText, "g, read, r\ng, read, s\n", "more than one letter"},
		{"unbalanced quote", modelText, "p, \"patient, user, *, *, r, allow\n", "policy line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFromText(tt.model, tt.policy)
			if err == nil {
				t.Fatal("NewFromText accepted it")
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestPolicyIsReadOnly(t *testing.T) {
	p := newPolicy(t)
	if ok, err := p.e.AddPolicy("patient", "system", "*", "*", "r", "allow"); ok || err == nil {
		t.Errorf("AddPolicy = %v, %v; the policy is data", ok, err)
	}
}

func TestDecisionCacheStaysBounded(t *testing.T) {
	c := &boundedCache{max: 2}
	c.Set("a", true)
	c.Set("b", false)
	if v, err := c.Get("b"); err != nil || v {
		t.Errorf("Get(b) = %v, %v", v, err)
	}
	c.Set("c", true) // full: starts over
	if _, err := c.Get("a"); err == nil {
		t.Error("a full cache kept its entries")
	}
	if v, err := c.Get("c"); err != nil || !v {
		t.Errorf("Get(c) = %v, %v", v, err)
	}
	c.Clear()
	if _, err := c.Get("c"); err == nil {
		t.Error("Clear kept an entry")
	}
}

func newPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

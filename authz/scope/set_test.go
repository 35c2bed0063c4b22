package scope

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestParseSet(t *testing.T) {
	tests := []struct {
		name, in  string
		canonical string
		version   Version
	}{
		{"empty string is the empty set", "", "", NoVersion},
		{"only spaces", "   ", "", NoVersion},
		{"v2 app launch", "launch/patient openid fhirUser patient/Observation.rs offline_access",
			"fhirUser launch/patient offline_access openid patient/Observation.rs", V2},
		{"v1 app launch", "launch patient/*.read openid profile", "launch openid patient/*.read profile", V1},
		{"runs of spaces and edges tolerated", "  openid   patient/Patient.r ", "openid patient/Patient.r", V2},
		{"repeats collapse", "openid openid patient/Patient.r patient/Patient.r", "openid patient/Patient.r", V2},
		{"repeats collapse by canonical form",
			"user/Condition.rs?clinical-status=active&category=x user/Condition.rs?category=x&clinical-status=active",
			"user/Condition.rs?category=x&clinical-status=active", V2},
		{"no resource scope has no version", "openid fhirUser email", "email fhirUser openid", NoVersion},
		{"unknown scopes kept", "https://x/custom patient/*.rs", "https://x/custom patient/*.rs", V2},
		{"v1 .* is v1", "user/*.* system/Patient.read", "system/Patient.read user/*.*", V1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tt.canonical {
				t.Errorf("String = %q, want %q", got, tt.canonical)
			}
			if s.Version != tt.version {
				t.Errorf("Version = %v, want %v", s.Version, tt.version)
			}
			again, err := Parse(s.String())
			if err != nil || again.String() != s.String() || again.Version != s.Version {
				t.Errorf("canonical form parses to %q, %v", again, err)
			}
		})
	}
}

func TestParseSetRefuses(t *testing.T) {
	tests := []struct {
		name, in, says string
		mixed          bool
	}{
		{"v1 and v2 mixed", "patient/Observation.rs patient/Patient.read", "SMART v1 and v2 resource scopes mixed", true},
		{"v1 .* and v2 mixed", "user/*.* user/Patient.rs", "mixed", true},
		{"v2 then v1 across contexts", "system/*.rs user/Patient.write", "mixed", true},
		{"one malformed scope", "openid patient/Observation.sr launch", `scope "patient/Observation.sr"`, false},
		{"a tab is not a separator", "openid\tlaunch", "is not allowed", false},
		{"a newline is not a separator", "openid\nlaunch", "is not allowed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse = %q, want an error", s)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error %v is not an *Error", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not say %q", err, tt.says)
			}
			if got := errors.Is(err, ErrMixedVersions); got != tt.mixed {
				t.Errorf("errors.Is(err, ErrMixedVersions) = %v, want %v", got, tt.mixed)
			}
		})
	}
}

func TestSetHas(t *testing.T) {
	s := mustParse(t, "openid fhirUser offline_access patient/*.rs")
	for _, k := range []Kind{OpenID, FHIRUser, OfflineAccess, Resource} {
		if !s.Has(k) {
			t.Errorf("Has(%v) = false", k)
		}
	}
	for _, k := range []Kind{OnlineAccess, Launch, LaunchPatient, Profile, Other} {
		if s.Has(k) {
			t.Errorf("Has(%v) = true", k)
		}
	}
}

func TestUncoveredNarrowing(t *testing.T) {
	tests := []struct {
		name, have, want string
		uncovered        string // canonical scopes of want not covered, space-separated
	}{
		{"same set", "patient/Observation.rs openid", "patient/Observation.rs openid", ""},
		{"empty request", "patient/*.rs", "", ""},
		{"subset of letters", "patient/Observation.cruds", "patient/Observation.rs", ""},
		{"within a wildcard type", "patient/*.cruds", "patient/Observation.rs", ""},
		{"letters from several scopes", "patient/Observation.r patient/Observation.s", "patient/Observation.rs", ""},
		{"letters from a wildcard and a type", "patient/*.r patient/Observation.s", "patient/Observation.rs", ""},
		{"v2 r within v1 read", "patient/Observation.read", "patient/Observation.r", ""},
		{"v2 rs within v1 read", "patient/Observation.read", "patient/Observation.rs", ""},
		{"v2 cud within v1 write", "patient/Observation.write", "patient/Observation.cud", ""},
		{"v1 read within v2 rs", "patient/Observation.rs", "patient/Observation.read", ""},
		{"v1 * within v2 cruds", "user/*.cruds", "user/Observation.*", ""},
		{"granular within ungranular", "patient/Observation.rs", "patient/Observation.rs?category=laboratory", ""},
		{"granular within the same granular", "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory", ""},
		{"more parameters are narrower", "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory&code=1234-5", ""},
		{"granular within a wildcard type", "patient/*.rs", "patient/Condition.rs?category=problem-list-item", ""},
		{"identity scopes by themselves", "openid fhirUser launch/patient offline_access", "fhirUser offline_access", ""},
		{"unknown scopes by themselves", "https://x/custom", "https://x/custom", ""},

		{"more letters", "patient/Observation.rs", "patient/Observation.crs", "patient/Observation.crs"},
		{"v1 write not within v1 read", "patient/Observation.read", "patient/Observation.write", "patient/Observation.write"},
		{"v1 read not within v2 r", "patient/Observation.r", "patient/Observation.read", "patient/Observation.read"},
		{"another type", "patient/Observation.rs", "patient/Condition.rs", "patient/Condition.rs"},
		{"wildcard not within one type", "patient/Observation.rs", "patient/*.rs", "patient/*.rs"},
		{"ungranular not within granular", "patient/Observation.rs?category=laboratory", "patient/Observation.rs", "patient/Observation.rs"},
		{"other granular value", "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=vital-signs", "patient/Observation.rs?category=vital-signs"},
		{"fewer parameters are wider", "patient/Observation.rs?category=laboratory&code=1234-5", "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory"},
		{"granular letters do not add to an ungranular scope", "patient/Observation.r patient/Observation.s?category=laboratory", "patient/Observation.rs", "patient/Observation.rs"},
		{"patient/ not within user/", "user/*.cruds", "patient/Observation.rs", "patient/Observation.rs"},
		{"user/ not within patient/", "patient/*.cruds", "user/Observation.rs", "user/Observation.rs"},
		{"system/ not within user/", "user/*.cruds", "system/Observation.rs", "system/Observation.rs"},
		{"offline not within online", "online_access", "offline_access", "offline_access"},
		{"launch/patient not within launch", "launch", "launch/patient", "launch/patient"},
		{"only the uncovered ones", "patient/Observation.rs openid", "openid patient/Observation.rs patient/Condition.rs fhirUser", "fhirUser patient/Condition.rs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have, want := mustParse(t, tt.have), mustParse(t, tt.want)
			got := Set{Scopes: have.Uncovered(want)}.String()
			if got != tt.uncovered {
				t.Errorf("Uncovered = %q, want %q", got, tt.uncovered)
			}
			if have.Contains(want) != (tt.uncovered == "") {
				t.Errorf("Contains = %v, want %v", have.Contains(want), tt.uncovered == "")
			}
		})
	}
}

func TestCacheParsesOnce(t *testing.T) {
	var c Cache
	const s = "openid patient/Observation.rs?category=laboratory"
	a, err := c.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Parse(s)
	if &a.Scopes[0] != &b.Scopes[0] {
		t.Error("second Parse did not come from the cache")
	}
	if a.String() != mustParse(t, s).String() {
		t.Errorf("cached = %q", a)
	}
	if _, err := c.Parse("patient/Observation.sr"); err == nil {
		t.Error("cached parse of a malformed scope has no error")
	}
	if _, err := c.Parse("patient/Observation.sr"); err == nil {
		t.Error("cached error lost")
	}
}

func TestCacheForgetsWhenFull(t *testing.T) {
	c := Cache{Max: 2}
	first, _ := c.Parse("openid")
	c.Parse("fhirUser")
	c.Parse("launch") // full: starts over
	again, _ := c.Parse("openid")
	if &first.Scopes[0] == &again.Scopes[0] {
		t.Error("a full cache kept its entries")
	}
	if len(c.m) > c.Max {
		t.Errorf("cache holds %d entries, Max %d", len(c.m), c.Max)
	}
}

func TestCacheIsSafeForConcurrentUse(t *testing.T) {
	var c Cache
	c.Max = 3
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				s := []string{"openid", "patient/*.rs", "user/*.cruds", "launch"}[(i+j)%4]
				if got, err := c.Parse(s); err != nil || got.String() != s {
					t.Errorf("Parse(%q) = %q, %v", s, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func mustParse(t testing.TB, s string) Set {
	t.Helper()
	set, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

package synth

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

func TestCheckDigits(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		// CMS's worked example of the NPI Luhn check over prefix 80840.
		{"npi of 123456789", npi(123456789), "1234567893"},
		{"npi keeps leading zeros", npi(1), "0000000014"},
		// UPC-A 012345678905 as a GTIN-14.
		{"gtin of 0001234567890", gtin("0001234567890"), "00012345678905"},
		{"gtin of 0084900731201", gtin("0084900731201"), "00849007312019"}, // weights 3,1 from the right: 81, so 9
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %s, want %s", tc.got, tc.want)
			}
		})
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUIDsAreVersion4(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		if u := uuid(r); !uuidV4.MatchString(u) {
			t.Fatalf("%q is not a version-4 UUID", u)
		}
	}
}

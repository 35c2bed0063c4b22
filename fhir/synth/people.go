package synth

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Demographic tables and identifier arithmetic. Places are real towns around
// Cleveland, Ohio, where the fictional practice sits; phone numbers use the
// 555-01xx block reserved for fiction, so no real person can be reached.

var givenFemale = []string{
	"Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
	"Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly", "Emily", "Donna", "Michelle",
	"Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Dorothy",
	"Maria", "Guadalupe", "Rosa", "Mei", "Ling", "Aaliyah", "Keisha", "Latoya", "Priya", "Anh",
	"Fatima", "Olga", "Irina", "Grace", "Hannah", "Chloe", "Sofia", "Isabella", "Ava", "Mia",
}

var givenMale = []string{
	"James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles",
	"Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua",
	"Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan",
	"Jose", "Luis", "Carlos", "Wei", "Jun", "Darnell", "Jamal", "Tyrone", "Raj", "Minh",
	"Omar", "Dmitri", "Sergei", "Liam", "Noah", "Elijah", "Lucas", "Mateo", "Ethan", "Aiden",
}

var familyNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
	"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
	"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
	"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
	"Kowalski", "Novak", "Horvath", "Schneider", "Muller", "O'Brien", "Murphy", "Kaur", "Patel", "Chen",
	"Wang", "Kim", "Park", "Tran", "Washington", "Jefferson", "Brooks", "Reed", "Murray", "Sullivan",
}

var streetNames = []string{
	"Euclid Ave", "Lorain Rd", "Detroit Ave", "Superior Ave", "Mayfield Rd", "Cedar Rd", "Chagrin Blvd",
	"Pearl Rd", "Ridge Rd", "State Rd", "Broadview Rd", "Warrensville Center Rd", "Lake Shore Blvd",
	"Clifton Blvd", "Madison Ave", "Fulton Rd", "Center Ridge Rd", "Royalton Rd", "Brookpark Rd",
	"Maple St", "Oak St", "Elm St", "Church St", "Park Ave", "Hillcrest Dr", "Lakeview Ave", "Sycamore Ln",
}

// town is a real municipality with one of its ZIP codes and its position,
// so addresses and Location.position agree.
type town struct {
	city, zip string
	lat, lon  float64
}

var towns = []town{
	{"Cleveland", "44113", 41.4822, -81.6970}, {"Cleveland", "44102", 41.4739, -81.7363},
	{"Cleveland", "44106", 41.5086, -81.6034}, {"Lakewood", "44107", 41.4820, -81.7982},
	{"Parma", "44129", 41.3845, -81.7229}, {"Euclid", "44117", 41.5931, -81.5268},
	{"Westlake", "44145", 41.4553, -81.9179}, {"Strongsville", "44136", 41.3145, -81.8357},
	{"Mentor", "44060", 41.6662, -81.3396}, {"Elyria", "44035", 41.3684, -82.1076},
	{"Akron", "44313", 41.1226, -81.5690}, {"Medina", "44256", 41.1384, -81.8637},
	{"Shaker Heights", "44120", 41.4739, -81.5371}, {"Cleveland Heights", "44118", 41.5200, -81.5562},
	{"Solon", "44139", 41.3898, -81.4412}, {"North Olmsted", "44070", 41.4156, -81.9235},
}

var areaCodes = []string{"216", "440", "330"}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// phone returns a fictional US number in the 555-01xx block.
func phone(r *rand.Rand) string {
	return "(" + pick(r, areaCodes) + ") 555-01" + pad(r.IntN(100), 2)
}

func streetLine(r *rand.Rand) string {
	return strconv.Itoa(100+r.IntN(19800)) + " " + pick(r, streetNames)
}

func address(line string, t town, use string) *fhirjson.Object {
	return obj(
		kv("use", use),
		kv("type", "both"),
		kv("line", list(line)),
		kv("city", t.city),
		kv("state", "OH"),
		kv("postalCode", t.zip),
		kv("country", "US"),
	)
}

// email builds a deterministic address on a reserved example domain.
func email(given, family string, n int) string {
	local := strings.ToLower(given + "." + family)
	local = strings.Map(func(c rune) rune {
		if (c >= 'a' && c <= 'z') || c == '.' {
			return c
		}
		return -1
	}, local)
	return local + strconv.Itoa(n) + "@example.com"
}

// pad formats n in at least width digits with leading zeros.
func pad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// npi completes a 9-digit base with its Luhn check digit, computed over the
// "80840" prefix as the NPI standard prescribes, so US Core's us-core-17
// invariant holds.
func npi(base int) string {
	s := "80840" + pad(base, 9)
	sum := 0
	double := true // the check digit will be appended to the right
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return pad(base, 9) + strconv.Itoa((10-sum%10)%10)
}

// gtin completes a 13-digit GS1 base with its mod-10 check digit, giving a
// well-formed UDI device identifier.
func gtin(base string) string {
	sum := 0
	for i := 0; i < len(base); i++ {
		d := int(base[len(base)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return base + strconv.Itoa((10-sum%10)%10)
}

// uuid formats 128 random bits as a version-4 UUID; drawing them from the
// patient's generator keeps document identifiers deterministic.
func uuid(r *rand.Rand) string {
	const hexdigits = "0123456789abcdef"
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^(0xf<<12) | 4<<12
	lo = lo&^(0x3<<62) | 0x2<<62
	var b [36]byte
	pos := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[pos] = '-'
			pos++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*uint(i)) & 0xf
		} else {
			nib = lo >> (60 - 4*uint(i-16)) & 0xf
		}
		b[pos] = hexdigits[nib]
		pos++
	}
	return string(b[:])
}

// race and ethnicity use the OMB categories of the CDC Race & Ethnicity
// code system, weighted roughly like Cuyahoga County.
type ombCategory struct {
	code, display string
	weight        float64
}

var races = []ombCategory{
	{"2106-3", "White", 0.60},
	{"2054-5", "Black or African American", 0.29},
	{"2028-9", "Asian", 0.04},
	{"1002-5", "American Indian or Alaska Native", 0.01},
	{"2076-8", "Native Hawaiian or Other Pacific Islander", 0.01},
}

var raceWeights = func() []float64 {
	w := make([]float64, len(races))
	for i, r := range races {
		w[i] = r.weight
	}
	return w
}()

var (
	ethHispanic    = ombCategory{"2135-2", "Hispanic or Latino", 0.07}
	ethNonHispanic = ombCategory{"2186-5", "Not Hispanic or Latino", 0.93}
)

// language is a preferred language with its BCP 47 tag.
type language struct{ tag, display string }

var (
	langEnglish    = language{"en-US", "English (United States)"}
	langSpanish    = language{"es", "Spanish"}
	langVietnamese = language{"vi", "Vietnamese"}
	langChinese    = language{"zh", "Chinese"}
)

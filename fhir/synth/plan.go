package synth

import (
	"math"
	"math/rand/v2"
	"time"
)

// Everything about a patient is decided here, before any resource is built:
// who they are, what cancer they have, how it is treated and when each visit
// happens. Builders then only render this plan.

type visitKind int

const (
	visitBiopsy visitKind = iota
	visitConsult
	visitSurgery
	visitPort
	visitTreatment
	visitFollowUp
)

// visit is one planned encounter; cycle numbers treatment visits from 1.
// intake marks a survivor's first visit in the record window, where the
// chart is established (history, medications, survivorship plan).
type visit struct {
	kind       visitKind
	start, end time.Time
	cycle      int
	intake     bool
}

type patient struct {
	g   *generator
	r   *rand.Rand
	n   int
	id  string
	ref string
	seq [numKinds]int

	female         bool
	given          []string
	family         string
	birth          time.Time
	race           ombCategory
	hispanic       bool
	lang           language
	town           town
	street         string
	married        bool
	smoking        code
	heightCm       float64
	weightKg       float64
	bsa            float64
	pediatric      bool
	survivor       bool // treated before the record window; seen for surveillance only
	cancer         *cancer
	stage          int // 1..4; 0 when the cancer is not staged
	diagnosed      time.Time
	regimen        *regimen
	surgery        bool
	comorbidities  []*comorbidity
	allergies      []allergen
	noKnownAllergy bool
	visits         []visit

	oncologist, nurse, surgeon *staff
	site                       *site
	org                        *organization

	// References to resources already emitted that later ones point at.
	cancerRef, metastasisRef string
	comorbidityRefs          []string
	careTeamRef              string
	portRef                  string
	regimenRequests          []string
	touched                  []string // targets of the next Provenance
	lastWeightKg             float64
	markerLevel              float64
	treatmentDone            bool
	fluSeason                int
}

func (g *generator) newPatient(n int) *patient {
	p := &patient{
		g:   g,
		r:   rand.New(rand.NewPCG(uint64(g.opts.Seed), streamPatient+uint64(n))),
		n:   n,
		id:  "p" + pad(n, 4),
		ref: "Patient/p" + pad(n, 4),
	}
	p.touched = make([]string, 0, 32)
	p.planDemographics()
	p.planDisease()
	p.planTimeline()
	p.lastWeightKg = p.weightKg
	if p.pediatric {
		// A child weighed at diagnosis was smaller than at Now.
		h := p.heightCm - p.growthCm(p.diagnosed)
		p.lastWeightKg = p.weightKg * (h / p.heightCm) * (h / p.heightCm)
	}
	return p
}

func (p *patient) planDemographics() {
	r, now := p.r, p.g.opts.Now
	p.pediatric = r.Float64() < 0.05
	p.female = r.IntN(2) == 0
	var age float64
	if p.pediatric {
		// Childhood ALL peaks at 2-5 years; some infants, some teenagers.
		age = math.Max(0.3, math.Min(17.5, 1.0+r.ExpFloat64()*4.0))
	} else {
		age = math.Max(24, math.Min(94, 64+r.NormFloat64()*11))
	}
	p.birth = startOfDay(now.AddDate(0, 0, -int(age*365.25)))
	if p.female {
		p.given = []string{pick(r, givenFemale)}
	} else {
		p.given = []string{pick(r, givenMale)}
	}
	if r.Float64() < 0.45 {
		if p.female {
			p.given = append(p.given, pick(r, givenFemale))
		} else {
			p.given = append(p.given, pick(r, givenMale))
		}
	}
	p.family = pick(r, familyNames)
	p.race = races[weighted(r, raceWeights)]
	p.hispanic = r.Float64() < ethHispanic.weight
	switch {
	case p.hispanic && r.Float64() < 0.4:
		p.lang = langSpanish
	case p.race.code == "2028-9" && r.Float64() < 0.3:
		p.lang = pick(r, []language{langVietnamese, langChinese})
	default:
		p.lang = langEnglish
	}
	p.town = pick(r, towns)
	p.street = streetLine(r)
	p.married = !p.pediatric && r.Float64() < 0.55
	p.planBody(age)
}

// planBody sets height and weight from rough growth curves for children and
// sex-specific adult distributions; BSA (Mosteller) drives chemotherapy doses.
func (p *patient) planBody(age float64) {
	r := p.r
	if p.pediatric {
		switch {
		case age < 1:
			p.heightCm = 50 + 25*age
			p.weightKg = 3.4 + 6.6*age
		case age < 2:
			p.heightCm = 75 + 12*(age-1)
			p.weightKg = 10 + 2.2*(age-1)
		default:
			p.heightCm = 87 + 6.2*(age-2)
			p.weightKg = 12.2 + 2.6*(age-2)
		}
		p.heightCm *= 1 + r.NormFloat64()*0.03
		p.weightKg *= 1 + r.NormFloat64()*0.08
	} else if p.female {
		p.heightCm = 162 + r.NormFloat64()*6.5
		p.weightKg = math.Max(42, 74+r.NormFloat64()*15)
	} else {
		p.heightCm = 176 + r.NormFloat64()*7
		p.weightKg = math.Max(50, 88+r.NormFloat64()*16)
	}
	p.bsa = math.Sqrt(p.heightCm * p.weightKg / 3600)
}

func (p *patient) ageAt(t time.Time) float64 {
	return t.Sub(p.birth).Hours() / 24 / 365.25
}

func (p *patient) planDisease() {
	r := p.r
	if p.pediatric {
		p.cancer = cancers[len(cancers)-1]
	} else {
		weights := make([]float64, len(cancers))
		for i, c := range cancers {
			if c.pediatric || (c.sex == 'F' && !p.female) || (c.sex == 'M' && p.female) {
				continue
			}
			weights[i] = c.weight
		}
		p.cancer = cancers[weighted(r, weights)]
	}
	if p.cancer.stages != [4]float64{} {
		p.stage = 1 + weighted(r, p.cancer.stages[:])
	}
	// Nearly half of an oncology practice's census are survivors of
	// earlier, curable disease, treated before the record window.
	p.survivor = !p.pediatric && p.stage < 4 && r.Float64() < 0.6
	p.regimen = p.cancer.treat(r, p.stage)
	p.surgery = p.cancer.surgery != nil && p.stage >= 1 && p.stage <= 3 &&
		(p.cancer.key != "lung" || p.stage <= 2) && (p.cancer.key != "prostate" || p.stage <= 2 && r.Float64() < 0.5)

	smoke := []float64{0.55, 0.30, 0.12, 0.03} // never, former, daily, occasional
	if p.cancer.key == "lung" {
		smoke = []float64{0.12, 0.50, 0.33, 0.05}
	}
	p.smoking = smokingValues[weighted(r, smoke)]

	if !p.pediatric {
		age := p.ageAt(p.g.opts.Now)
		scale := math.Min(1, math.Max(0.2, (age-30)/30))
		for _, c := range comorbidities {
			if r.Float64() < c.prevalence*scale {
				p.comorbidities = append(p.comorbidities, c)
			}
		}
		if p.weightKg/(p.heightCm*p.heightCm/10000) >= 30 {
			p.comorbidities = append(p.comorbidities, comorbObesity)
		}
	}
	weights := make([]float64, len(allergens))
	for i, a := range allergens {
		weights[i] = a.weight
	}
	switch x := r.Float64(); {
	case x < 0.22:
		p.allergies = append(p.allergies, allergens[weighted(r, weights)])
		if r.Float64() < 0.25 {
			second := allergens[weighted(r, weights)]
			if second.substance != p.allergies[0].substance {
				p.allergies = append(p.allergies, second)
			}
		}
	case x < 0.75:
		p.noKnownAllergy = true
	}

	pr := p.g.practice
	if p.pediatric {
		p.oncologist, p.nurse, p.site, p.org = pr.pedOncologist, pr.pedNurse, pr.peds, pr.childrens
	} else {
		p.oncologist = pick(r, pr.oncologists)
		p.site, p.org = p.oncologist.site, pr.oncology
		var colleagues []*staff // nurses working where the oncologist sees patients
		for _, n := range pr.nurses {
			if n.site == p.site {
				colleagues = append(colleagues, n)
			}
		}
		p.nurse = pick(r, colleagues)
	}
	p.surgeon = pick(r, pr.surgeons)
}

// planTimeline lays out the visits from diagnosis to Now: biopsy, consult,
// surgery, port placement, treatment visits at the regimen's interval, then
// surveillance every three months for two years and every six after.
func (p *patient) planTimeline() {
	r, now := p.r, p.g.opts.Now
	if p.survivor {
		p.planSurvivorship()
		return
	}
	days := 20 + r.IntN(456)
	if p.pediatric {
		// Not diagnosed in the first weeks of life.
		ageDays := int(now.Sub(p.birth).Hours() / 24)
		days = 20 + r.IntN(max(1, min(456, ageDays-80)))
	}
	dx := clinicTime(r, now.AddDate(0, 0, -days))
	p.diagnosed = dx
	p.visits = make([]visit, 0, 24)
	add := func(k visitKind, start time.Time, minutes, cycle int) bool {
		end := start.Add(time.Duration(minutes) * time.Minute)
		if k == visitSurgery && p.cancer.inpatient {
			end = start.AddDate(0, 0, 2+r.IntN(4)).Add(time.Duration(r.IntN(240)) * time.Minute)
		}
		if end.After(now) {
			return false
		}
		p.visits = append(p.visits, visit{kind: k, start: start, end: end, cycle: cycle})
		return true
	}
	add(visitBiopsy, dx, 45+r.IntN(60), 0)
	t := clinicTime(r, dx.AddDate(0, 0, 7+r.IntN(10)))
	add(visitConsult, t, 60, 0)
	if p.surgery {
		t = clinicTime(r, t.AddDate(0, 0, 10+r.IntN(16)))
		add(visitSurgery, t, 240+r.IntN(120), 0)
		t = t.AddDate(0, 0, 21+r.IntN(21))
	}
	reg := p.regimen
	p.treatmentDone = true
	if reg != nil && reg.visits() > 0 {
		if reg.port {
			t = clinicTime(r, t.AddDate(0, 0, 4+r.IntN(7)))
			add(visitPort, t, 60+r.IntN(45), 0)
		}
		t = clinicTime(r, t.AddDate(0, 0, 3+r.IntN(8)))
		for c := 1; c <= reg.visits(); c++ {
			if !add(visitTreatment, t, 60+r.IntN(180), c) {
				p.treatmentDone = false
			}
			delay := 0
			if r.Float64() < 0.12 { // held for counts or toxicity
				delay = 7
			}
			t = clinicTime(r, t.AddDate(0, 0, reg.interval+delay))
		}
	}
	first := t.AddDate(0, 0, 21+r.IntN(21))
	for t = first; t.Before(now); {
		add(visitFollowUp, clinicTime(r, t), 20+r.IntN(20), 0)
		if t.Sub(dx) < 2*365*24*time.Hour {
			t = t.AddDate(0, 3, 0)
		} else {
			t = t.AddDate(0, 6, 0)
		}
	}
}

// recordWindow is how far back the practice's records reach; survivors
// diagnosed earlier appear only through their recent surveillance visits.
const recordWindowMonths = 24

// planSurvivorship places a survivor's diagnosis two to seven years back and
// their surveillance visits, every six months, inside the record window.
func (p *patient) planSurvivorship() {
	r, now := p.r, p.g.opts.Now
	p.diagnosed = clinicTime(r, now.AddDate(-2-r.IntN(5), -r.IntN(12), 0))
	p.treatmentDone = true
	if m := p.cancer.marker; m != nil {
		p.markerLevel = m.high * (0.3 + 0.5*r.Float64())
		if !p.surgery && p.regimen == nil {
			p.markerLevel = m.high * (1 + r.Float64()) // untreated, under surveillance
		}
	}
	t := now.AddDate(0, -recordWindowMonths, r.IntN(180))
	p.visits = make([]visit, 0, 5)
	for first := true; t.Before(now); first = false {
		start := clinicTime(r, t)
		end := start.Add(time.Duration(20+r.IntN(20)) * time.Minute)
		if end.After(now) {
			break
		}
		p.visits = append(p.visits, visit{kind: visitFollowUp, start: start, end: end, intake: first})
		t = t.AddDate(0, 6, 0)
	}
}

// notAfterNow clamps the time of a follow-on event (a report issued, a
// note signed) that would otherwise fall after the timeline's end.
func (p *patient) notAfterNow(t time.Time) time.Time {
	if t.After(p.g.opts.Now) {
		return p.g.opts.Now
	}
	return t
}

func startOfDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, practiceZone)
}

// clinicTime moves t onto a weekday between 08:00 and 15:30, when the
// practice sees patients.
func clinicTime(r *rand.Rand, t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 8, 0, 0, 0, practiceZone)
	switch d.Weekday() {
	case time.Saturday:
		d = d.AddDate(0, 0, 2)
	case time.Sunday:
		d = d.AddDate(0, 0, 1)
	}
	return d.Add(time.Duration(r.IntN(16)) * 30 * time.Minute).Add(time.Duration(r.IntN(4)*5) * time.Minute)
}

// onTreatment reports whether systemic therapy is still under way at Now.
func (p *patient) onTreatment() bool {
	if p.regimen == nil {
		return false
	}
	if p.regimen.visits() == 0 {
		// Adjuvant oral therapy runs five years from its start.
		return !p.survivor || p.diagnosed.AddDate(5, 2, 0).After(p.g.opts.Now)
	}
	return !p.treatmentDone
}

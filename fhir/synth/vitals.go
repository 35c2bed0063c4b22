package synth

import (
	"math"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Vital signs, one Observation per US Core vital-signs profile. Values come
// from the patient's body and conditions, so they stay plausible across
// visits (weight drifts during chemotherapy, hypertensives run higher).

var (
	catVitalSigns = code{sysObsCat, "vital-signs", "Vital Signs"}

	vsBP        = lnc("85354-9", "Blood pressure panel with all children optional")
	vsSystolic  = lnc("8480-6", "Systolic blood pressure")
	vsDiastolic = lnc("8462-4", "Diastolic blood pressure")
	vsBMI       = lnc("39156-5", "Body mass index (BMI) [Ratio]")
	vsHeight    = lnc("8302-2", "Body height")
	vsWeight    = lnc("29463-7", "Body weight")
	vsTemp      = lnc("8310-5", "Body temperature")
	vsHeartRate = lnc("8867-4", "Heart rate")
	vsRespRate  = lnc("9279-1", "Respiratory rate")
	vsO2Sat     = lnc("2708-6", "Oxygen saturation in Arterial blood")
	vsPulseOx   = lnc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
	vsHeadCirc  = lnc("9843-4", "Head Occipital-frontal circumference")
	vsHeadPct   = lnc("8289-1", "Head Occipital-frontal circumference Percentile")
	vsPedBMI    = lnc("59576-9", "Body mass index (BMI) [Percentile] Per age and sex")
	vsPedWeight = lnc("77606-2", "Weight-for-length Per age and sex")
)

// observation starts an Observation with the elements every profile here
// requires, in the order R4 lists them.
func (p *patient) observation(profile string, category, c *fhirjson.Object, enc string, at time.Time, extra int) *fhirjson.Object {
	r := resource("Observation", p.newID(kindObservation), profile, 6+extra)
	add(r, "status", "final")
	add(r, "category", list(category))
	add(r, "code", c)
	add(r, "subject", ref(p.ref))
	add(r, "encounter", ref(enc))
	add(r, "effectiveDateTime", dateTime(at))
	return r
}

// vital emits a single-valued vital sign taken by the patient's nurse.
func (p *patient) vital(profile string, c code, v float64, prec int, unit, ucum, enc string, at time.Time) {
	r := p.observation(profile, catVitalSigns.concept(), c.concept(), enc, at, 2)
	add(r, "performer", list(ref(p.nurse.ref())))
	add(r, "valueQuantity", quantity(v, prec, unit, ucum))
	p.emit(r)
}

func (p *patient) hasComorbidity(c *comorbidity) bool {
	for _, x := range p.comorbidities {
		if x == c {
			return true
		}
	}
	return false
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// emitVitals records the nursing vital signs of a visit; full adds height,
// BMI and the paediatric growth measures taken at intake and in children.
func (p *patient) emitVitals(v *visit, enc string, full bool) {
	r := p.r
	at := v.start.Add(time.Duration(5+r.IntN(10)) * time.Minute)
	age := p.ageAt(at)

	var sys, dia, hr, rr float64
	if p.pediatric {
		sys = clamp(88+2*age+r.NormFloat64()*7, 70, 130)
		dia = clamp(52+age+r.NormFloat64()*5, 35, 85)
		hr = clamp(135-6*age+r.NormFloat64()*8, 65, 170)
		rr = clamp(36-1.4*age+r.NormFloat64()*3, 14, 50)
	} else {
		sys = 118 + 0.35*(age-50) + r.NormFloat64()*9
		if p.hasComorbidity(comorbHypertension) {
			sys += 14
		}
		sys = clamp(sys, 92, 188)
		dia = clamp(0.55*sys+12+r.NormFloat64()*6, 52, 112)
		hr = 74 + r.NormFloat64()*9
		if p.hasComorbidity(comorbAFib) {
			hr += math.Abs(r.NormFloat64()) * 18
		}
		hr = clamp(hr, 48, 130)
		rr = 16 + r.NormFloat64()*1.5
		if p.hasComorbidity(comorbCOPD) || p.cancer.key == "lung" {
			rr += 2
		}
		rr = clamp(rr, 11, 28)
	}
	bp := p.observation(profBP, catVitalSigns.concept(), conceptText("Blood pressure", vsBP), enc, at, 2)
	add(bp, "performer", list(ref(p.nurse.ref())))
	add(bp, "component", list(
		obj(kv("code", vsSystolic.concept()), kv("valueQuantity", quantity(math.Round(sys), 0, "mmHg", "mm[Hg]"))),
		obj(kv("code", vsDiastolic.concept()), kv("valueQuantity", quantity(math.Round(dia), 0, "mmHg", "mm[Hg]"))),
	))
	p.emit(bp)
	p.vital(profHeartRate, vsHeartRate, math.Round(hr), 0, "beats/minute", "/min", enc, at)
	// Treatment and surveillance visits chart the short set; respiratory
	// rate and oxygen saturation are taken at intake, in children and
	// whenever the lungs are involved.
	short := !full && !p.pediatric && !p.hasComorbidity(comorbCOPD) && p.cancer.key != "lung"
	if !short {
		p.vital(profRespRate, vsRespRate, math.Round(rr), 0, "breaths/minute", "/min", enc, at)
	}

	temp := 36.8 + r.NormFloat64()*0.25
	if v.kind == visitTreatment && r.Float64() < 0.03 {
		temp = 38.1 + r.Float64()*0.8 // febrile on chemotherapy
	}
	p.vital(profTemp, vsTemp, clamp(temp, 35.8, 40), 1, "C", "Cel", enc, at)

	if !short {
		spo2 := 97.5 + r.NormFloat64()*1.0
		if p.hasComorbidity(comorbCOPD) || p.cancer.key == "lung" {
			spo2 -= 2.5
		}
		ox := p.observation(profPulseOx, catVitalSigns.concept(), conceptText("Oxygen saturation", vsO2Sat, vsPulseOx), enc, at, 2)
		add(ox, "performer", list(ref(p.nurse.ref())))
		add(ox, "valueQuantity", quantity(math.Round(clamp(spo2, 86, 100)), 0, "%", "%"))
		p.emit(ox)
	}

	p.lastWeightKg *= p.weightDrift(v)
	p.vital(profWeight, vsWeight, p.lastWeightKg, 1, "kg", "kg", enc, at)

	if !full && !p.pediatric {
		return
	}
	height := p.heightCm
	if p.pediatric {
		height = p.heightCm - p.growthCm(at)
	}
	p.vital(profHeight, vsHeight, height, 1, "cm", "cm", enc, at)
	bmi := p.lastWeightKg / (height * height / 10000)
	p.vital(profBMI, vsBMI, bmi, 1, "kg/m2", "kg/m2", enc, at)
	if !p.pediatric {
		return
	}
	pct := clamp(50+r.NormFloat64()*22, 2, 98)
	switch {
	case age < 3:
		p.vital(profPedWeight, vsPedWeight, pct, 0, "%", "%", enc, at)
		hc := 35 + 12*math.Min(age, 1) + 2.5*clamp(age-1, 0, 1) + 1.2*math.Max(age-2, 0)
		p.vital(profHeadCirc, vsHeadCirc, hc*(1+r.NormFloat64()*0.005), 1, "cm", "cm", enc, at)
		p.vital(profHeadCircPct, vsHeadPct, clamp(pct+r.NormFloat64()*10, 2, 98), 0, "%", "%", enc, at)
		if age >= 2 {
			p.vital(profPedBMI, vsPedBMI, pct, 0, "%", "%", enc, at)
		}
	default:
		p.vital(profPedBMI, vsPedBMI, pct, 0, "%", "%", enc, at)
	}
}

// weightDrift is the multiplicative weight change since the last visit:
// loss on chemotherapy, recovery afterwards, growth in children.
func (p *patient) weightDrift(v *visit) float64 {
	noise := 1 + p.r.NormFloat64()*0.008
	switch {
	case p.pediatric:
		return noise * 1.01
	case v.kind == visitTreatment:
		return noise * 0.994
	case v.kind == visitFollowUp:
		return noise * 1.003
	}
	return noise
}

// growthCm is the height a child will gain between t and Now; heightCm is
// the height at Now, so earlier visits measure less.
func (p *patient) growthCm(t time.Time) float64 {
	years := p.g.opts.Now.Sub(t).Hours() / 24 / 365.25
	switch age := p.ageAt(t); {
	case years <= 0:
		return 0
	case age < 1:
		return 22 * years
	case age < 3:
		return 10 * years
	}
	return 6 * years
}

package synth

import (
	"math"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Laboratory results, grouped under DiagnosticReports the way a laboratory
// reports panels, plus the non-laboratory observations of an oncology intake:
// smoking status, ECOG performance status and clinical stage.

// labTest is a LOINC-coded test with its UCUM unit and reference interval;
// low < 0 means the interval has only an upper limit (tumour markers).
type labTest struct {
	code      code
	unit      string
	low, high float64
	prec      int
}

var (
	labWBC       = labTest{lnc("6690-2", "Leukocytes [#/volume] in Blood by Automated count"), "10*3/uL", 4.5, 11.0, 1}
	labHgbFemale = labTest{lnc("718-7", "Hemoglobin [Mass/volume] in Blood"), "g/dL", 12.0, 15.5, 1}
	labHgbMale   = labTest{lnc("718-7", "Hemoglobin [Mass/volume] in Blood"), "g/dL", 13.5, 17.5, 1}
	labPlatelets = labTest{lnc("777-3", "Platelets [#/volume] in Blood by Automated count"), "10*3/uL", 150, 450, 0}
	labANC       = labTest{lnc("751-8", "Neutrophils [#/volume] in Blood by Automated count"), "10*3/uL", 1.8, 7.7, 2}
	labCreat     = labTest{lnc("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"), "mg/dL", 0.6, 1.3, 2}
	labALT       = labTest{lnc("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma"), "U/L", 7, 56, 0}
	labAST       = labTest{lnc("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma"), "U/L", 10, 40, 0}
	labBilirubin = labTest{lnc("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma"), "mg/dL", 0.1, 1.2, 1}
	labAlbumin   = labTest{lnc("1751-7", "Albumin [Mass/volume] in Serum or Plasma"), "g/dL", 3.5, 5.0, 1}
	labGlucose   = labTest{lnc("2345-7", "Glucose [Mass/volume] in Serum or Plasma"), "mg/dL", 70, 99, 0}

	markerCEA   = labTest{lnc("2039-6", "Carcinoembryonic Ag [Mass/volume] in Serum or Plasma"), "ng/mL", -1, 3.0, 1}
	markerCA125 = labTest{lnc("10334-1", "Cancer Ag 125 [Units/volume] in Serum or Plasma"), "U/mL", -1, 35, 0}
	markerPSA   = labTest{lnc("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma"), "ng/mL", -1, 4.0, 2}
	markerCA199 = labTest{lnc("24108-3", "Cancer Ag 19-9 [Units/volume] in Serum or Plasma"), "U/mL", -1, 37, 0}
	markerCA153 = labTest{lnc("6875-9", "Cancer Ag 15-3 [Units/volume] in Serum or Plasma"), "U/mL", -1, 30, 0}

	panelCBC = lnc("58410-2", "CBC panel - Blood by Automated count")
	panelCMP = lnc("24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma")

	catLaboratory = code{sysObsCat, "laboratory", "Laboratory"}
	catLabReport  = code{sysV2_0074, "LAB", "Laboratory"}
)

var interpretations = map[byte]code{
	'L': {sysInterp, "L", "Low"},
	'N': {sysInterp, "N", "Normal"},
	'H': {sysInterp, "H", "High"},
}

// labObservation builds one result, interpreted against its interval.
func (p *patient) labObservation(t *labTest, v float64, enc string, at time.Time) string {
	issued := p.notAfterNow(at.Add(time.Duration(40+p.r.IntN(80)) * time.Minute))
	v = math.Max(v, math.Pow(10, -float64(t.prec)))
	r := p.observation(profLab, catLaboratory.concept(), t.code.concept(), enc, at, 5)
	add(r, "issued", dateTime(issued))
	add(r, "performer", list(refDisplay(p.g.practice.lab.ref(), p.g.practice.lab.name)))
	add(r, "valueQuantity", quantity(v, t.prec, t.unit, t.unit))
	flag := byte('N')
	switch {
	case t.low >= 0 && v < t.low:
		flag = 'L'
	case v > t.high:
		flag = 'H'
	}
	add(r, "interpretation", list(interpretations[flag].concept()))
	rng := obj()
	if t.low >= 0 {
		rng.Members = append(rng.Members, kv("low", quantity(t.low, t.prec, t.unit, t.unit)))
	}
	rng.Members = append(rng.Members, kv("high", quantity(t.high, t.prec, t.unit, t.unit)))
	add(r, "referenceRange", list(rng))
	return p.emit(r)
}

// labReport groups results under the panel that was ordered.
func (p *patient) labReport(panel code, enc string, at time.Time, results []string) {
	r := resource("DiagnosticReport", p.newID(kindReport), profDRLab, 9)
	add(r, "status", "final")
	add(r, "category", list(catLabReport.concept()))
	add(r, "code", panel.concept())
	add(r, "subject", ref(p.ref))
	add(r, "encounter", ref(enc))
	add(r, "effectiveDateTime", dateTime(at))
	add(r, "issued", dateTime(p.notAfterNow(at.Add(2*time.Hour))))
	add(r, "performer", list(refDisplay(p.g.practice.lab.ref(), p.g.practice.lab.name)))
	refs := make([]any, len(results))
	for i, res := range results {
		refs[i] = ref(res)
	}
	add(r, "result", refs)
	p.emit(r)
}

// normal draws a value around the middle of the reference interval.
func (p *patient) normal(t *labTest, spread float64) float64 {
	mid, half := (t.low+t.high)/2, (t.high-t.low)/2
	return mid + half*spread*p.r.NormFloat64()
}

// emitCBC reports a blood count; on chemotherapy counts fall toward a nadir
// that deepens with each cycle.
func (p *patient) emitCBC(enc string, at time.Time, cycle int) {
	suppress := 1.0
	if cycle > 1 {
		suppress = 1 - (0.25+0.04*math.Min(float64(cycle), 8))*p.r.Float64()
	}
	hgb := &labHgbMale
	if p.female || p.pediatric {
		hgb = &labHgbFemale
	}
	anemia := 1 - 0.012*math.Min(float64(cycle), 10)
	results := []string{
		p.labObservation(&labWBC, p.normal(&labWBC, 0.45)*suppress, enc, at),
		p.labObservation(hgb, p.normal(hgb, 0.5)*anemia, enc, at),
		p.labObservation(&labPlatelets, p.normal(&labPlatelets, 0.45)*(0.6+0.4*suppress), enc, at),
		p.labObservation(&labANC, p.normal(&labANC, 0.4)*suppress, enc, at),
	}
	p.labReport(panelCBC, enc, at, results)
}

// emitCMP reports the chemistry panel subset oncologists dose by: kidney and
// liver function, albumin and glucose.
func (p *patient) emitCMP(enc string, at time.Time) {
	creat := p.normal(&labCreat, 0.35)
	if p.hasComorbidity(comorbCKD) {
		creat *= 1.7
	}
	if p.pediatric {
		creat *= 0.5
	}
	liver := 1.0
	if p.stage == 4 && p.cancer.metastasis[1].code == "C78.7" {
		liver = 1.8
	}
	glucose := p.normal(&labGlucose, 0.4)
	if p.hasComorbidity(comorbDiabetes) {
		glucose += 45 + 20*p.r.Float64()
	}
	results := []string{
		p.labObservation(&labCreat, creat, enc, at),
		p.labObservation(&labALT, p.normal(&labALT, 0.4)*liver, enc, at),
		p.labObservation(&labAST, p.normal(&labAST, 0.4)*liver, enc, at),
		p.labObservation(&labBilirubin, p.normal(&labBilirubin, 0.4)*liver, enc, at),
		p.labObservation(&labAlbumin, p.normal(&labAlbumin, 0.5)-0.15*float64(p.stage), enc, at),
		p.labObservation(&labGlucose, glucose, enc, at),
	}
	p.labReport(panelCMP, enc, at, results)
}

type markerPhase int

const (
	markerBaseline markerPhase = iota
	markerOnTreatment
	markerSurveillance
)

// emitMarker reports the cancer's tumour marker: raised at diagnosis in
// proportion to stage, falling with treatment, low in remission and
// drifting upward in metastatic disease.
func (p *patient) emitMarker(enc string, at time.Time, phase markerPhase) {
	t := p.cancer.marker
	if t == nil {
		return
	}
	r := p.r
	switch phase {
	case markerBaseline:
		p.markerLevel = t.high * (0.5 + 0.8*float64(p.stage) + r.ExpFloat64()*float64(p.stage))
	case markerOnTreatment:
		p.markerLevel = math.Max(t.high*0.3, p.markerLevel*(0.55+0.25*r.Float64()))
	case markerSurveillance:
		if p.stage == 4 {
			p.markerLevel *= 0.95 + 0.25*r.Float64()
		} else if p.inRemission() {
			p.markerLevel = t.high * (0.2 + 0.4*r.Float64())
		} else {
			p.markerLevel *= 0.85 + 0.25*r.Float64()
		}
	}
	res := p.labObservation(t, p.markerLevel, enc, at)
	p.labReport(t.code, enc, at, []string{res})
}

var smokingValues = []code{
	sct("266919005", "Never smoked tobacco (finding)"),
	sct("8517006", "Ex-smoker (finding)"),
	sct("449868002", "Smokes tobacco daily (finding)"),
	sct("428041000124106", "Occasional tobacco smoker (finding)"),
}

func (p *patient) smokingStatus(enc string, at time.Time) *fhirjson.Object {
	r := p.observation(profSmoking, code{sysObsCat, "social-history", "Social History"}.concept(),
		lnc("72166-2", "Tobacco smoking status").concept(), enc, at, 2)
	add(r, "performer", list(ref(p.nurse.ref())))
	add(r, "valueCodeableConcept", p.smoking.concept())
	return r
}

var ecogAnswers = []code{
	lnc("LA9622-7", "Fully active, able to carry on all pre-disease performance without restriction"),
	lnc("LA9623-5", "Restricted in physically strenuous activity but ambulatory and able to carry out work of a light or sedentary nature, e.g., light house work, office work"),
	lnc("LA9624-3", "Ambulatory and capable of all selfcare but unable to carry out any work activities. Up and about more than 50% of waking hours"),
	lnc("LA9625-0", "Capable of only limited selfcare, confined to bed or chair more than 50% of waking hours"),
}

// ecog records the ECOG performance status, worse with stage and age.
func (p *patient) ecog(enc string, at time.Time) *fhirjson.Object {
	score := 0
	x := p.r.Float64() + 0.18*float64(p.stage-1) + 0.01*math.Max(0, p.ageAt(at)-65)
	switch {
	case x > 1.35:
		score = 3
	case x > 1.0:
		score = 2
	case x > 0.6:
		score = 1
	}
	cats := list(
		code{sysObsCat, "survey", "Survey"}.concept(),
		code{sysUSCoreBase + "CodeSystem/us-core-category", "functional-status", "Functional Status"}.concept(),
	)
	r := resource("Observation", p.newID(kindObservation), profScreening, 9)
	add(r, "status", "final")
	add(r, "category", cats)
	add(r, "code", lnc("89247-1", "ECOG Performance Status score").concept())
	add(r, "subject", ref(p.ref))
	add(r, "encounter", ref(enc))
	add(r, "effectiveDateTime", dateTime(at))
	add(r, "performer", list(ref(p.oncologist.ref())))
	add(r, "valueCodeableConcept", conceptText("ECOG "+itoa(score), ecogAnswers[score]))
	return r
}

// stagingObservation records the clinical stage group, focused on the
// cancer Condition it stages.
func (p *patient) stagingObservation(enc string, at time.Time) *fhirjson.Object {
	r := resource("Observation", p.newID(kindObservation), profClinicalResult, 9)
	add(r, "status", "final")
	add(r, "category", list(code{sysObsCat, "exam", "Exam"}.concept()))
	add(r, "code", lnc("21908-9", "Stage group.clinical Cancer").concept())
	add(r, "subject", ref(p.ref))
	add(r, "focus", list(ref(p.cancerRef)))
	add(r, "encounter", ref(enc))
	add(r, "effectiveDateTime", dateTime(at))
	add(r, "performer", list(ref(p.oncologist.ref())))
	add(r, "valueCodeableConcept", conceptText("Stage "+stageNames[p.stage-1], stageCodes[p.stage-1]))
	return r
}

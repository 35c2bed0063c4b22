package synth

import (
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// emitVisit emits one encounter and everything recorded during it, then a
// Provenance naming the clinician who documented the visit.
func (p *patient) emitVisit(v *visit) {
	author := p.oncologist
	switch v.kind {
	case visitBiopsy, visitSurgery, visitPort:
		if !p.pediatric {
			author = p.surgeon
		}
	}
	enc := p.emit(p.encounterResource(v, author))
	switch v.kind {
	case visitBiopsy:
		p.biopsyVisit(v, enc, author)
	case visitConsult:
		p.consultVisit(v, enc)
	case visitSurgery:
		p.surgeryVisit(v, enc)
	case visitPort:
		p.portVisit(v, enc, author)
	case visitTreatment:
		p.treatmentVisit(v, enc)
	case visitFollowUp:
		p.followUpVisit(v, enc)
	}
	p.provenance(p.notAfterNow(v.end.Add(time.Duration(5+p.r.IntN(55))*time.Minute)), author)
}

var (
	classAmbulatory = code{sysActCode, "AMB", "ambulatory"}
	classInpatient  = code{sysActCode, "IMP", "inpatient encounter"}
	partPrimary     = code{sysPartType, "PPRF", "primary performer"}
	partAttender    = code{sysPartType, "ATND", "attender"}
	dischargeHome   = code{"http://www.nubc.org/patient-discharge", "01", "Discharged to home or self care (routine discharge)"}
	encIDSystem     = "http://lakeshore-oncology.example.org/fhir/sid/encounter"
)

// encounterTypes gives each visit kind its coded type and human text.
var encounterTypes = [...]struct {
	typ  code
	text string
}{
	visitBiopsy:    {encTypeProblem, "Diagnostic biopsy"},
	visitConsult:   {encTypeConsult, "New patient oncology consultation"},
	visitSurgery:   {encTypeProblem, "Oncologic surgery"},
	visitPort:      {encTypeProblem, "Implanted port placement"},
	visitTreatment: {encTypeProblem, "Chemotherapy treatment visit"},
	visitFollowUp:  {encTypeFollowUp, "Oncology follow-up visit"},
}

// visitSite is where a visit happens: procedures at the surgical pavilion,
// everything else at the patient's clinic.
func (p *patient) visitSite(v *visit) *site {
	if p.pediatric {
		return p.site
	}
	switch v.kind {
	case visitBiopsy, visitSurgery, visitPort:
		return p.g.practice.surgical
	}
	return p.site
}

func (p *patient) encounterResource(v *visit, author *staff) *fhirjson.Object {
	r := resource("Encounter", p.newID(kindEncounter), profEncounter, 12)
	id := r.String("id")
	add(r, "identifier", list(obj(kv("use", "usual"), kv("system", encIDSystem), kv("value", id))))
	add(r, "status", "finished")
	inpatient := v.kind == visitSurgery && p.cancer.inpatient
	if inpatient {
		add(r, "class", classInpatient.coding())
	} else {
		add(r, "class", classAmbulatory.coding())
	}
	et := encounterTypes[v.kind]
	hormonal := v.kind == visitTreatment && p.regimen.admin == adminHormonal
	switch {
	case hormonal:
		et.text = "Hormone therapy injection visit"
	case v.kind == visitTreatment && len(p.regimen.phaseAt(v.cycle-1)) == 0:
		et.text = "Oral chemotherapy review visit"
	}
	add(r, "type", list(conceptText(et.text, et.typ)))
	add(r, "subject", p.subject())
	participants := list(obj(
		kv("type", list(partPrimary.concept())),
		kv("period", period(v.start, v.end)),
		kv("individual", refDisplay(author.ref(), author.display())),
	))
	if v.kind == visitTreatment || v.kind == visitConsult {
		participants = append(participants, obj(
			kv("type", list(partAttender.concept())),
			kv("period", period(v.start, v.end)),
			kv("individual", refDisplay(p.nurse.ref(), p.nurse.display())),
		))
	}
	add(r, "participant", participants)
	add(r, "period", period(v.start, v.end))
	if v.kind == visitTreatment && !hormonal {
		add(r, "reasonCode", list(procChemotherapy.concept()))
	}
	add(r, "reasonReference", list(ref(p.cancerRef)))
	add(r, "diagnosis", list(obj(
		kv("condition", ref(p.cancerRef)),
		kv("use", code{"http://terminology.hl7.org/CodeSystem/diagnosis-role", "billing", "Billing"}.concept()),
		kv("rank", integer(1)),
	)))
	if inpatient {
		add(r, "hospitalization", obj(kv("dischargeDisposition", dischargeHome.concept())))
	}
	s := p.visitSite(v)
	add(r, "location", list(obj(
		kv("location", refDisplay(s.ref(), s.name)),
		kv("status", "completed"),
		kv("period", period(v.start, v.end)),
	)))
	add(r, "serviceProvider", refDisplay(p.org.ref(), p.org.name))
	return r
}

func (p *patient) biopsyVisit(v *visit, enc string, by *staff) {
	if p.pediatric {
		p.emitVitals(v, enc, false)
	}
	at := v.start.Add(20 * time.Minute)
	p.emit(p.procedureResource(p.cancer.biopsy, "", enc, by, at, v.end.Add(-10*time.Minute), &p.cancer.site, ""))
	p.emit(p.pathologyReport(enc, v.end, false))
}

func (p *patient) consultVisit(v *visit, enc string) {
	p.emitVitals(v, enc, true)
	at := v.start.Add(15 * time.Minute)
	if !p.pediatric {
		p.emit(p.smokingStatus(enc, at))
		p.emit(p.ecog(enc, at))
	}
	if p.stage > 0 {
		p.emit(p.stagingObservation(enc, v.start.Add(45*time.Minute)))
	}
	labs := v.start.Add(time.Duration(3+p.r.IntN(8)) * time.Minute) // drawn at check-in
	p.emitCBC(enc, labs, 0)
	p.emitCMP(enc, labs)
	p.emitMarker(enc, labs, markerBaseline)
	if !p.pediatric {
		p.emit(p.imagingReport(enc, v.start.Add(2*time.Minute), true))
	}
	p.emitOrders(v, enc)
	p.emit(p.clinicalNote(noteConsult, enc, v, p.oncologist))
	p.emitCarePlan(v, enc)
}

func (p *patient) surgeryVisit(v *visit, enc string) {
	surgery := *p.cancer.surgery
	start := v.start.Add(45 * time.Minute)
	end := start.Add(time.Duration(90+p.r.IntN(120)) * time.Minute)
	p.emit(p.procedureResource(surgery, "", enc, p.surgeon, start, end, &p.cancer.site, ""))
	p.emit(p.pathologyReport(enc, end, true))
	p.emit(p.clinicalNote(noteOperative, enc, &visit{kind: v.kind, start: start, end: end}, p.surgeon))
	if p.cancer.inpatient {
		p.emit(p.clinicalNote(noteDischarge, enc, v, p.surgeon))
	}
	p.markerLevel *= 0.35
}

func (p *patient) portVisit(v *visit, enc string, by *staff) {
	at := v.start.Add(20 * time.Minute)
	p.portRef = p.emit(p.portDevice(at))
	c := procPortAdult
	if p.ageAt(at) < 5 {
		c = procPortChild
	}
	p.emit(p.procedureResource(c, "Implanted port placement", enc, by, at, v.end.Add(-10*time.Minute), nil, p.portRef))
}

func (p *patient) treatmentVisit(v *visit, enc string) {
	p.emitVitals(v, enc, false)
	labs := v.start.Add(time.Duration(3+p.r.IntN(8)) * time.Minute)
	if p.regimen.admin != adminHormonal { // hormonal injections need no blood counts
		p.emitCBC(enc, labs, v.cycle)
	}
	if v.cycle%6 == 1 {
		p.emitCMP(enc, labs)
	}
	if v.cycle%4 == 0 {
		p.emitMarker(enc, labs, markerOnTreatment)
	}
	if len(p.regimen.phaseAt(v.cycle-1)) > 0 { // oral regimens are reviewed, not administered
		start := v.start.Add(30 * time.Minute)
		p.emit(p.procedureResource(p.regimen.admin, p.regimen.name+", cycle "+itoa(v.cycle), enc, p.nurse, start, v.end.Add(-5*time.Minute), nil, ""))
	}
	for _, t := range toxicities {
		if p.r.Float64() < t.chance {
			p.encounterDiagnosis(t, enc, v.start)
		}
	}
	p.maybeFlu(v, enc)
}

func (p *patient) followUpVisit(v *visit, enc string) {
	p.emitVitals(v, enc, p.pediatric || v.intake)
	if v.intake {
		p.emit(p.smokingStatus(enc, v.start.Add(15*time.Minute)))
	}
	labs := v.start.Add(time.Duration(3+p.r.IntN(8)) * time.Minute)
	if p.pediatric {
		p.emitCBC(enc, labs, 0)
	}
	p.emitMarker(enc, labs, markerSurveillance)
	if !p.pediatric && p.seq[kindEncounter]%3 == 0 {
		p.emit(p.imagingReport(enc, v.start.Add(2*time.Minute), false))
	}
	p.emit(p.clinicalNote(noteProgress, enc, v, p.oncologist))
	if v.intake {
		p.emitOrders(v, enc)
		p.emitCarePlan(v, enc)
	}
	p.maybeFlu(v, enc)
}

// maybeFlu gives the seasonal vaccines at the first visit of each autumn:
// influenza to everyone from six months of age (patients on chemotherapy
// are urged to have it), the COVID-19 booster to the adults who accept it.
func (p *patient) maybeFlu(v *visit, enc string) {
	m := v.start.Month()
	if m < time.September || m > time.December || p.ageAt(v.start) < 0.5 {
		return
	}
	season := v.start.Year()
	if p.fluSeason == season {
		return
	}
	p.fluSeason = season
	at := v.start.Add(v.end.Sub(v.start) / 2)
	p.emit(p.immunizationResource(vaxFlu, at, enc, p.nurse))
	if !p.pediatric && p.r.Float64() < 0.4 {
		p.emit(p.immunizationResource(vaxCovid, at, enc, p.nurse))
	}
}

var (
	agentAuthor    = code{sysProvAgent, "author", "Author"}
	agentCustodian = code{sysProvAgent, "custodian", "Custodian"}
)

// provenance records who authored everything emitted since the previous
// Provenance, on behalf of which organization.
func (p *patient) provenance(recorded time.Time, author *staff) {
	if len(p.touched) == 0 {
		return
	}
	targets := make([]any, len(p.touched))
	for i, t := range p.touched {
		targets[i] = ref(t)
	}
	p.touched = p.touched[:0]
	r := resource("Provenance", p.newID(kindProvenance), profProvenance, 4)
	add(r, "target", targets)
	add(r, "recorded", dateTime(recorded))
	add(r, "agent", list(
		obj(
			kv("type", agentAuthor.concept()),
			kv("who", refDisplay(author.ref(), author.display())),
			kv("onBehalfOf", refDisplay(author.org.ref(), author.org.name)),
		),
		obj(
			kv("type", agentCustodian.concept()),
			kv("who", refDisplay(p.org.ref(), p.org.name)),
		),
	))
	p.g.emit(r)
}

func itoa(n int) string { return pad(n, 1) }

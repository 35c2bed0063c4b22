package synth

import (
	"math"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Orders and procedures: the regimen's MedicationRequests with doses
// computed from the patient's body, supportive care, reconciled home
// medications, and the procedures and implanted port of a course of care.

// treatmentStart is when systemic therapy starts: the first treatment visit
// if it has happened, else a planned date three weeks after the visit.
func (p *patient) treatmentStart(after time.Time) time.Time {
	for _, v := range p.visits {
		if v.kind == visitTreatment {
			return v.start
		}
	}
	for _, v := range p.visits {
		if v.kind == visitSurgery {
			after = v.end.AddDate(0, 0, 28)
		}
	}
	return clinicTime(p.r, after.AddDate(0, 0, 21))
}

// emitOrders places the regimen orders at the consultation.
func (p *patient) emitOrders(v *visit, enc string) {
	authored := v.start.Add(v.end.Sub(v.start) * 3 / 4)
	reg := p.regimen
	if p.survivor {
		// Only continuing adjuvant oral therapy is still prescribed.
		if reg != nil && reg.visits() == 0 {
			start := p.diagnosed.AddDate(0, 2, 0)
			for _, d := range reg.oral {
				p.regimenRequests = append(p.regimenRequests, p.medicationRequest(d, enc, authored, start, start.AddDate(5, 0, 0), 0, 0))
			}
		}
		reg = nil
	}
	if reg != nil {
		start := p.treatmentStart(v.end)
		phaseStart := start
		for _, ph := range reg.phases {
			end := phaseStart.AddDate(0, 0, ph.visits*reg.interval)
			for _, d := range ph.infused {
				req := p.medicationRequest(d, enc, authored, phaseStart, end, ph.visits, reg.interval)
				p.regimenRequests = append(p.regimenRequests, req)
			}
			phaseStart = end
		}
		courseEnd := phaseStart
		for _, d := range reg.oral {
			end := time.Time{} // continuous
			if d.days > 0 {
				end = start.AddDate(0, 0, d.days)
				if d.days < reg.interval {
					end = courseEnd // days 1-N of every cycle, for the whole course
				}
			}
			p.regimenRequests = append(p.regimenRequests, p.medicationRequest(d, enc, authored, start, end, 0, 0))
		}
		if reg.emetogenic {
			for _, d := range []dose{supportOndansetron, supportDexa, supportProchlor} {
				p.medicationRequest(d, enc, authored, start, courseEnd, 0, 0)
			}
		}
		if reg.growth {
			p.medicationRequest(supportPegfil, enc, authored, start.AddDate(0, 0, 1), courseEnd, reg.visits(), reg.interval)
		}
	}
	for _, c := range p.comorbidities {
		if c.home != nil {
			p.homeMedication(c, enc, authored)
		}
	}
}

// doseMg scales a dose to the patient: by body surface area, or for
// carboplatin by the Calvert formula with a Cockcroft-Gault clearance
// capped at 125 mL/min as dosing guidelines require.
func (p *patient) doseMg(d dose) float64 {
	var mg float64
	switch d.basis {
	case perM2:
		mg = d.amount * p.bsa
	case auc:
		const creatinine = 0.95 // mg/dL, a typical baseline serum level
		age := p.ageAt(p.diagnosed)
		crcl := (140 - age) * p.weightKg / (72 * creatinine)
		if p.female {
			crcl *= 0.85
		}
		mg = d.amount * (math.Min(crcl, 125) + 25)
	default:
		mg = d.amount
	}
	if d.med == medVincristine {
		mg = math.Min(mg, 2)
	}
	switch {
	case mg >= 100:
		return math.Round(mg/10) * 10
	case mg >= 10:
		return math.Round(mg)
	}
	return math.Round(mg*100) / 100
}

func formatMg(mg float64) string { return string(num(mg, precisionOf(mg))) }

// medicationRequest orders one drug. visits > 0 means clinic-administered
// every interval days; otherwise it is taken at home perDay times a day.
// A zero end leaves the course open-ended.
func (p *patient) medicationRequest(d dose, enc string, authored, start, end time.Time, visits, interval int) string {
	now := p.g.opts.Now
	status := "active"
	if !end.IsZero() && end.Before(now) {
		status = "completed"
	}
	mg := p.doseMg(d)
	r := resource("MedicationRequest", p.newID(kindMedRequest), profMedRequest, 14)
	add(r, "status", status)
	add(r, "intent", "order")
	cat := code{sysMedReqCat, "community", "Community"}
	if visits > 0 {
		cat = code{sysMedReqCat, "outpatient", "Outpatient"}
	}
	add(r, "category", list(cat.concept()))
	add(r, "reportedBoolean", false)
	add(r, "medicationReference", refDisplay("Medication/"+d.med.id, d.med.text))
	add(r, "subject", p.subject())
	add(r, "encounter", ref(enc))
	add(r, "authoredOn", dateTime(authored))
	add(r, "requester", refDisplay(p.oncologist.ref(), p.oncologist.display()))
	add(r, "reasonReference", list(ref(p.cancerRef)))

	bounds := periodFrom(start)
	if !end.IsZero() {
		bounds = period(start, end)
	}
	repeat := obj(kv("boundsPeriod", bounds))
	if visits > 0 {
		repeat.Members = append(repeat.Members,
			kv("count", integer(visits)), kv("frequency", integer(1)),
			kv("period", integer(interval)), kv("periodUnit", "d"))
	} else {
		repeat.Members = append(repeat.Members,
			kv("frequency", integer(max(d.perDay, 1))), kv("period", integer(1)), kv("periodUnit", "d"))
	}
	text := formatMg(mg) + " mg " + d.how
	if d.basis == perM2 {
		text = formatMg(mg) + " mg (" + formatMg(d.amount) + " mg/m2, BSA " + string(num(p.bsa, 2)) + " m2) " + d.how
	}
	dosage := obj(
		kv("sequence", integer(1)),
		kv("text", text),
		kv("timing", obj(kv("repeat", repeat))),
	)
	if d.prn {
		dosage.Members = append(dosage.Members, kv("asNeededBoolean", true))
	}
	dosage.Members = append(dosage.Members,
		kv("route", d.route.concept()),
		kv("doseAndRate", list(obj(kv("doseQuantity", quantity(mg, precisionOf(mg), "mg", "mg"))))),
	)
	add(r, "dosageInstruction", list(dosage))
	if visits == 0 && d.route == routeOral {
		// A month's supply (or the short course), counted in milligrams.
		days := 30
		if d.days > 0 && d.days < days {
			days = d.days
		}
		total := mg * float64(days*max(d.perDay, 1))
		add(r, "dispenseRequest", obj(
			kv("numberOfRepeatsAllowed", integer(2)),
			kv("quantity", quantity(total, precisionOf(total), "mg", "mg")),
			kv("expectedSupplyDuration", obj(kv("value", integer(days)), kv("unit", "days"), kv("system", sysUCUM), kv("code", "d"))),
		))
	}
	return p.emit(r)
}

// precisionOf is the fewest fraction digits (up to three) that show v exactly.
func precisionOf(v float64) int {
	for prec := 0; prec < 3; prec++ {
		scaled := v * math.Pow10(prec)
		if math.Abs(scaled-math.Round(scaled)) < 1e-9 {
			return prec
		}
	}
	return 3
}

// homeMedication reconciles a chronic medication the patient reports taking,
// prescribed outside the practice.
func (p *patient) homeMedication(c *comorbidity, enc string, authored time.Time) {
	r := resource("MedicationRequest", p.newID(kindMedRequest), profMedRequest, 11)
	add(r, "status", "active")
	add(r, "intent", "plan")
	add(r, "category", list(code{sysMedReqCat, "community", "Community"}.concept()))
	add(r, "reportedBoolean", true)
	add(r, "medicationReference", refDisplay("Medication/"+c.home.id, c.home.text))
	add(r, "subject", p.subject())
	add(r, "encounter", ref(enc))
	add(r, "authoredOn", dateTime(authored))
	add(r, "reasonReference", list(ref(p.comorbidityRef(c))))
	add(r, "dosageInstruction", list(obj(
		kv("sequence", integer(1)),
		kv("text", formatMg(c.homeDose)+" mg by mouth once daily"),
		kv("timing", obj(kv("repeat", obj(kv("frequency", integer(1)), kv("period", integer(1)), kv("periodUnit", "d"))))),
		kv("route", routeOral.concept()),
		kv("doseAndRate", list(obj(kv("doseQuantity", quantity(c.homeDose, precisionOf(c.homeDose), "mg", "mg"))))),
	)))
	p.emit(r)
}

// emitPastTreatment records a survivor's surgery and chemotherapy, done
// before the record window, so their history is searchable.
func (p *patient) emitPastTreatment() {
	t := p.diagnosed.AddDate(0, 0, 25+p.r.IntN(20))
	if p.surgery {
		start := clinicTime(p.r, t)
		p.emit(p.procedureResource(*p.cancer.surgery, "", "", p.surgeon, start, start.Add(150*time.Minute), &p.cancer.site, ""))
		t = t.AddDate(0, 0, 35)
	}
	if reg := p.regimen; reg != nil && reg.visits() > 0 {
		start := clinicTime(p.r, t)
		end := start.AddDate(0, 0, reg.visits()*reg.interval).Add(3 * time.Hour)
		p.emit(p.procedureResource(procChemotherapy, reg.name+", "+itoa(reg.visits())+" treatment visits", "", p.oncologist, start, end, nil, ""))
	}
}

func (p *patient) comorbidityRef(c *comorbidity) string {
	for i, x := range p.comorbidities {
		if x == c {
			return p.comorbidityRefs[i]
		}
	}
	return p.cancerRef
}

// procedureResource records a completed procedure; device, when set, is
// the implanted device it placed.
// An empty enc records a procedure done before the record window.
func (p *patient) procedureResource(c code, text, enc string, by *staff, start, end time.Time, site *code, device string) *fhirjson.Object {
	if text == "" {
		text = c.display
	}
	r := resource("Procedure", p.newID(kindProcedure), profProcedure, 12)
	add(r, "status", "completed")
	add(r, "code", conceptText(text, c))
	add(r, "subject", p.subject())
	if enc != "" {
		add(r, "encounter", ref(enc))
	}
	add(r, "performedPeriod", period(start, end))
	add(r, "performer", list(obj(
		kv("actor", refDisplay(by.ref(), by.display())),
		kv("onBehalfOf", refDisplay(by.org.ref(), by.org.name)),
	)))
	add(r, "location", refDisplay(by.site.ref(), by.site.name))
	add(r, "reasonReference", list(ref(p.cancerRef)))
	if site != nil {
		add(r, "bodySite", list(site.concept()))
	}
	if device != "" {
		add(r, "focalDevice", list(obj(kv("manipulated", ref(device)))))
	}
	return r
}

// portDevice is the implanted venous access port, with a GS1 UDI whose
// human-readable form matches its parts.
func (p *patient) portDevice(at time.Time) *fhirjson.Object {
	r := resource("Device", p.newID(kindDevice), profDevice, 13)
	model := 1 + p.r.IntN(2)
	di := gtin("00849" + pad(731200+model, 8))
	made := startOfDay(at.AddDate(0, -2-p.r.IntN(10), -p.r.IntN(28)))
	expires := made.AddDate(3, 0, 0)
	lot := "PV" + pad(p.r.IntN(100000), 5)
	serial := "SN" + pad(p.n, 6) + pad(p.r.IntN(1000), 3)
	hrf := "(01)" + di + "(11)" + made.Format("060102") + "(17)" + expires.Format("060102") + "(10)" + lot + "(21)" + serial
	add(r, "udiCarrier", list(obj(
		kv("deviceIdentifier", di),
		kv("issuer", "http://hl7.org/fhir/NamingSystem/gs1-di"),
		kv("jurisdiction", "http://hl7.org/fhir/NamingSystem/fda-udi"),
		kv("carrierHRF", hrf),
		kv("entryType", "barcode"),
	)))
	add(r, "status", "active")
	add(r, "manufacturer", "Northcoast Vascular Access, Inc.")
	add(r, "manufactureDate", dateTime(made))
	add(r, "expirationDate", dateTime(expires))
	add(r, "lotNumber", lot)
	add(r, "serialNumber", serial)
	name := "Implantable port, single lumen, 8 Fr"
	if model == 2 {
		name = "Power-injectable implantable port, single lumen, 9.6 Fr"
	}
	add(r, "deviceName", list(obj(kv("name", name), kv("type", "user-friendly-name"))))
	add(r, "modelNumber", "NVA-"+pad(model, 3))
	add(r, "type", devicePort.concept())
	add(r, "patient", p.subject())
	return r
}

package synth

import (
	"html"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Narrative artefacts: pathology and imaging reports (DiagnosticReport with
// presentedForm), clinical notes (DocumentReference), and the goals and
// assessment-and-plan CarePlan written at the consultation.

var (
	catClinicalNote = code{sysUSCoreBase + "CodeSystem/us-core-documentreference-category", "clinical-note", "Clinical Note"}
	formatText      = code{"http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "urn:ihe:iti:xds:2017:mimeTypeSufficient", "mimeType Sufficient"}
)

func (p *patient) stageText() string {
	if p.stage == 0 {
		return ""
	}
	return "stage " + stageNames[p.stage-1] + " "
}

func (p *patient) pronoun() string {
	if p.female {
		return "She"
	}
	return "He"
}

func (p *patient) describe(at time.Time) string {
	age := int(p.ageAt(at))
	unit := "-year-old"
	if age < 2 {
		age, unit = int(p.ageAt(at)*12), "-month-old"
	}
	sex := "man"
	switch {
	case p.pediatric && p.female:
		sex = "girl"
	case p.pediatric:
		sex = "boy"
	case p.female:
		sex = "woman"
	}
	return itoa(age) + unit + " " + sex
}

// noteReport builds a DiagnosticReport note whose text is presented inline.
func (p *patient) noteReport(category, c code, title, enc string, at, issued time.Time, by *staff) *fhirjson.Object {
	r := resource("DiagnosticReport", p.newID(kindReport), profDRNote, 11)
	add(r, "status", "final")
	add(r, "category", list(category.concept()))
	add(r, "code", conceptText(title, c))
	add(r, "subject", p.subject())
	add(r, "encounter", ref(enc))
	add(r, "effectiveDateTime", dateTime(at))
	add(r, "issued", dateTime(issued))
	add(r, "performer", list(refDisplay(by.ref(), by.display())))
	add(r, "resultsInterpreter", list(refDisplay(by.ref(), by.display())))
	return r
}

// pathologyReport reports the biopsy or the surgical specimen.
func (p *patient) pathologyReport(enc string, at time.Time, surgical bool) *fhirjson.Object {
	path := p.g.practice.pathologist
	issued := p.notAfterNow(at.AddDate(0, 0, 2+p.r.IntN(3)).Add(time.Duration(p.r.IntN(300)) * time.Minute))
	specimen := "Core needle biopsy"
	if surgical {
		specimen = "Surgical resection specimen"
	}
	if p.pediatric {
		specimen = "Bone marrow aspirate and biopsy"
	}
	finding := p.cancer.snomed.display
	var b strings.Builder
	b.WriteString("SURGICAL PATHOLOGY REPORT\nSpecimen: ")
	b.WriteString(specimen + ", " + strings.ToLower(strings.TrimSuffix(p.cancer.site.display, " (body structure)")) + "\n")
	b.WriteString("Diagnosis: " + strings.TrimSuffix(finding, " (disorder)") + ".\n")
	if surgical {
		b.WriteString("Margins: negative; closest margin 4 mm.\n")
	}
	if p.pediatric {
		b.WriteString("Flow cytometry: precursor B-cell phenotype, CD10+, CD19+, TdT+. Blasts 86% of marrow cellularity.\n")
	}
	b.WriteString("Pathologist: " + path.display() + "\n")
	conclusion := strings.TrimSuffix(finding, " (disorder)") + ", confirmed on " + strings.ToLower(specimen) + "."
	r := p.noteReport(catPathology, reportPathology, "Surgical pathology report", enc, at, issued, path)
	add(r, "conclusion", conclusion)
	add(r, "conclusionCode", list(p.cancer.snomed.concept()))
	add(r, "presentedForm", list(attachment(b.String(), "Surgical pathology report", issued)))
	return r
}

// imagingReport is a staging or surveillance CT, scanned on the day of the
// visit and read by the radiologist.
func (p *patient) imagingReport(enc string, at time.Time, staging bool) *fhirjson.Object {
	rad := p.g.practice.radiologist
	issued := p.notAfterNow(at.Add(time.Duration(40+p.r.IntN(60)) * time.Minute))
	title := "CT chest, abdomen and pelvis with contrast"
	var impression string
	switch {
	case staging && p.stage == 4:
		impression = "Findings consistent with metastatic disease: " + strings.ToLower(strings.TrimSuffix(p.cancer.metastasis[0].display, " (disorder)")) + "."
	case staging:
		impression = "No evidence of distant metastatic disease."
	case p.stage == 4:
		impression = "Metastatic disease, stable compared with prior examination."
	case p.inRemission():
		impression = "No evidence of recurrent or metastatic disease."
	default:
		impression = "Post-treatment changes without evidence of progression."
	}
	text := "RADIOLOGY REPORT\nExamination: " + title + "\nIndication: " + strings.TrimSuffix(p.cancer.snomed.display, " (disorder)") +
		"\nImpression: " + impression + "\nRadiologist: " + rad.display() + "\n"
	r := p.noteReport(catRadiology, reportImaging, title, enc, at, issued, rad)
	add(r, "conclusion", impression)
	add(r, "presentedForm", list(attachment(text, title, issued)))
	return r
}

// clinicalNote is the visit note as a DocumentReference with its text inline.
func (p *patient) clinicalNote(kind code, enc string, v *visit, author *staff) *fhirjson.Object {
	signed := p.notAfterNow(v.end.Add(time.Duration(10+p.r.IntN(120)) * time.Minute))
	text := p.noteText(kind, v)
	r := resource("DocumentReference", p.newID(kindDocument), profDocRef, 11)
	add(r, "identifier", list(obj(kv("system", "urn:ietf:rfc:3986"), kv("value", "urn:uuid:"+uuid(p.r)))))
	add(r, "status", "current")
	add(r, "docStatus", "final")
	add(r, "type", conceptText(kind.display, kind))
	add(r, "category", list(catClinicalNote.concept()))
	add(r, "subject", p.subject())
	add(r, "date", dateTime(signed))
	add(r, "author", list(refDisplay(author.ref(), author.display())))
	add(r, "custodian", refDisplay(p.org.ref(), p.org.name))
	add(r, "content", list(obj(
		kv("attachment", attachment(text, kind.display, signed)),
		kv("format", formatText.coding()),
	)))
	add(r, "context", obj(
		kv("encounter", list(ref(enc))),
		kv("period", period(v.start, v.end)),
	))
	return r
}

func (p *patient) noteText(kind code, v *visit) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(kind.display) + "\nPatient: " + p.displayName() + "\nDate: " + date(v.start) + "\n\n")
	dx := strings.TrimSuffix(p.cancer.snomed.display, " (disorder)")
	switch kind {
	case noteConsult:
		b.WriteString("History: " + p.describe(v.start) + " referred for newly diagnosed " + p.stageText() + strings.ToLower(dx) +
			", biopsy-proven on " + date(p.diagnosed) + ".\n")
		if len(p.comorbidities) > 0 {
			b.WriteString("Past history: ")
			for i, c := range p.comorbidities {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(c.snomed.display, " (disorder)"), " (finding)")))
			}
			b.WriteString(".\n")
		}
		b.WriteString("Assessment and plan: " + p.planSentence() + "\n")
	case noteOperative:
		b.WriteString("Procedure: " + strings.TrimSuffix(p.cancer.surgery.display, " (procedure)") + ".\nFindings: tumour excised en bloc; specimen to pathology. Estimated blood loss minimal. No complications.\n")
	case noteDischarge:
		b.WriteString("Admitted for " + strings.ToLower(strings.TrimSuffix(p.cancer.surgery.display, " (procedure)")) + ". Uneventful post-operative course. Discharged home on " + date(v.end) + " with oncology follow-up.\n")
	default:
		b.WriteString(p.pronoun() + " returns for follow-up of " + p.stageText() + strings.ToLower(dx) + ". ")
		switch {
		case p.stage == 4:
			b.WriteString("Disease is being managed with systemic therapy; symptoms controlled.\n")
		case p.inRemission():
			b.WriteString("No clinical evidence of recurrence.\n")
		default:
			b.WriteString("Tolerating the plan of care; continue current management.\n")
		}
	}
	return b.String()
}

func (p *patient) planSentence() string {
	switch {
	case p.survivor && p.regimen != nil && p.regimen.visits() == 0:
		return "Survivorship care: continue " + p.regimen.name + " to complete five years; surveillance visits every six months."
	case p.survivor && (p.surgery || p.regimen != nil):
		return "Survivorship care after completed treatment: surveillance visits with tumour markers every six months and annual imaging."
	case p.survivor:
		return "Active surveillance with serial tumour markers every six months."
	case p.regimen != nil && p.regimen.visits() > 0:
		s := "Recommend " + p.regimen.name + ", " + itoa(p.regimen.visits()) + " treatment visits every " + itoa(p.regimen.interval) + " days"
		if p.surgery {
			s += " after " + strings.ToLower(strings.TrimSuffix(p.cancer.surgery.display, " (procedure)"))
		}
		return s + "."
	case p.regimen != nil:
		s := "Start " + p.regimen.name
		if p.surgery {
			s += " after " + strings.ToLower(strings.TrimSuffix(p.cancer.surgery.display, " (procedure)"))
		}
		return s + "."
	case p.surgery:
		return "Proceed to " + strings.ToLower(strings.TrimSuffix(p.cancer.surgery.display, " (procedure)")) + ", then surveillance."
	}
	return "Active surveillance with serial tumour markers every three months."
}

// emitCarePlan writes the goals and the assessment-and-plan CarePlan.
func (p *patient) emitCarePlan(v *visit, enc string) {
	var goals []any
	goal := func(text string, due time.Time) {
		r := resource("Goal", p.newID(kindGoal), profGoal, 8)
		status, achievement := "active", code{"http://terminology.hl7.org/CodeSystem/goal-achievement", "in-progress", "In Progress"}
		if due.Before(p.g.opts.Now) && p.inRemission() {
			status, achievement = "completed", code{"http://terminology.hl7.org/CodeSystem/goal-achievement", "achieved", "Achieved"}
		}
		add(r, "lifecycleStatus", status)
		add(r, "achievementStatus", achievement.concept())
		add(r, "description", obj(kv("text", text)))
		add(r, "subject", p.subject())
		add(r, "startDate", date(v.start))
		add(r, "target", list(obj(kv("dueDate", date(due)))))
		add(r, "expressedBy", refDisplay(p.oncologist.ref(), p.oncologist.display()))
		add(r, "addresses", list(ref(p.cancerRef)))
		goals = append(goals, ref(p.emit(r)))
	}
	chemo := p.regimen != nil && p.regimen.visits() > 0 && !p.survivor
	if chemo {
		days := p.regimen.visits() * p.regimen.interval
		goal("Complete "+p.regimen.name+" as planned", v.start.AddDate(0, 0, days+60))
		goal("Keep weight within 5% of baseline during treatment", v.start.AddDate(0, 0, days+30))
	}
	switch {
	case p.stage == 4:
		goal("Control disease and maintain quality of life", v.start.AddDate(1, 0, 0))
	case p.survivor:
		goal("No evidence of disease at five-year surveillance", p.diagnosed.AddDate(5, 0, 0))
	default:
		goal("No evidence of disease at two-year surveillance", v.start.AddDate(2, 0, 0))
	}

	status := "active"
	if p.inRemission() && !p.onTreatment() {
		status = "completed"
	}
	plan := p.planSentence()
	div := `<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Assessment</b>: ` + html.EscapeString(p.describe(v.start)+" with "+p.stageText()+
		strings.ToLower(strings.TrimSuffix(p.cancer.snomed.display, " (disorder)"))) + `.</p><p><b>Plan</b>: ` + html.EscapeString(plan) + `</p></div>`
	r := resource("CarePlan", p.newID(kindCarePlan), profCarePlan, 16)
	add(r, "text", obj(kv("status", "generated"), kv("div", div)))
	add(r, "status", status)
	add(r, "intent", "plan")
	add(r, "category", list(
		code{sysUSCoreBase + "CodeSystem/careplan-category", "assess-plan", "Assessment and Plan of Treatment"}.concept(),
	))
	add(r, "title", p.cancer.title+" treatment plan")
	add(r, "description", plan)
	add(r, "subject", p.subject())
	add(r, "encounter", ref(enc))
	add(r, "period", periodFrom(v.start))
	add(r, "created", dateTime(v.end))
	add(r, "author", refDisplay(p.oncologist.ref(), p.oncologist.display()))
	add(r, "careTeam", list(ref(p.careTeamRef)))
	addresses := list(ref(p.cancerRef))
	if p.metastasisRef != "" {
		addresses = append(addresses, ref(p.metastasisRef))
	}
	add(r, "addresses", addresses)
	add(r, "goal", goals)
	activities := make([]any, 0, len(p.regimenRequests)+1)
	for _, req := range p.regimenRequests {
		activities = append(activities, obj(kv("reference", ref(req))))
	}
	activities = append(activities, obj(kv("detail", obj(
		kv("kind", "ServiceRequest"),
		kv("code", sct("363679005", "Imaging (procedure)").concept()),
		kv("status", "scheduled"),
		kv("description", "Surveillance imaging and tumour markers per NCCN guidelines"),
	))))
	add(r, "activity", activities)
	p.emit(r)
}

package synth

import (
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// generate emits one patient: demographics and standing facts (allergies,
// problems, past immunizations, care team) first, then each visit in date
// order, each visit closed by a Provenance for what it produced.
func (p *patient) generate() {
	p.emit(p.patientResource())
	for _, a := range p.allergies {
		p.emit(p.allergyResource(&a))
	}
	if p.noKnownAllergy {
		p.emit(p.allergyResource(nil))
	}
	p.emitProblems()
	if p.survivor {
		p.emitPastTreatment()
	}
	p.emitPastImmunizations()
	p.careTeamRef = p.emit(p.careTeamResource())
	charted := p.diagnosed.Add(5 * time.Hour)
	if p.survivor && len(p.visits) > 0 {
		charted = p.visits[0].start // history entered when the chart was opened
	}
	p.provenance(charted, p.oncologist)
	for i := range p.visits {
		if p.g.err != nil {
			return
		}
		p.emitVisit(&p.visits[i])
	}
}

const (
	extRace      = sysUSCoreBase + "StructureDefinition/us-core-race"
	extEthnicity = sysUSCoreBase + "StructureDefinition/us-core-ethnicity"
	extBirthSex  = sysUSCoreBase + "StructureDefinition/us-core-birthsex"
	mrnSystem    = "http://lakeshore-oncology.example.org/fhir/sid/mrn"
)

func ombExtension(url string, c ombCategory) *fhirjson.Object {
	return obj(kv("url", url), kv("extension", list(
		obj(kv("url", "ombCategory"), kv("valueCoding", code{sysCDCRace, c.code, c.display}.coding())),
		obj(kv("url", "text"), kv("valueString", c.display)),
	)))
}

func (p *patient) patientResource() *fhirjson.Object {
	r := resource("Patient", p.id, profPatient, 12)
	eth := ethNonHispanic
	if p.hispanic {
		eth = ethHispanic
	}
	birthSex := "M"
	gender := "male"
	if p.female {
		birthSex, gender = "F", "female"
	}
	add(r, "extension", list(
		ombExtension(extRace, p.race),
		ombExtension(extEthnicity, eth),
		obj(kv("url", extBirthSex), kv("valueCode", birthSex)),
	))
	add(r, "identifier", list(obj(
		kv("use", "usual"),
		kv("type", conceptText("Medical Record Number", code{sysV2_0203, "MR", "Medical record number"})),
		kv("system", mrnSystem),
		kv("value", "MRN"+pad(700000+p.n*7, 8)),
	)))
	add(r, "active", true)
	given := make([]any, len(p.given))
	for i, g := range p.given {
		given[i] = g
	}
	add(r, "name", list(obj(kv("use", "official"), kv("family", p.family), kv("given", given))))
	add(r, "telecom", list(
		telecom("phone", phone(p.r), "mobile"),
		telecom("email", email(p.given[0], p.family, p.n), "home"),
	))
	add(r, "gender", gender)
	add(r, "birthDate", date(p.birth))
	add(r, "address", list(address(p.street, p.town, "home")))
	marital := code{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "S", "Never Married"}
	if p.married {
		marital = code{"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"}
	}
	add(r, "maritalStatus", marital.concept())
	add(r, "communication", list(obj(
		kv("language", code{sysLanguage, p.lang.tag, p.lang.display}.concept()),
		kv("preferred", true),
	)))
	add(r, "generalPractitioner", list(refDisplay(p.oncologist.ref(), p.oncologist.display())))
	add(r, "managingOrganization", refDisplay(p.org.ref(), p.org.name))
	return r
}

// inRemission reports whether a treated, non-metastatic cancer is in
// remission at Now: treatment finished and the patient under surveillance.
func (p *patient) inRemission() bool {
	if p.stage == 4 || !p.treatmentDone || len(p.visits) == 0 {
		return false
	}
	treated := p.surgery || (p.regimen != nil && p.regimen.visits() > 0)
	return treated && p.visits[len(p.visits)-1].kind == visitFollowUp
}

func (p *patient) displayName() string {
	return p.given[0] + " " + p.family
}

func (p *patient) subject() *fhirjson.Object { return refDisplay(p.ref, p.displayName()) }

// allergyResource records one allergy, or "no known allergy" when a is nil.
func (p *patient) allergyResource(a *allergen) *fhirjson.Object {
	r := resource("AllergyIntolerance", p.newID(kindAllergy), profAllergy, 10)
	add(r, "clinicalStatus", code{"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"}.concept())
	add(r, "verificationStatus", code{"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"}.concept())
	recorded := p.diagnosed.Add(-time.Duration(24*(30+p.r.IntN(900))) * time.Hour)
	if a == nil {
		add(r, "code", noKnownAllergy.concept())
		add(r, "patient", p.subject())
		add(r, "recordedDate", dateTime(recorded))
		return r
	}
	add(r, "type", "allergy")
	add(r, "category", list(a.category))
	add(r, "criticality", a.criticality)
	add(r, "code", a.substance.concept())
	add(r, "patient", p.subject())
	add(r, "recordedDate", dateTime(recorded))
	severity := "mild"
	if a.criticality == "high" {
		severity = "severe"
	}
	add(r, "reaction", list(obj(
		kv("manifestation", list(a.reaction.concept())),
		kv("severity", severity),
	)))
	return r
}

var (
	catProblem   = code{sysCondCat, "problem-list-item", "Problem List Item"}
	catEncDx     = code{sysCondCat, "encounter-diagnosis", "Encounter Diagnosis"}
	clinActive   = code{sysCondClin, "active", "Active"}
	clinResolved = code{sysCondClin, "resolved", "Resolved"}
	clinRemiss   = code{sysCondClin, "remission", "Remission"}
	verConfirmed = code{sysCondVer, "confirmed", "Confirmed"}
)

// emitProblems emits the problem list: long-standing comorbidities, the
// primary cancer with its stage and, in stage IV, the metastasis.
func (p *patient) emitProblems() {
	r := p.r
	for _, c := range p.comorbidities {
		onset := p.diagnosed.AddDate(-1-r.IntN(12), -r.IntN(12), 0)
		if onset.Before(p.birth.AddDate(18, 0, 0)) {
			onset = p.birth.AddDate(18, 0, 0)
		}
		res := p.problem(c.snomed, c.icd, clinActive, onset, p.diagnosed, nil)
		p.comorbidityRefs = append(p.comorbidityRefs, p.emit(res))
	}
	c := p.cancer
	status := clinActive
	if p.inRemission() {
		status = clinRemiss
	}
	res := p.problem(c.snomed, c.icd, status, p.diagnosed, p.diagnosed.Add(4*time.Hour), &c.site)
	if p.stage > 0 {
		add(res, "stage", list(obj(
			kv("summary", conceptText("Stage "+stageNames[p.stage-1]+" (AJCC 8th edition)", stageCodes[p.stage-1])),
		)))
	}
	p.cancerRef = p.emit(res)
	if p.stage == 4 {
		m := p.problem(c.metastasis[0], c.metastasis[1], clinActive, p.diagnosed, p.diagnosed.Add(4*time.Hour), nil)
		p.metastasisRef = p.emit(m)
	}
}

// problem builds a problem-list Condition.
func (p *patient) problem(snomed, icd10 code, status code, onset, recorded time.Time, site *code) *fhirjson.Object {
	r := resource("Condition", p.newID(kindCondition), profProblem, 10)
	add(r, "clinicalStatus", status.concept())
	add(r, "verificationStatus", verConfirmed.concept())
	add(r, "category", list(catProblem.concept()))
	add(r, "code", conceptText(snomed.display, snomed, icd10))
	if site != nil {
		add(r, "bodySite", list(site.concept()))
	}
	add(r, "subject", p.subject())
	add(r, "onsetDateTime", dateTime(onset))
	add(r, "recordedDate", dateTime(recorded))
	add(r, "recorder", refDisplay(p.oncologist.ref(), p.oncologist.display()))
	return r
}

// encounterDiagnosis records a problem addressed at one visit.
func (p *patient) encounterDiagnosis(t toxicity, encRef string, at time.Time) string {
	r := resource("Condition", p.newID(kindCondition), profEncounterDx, 10)
	status := clinActive
	resolved := at.AddDate(0, 0, 7+p.r.IntN(14))
	if resolved.Before(p.g.opts.Now) {
		status = clinResolved
	}
	add(r, "clinicalStatus", status.concept())
	add(r, "verificationStatus", verConfirmed.concept())
	add(r, "category", list(catEncDx.concept()))
	add(r, "code", conceptText(t.snomed.display, t.snomed, t.icd))
	add(r, "subject", p.subject())
	add(r, "encounter", ref(encRef))
	add(r, "onsetDateTime", dateTime(at.Add(-time.Duration(24+p.r.IntN(96))*time.Hour)))
	if status == clinResolved {
		add(r, "abatementDateTime", dateTime(resolved))
	}
	add(r, "recordedDate", dateTime(at))
	add(r, "recorder", refDisplay(p.oncologist.ref(), p.oncologist.display()))
	return p.emit(r)
}

// emitPastImmunizations records vaccines given elsewhere before diagnosis,
// as reported by the patient.
func (p *patient) emitPastImmunizations() {
	if p.pediatric {
		return
	}
	for _, v := range []code{vaxTdap, vaxPneumo, vaxZoster} {
		if p.r.Float64() < 0.45 {
			at := clinicTime(p.r, p.diagnosed.AddDate(-1-p.r.IntN(6), -p.r.IntN(12), 0))
			p.emit(p.immunizationResource(v, at, "", nil))
		}
	}
}

// immunizationResource records a vaccine; given at the practice when
// encRef is set, else historical and patient-reported.
func (p *patient) immunizationResource(v code, at time.Time, encRef string, by *staff) *fhirjson.Object {
	r := resource("Immunization", p.newID(kindImmunization), profImmunization, 12)
	add(r, "status", "completed")
	add(r, "vaccineCode", v.concept())
	add(r, "patient", p.subject())
	if encRef != "" {
		add(r, "encounter", ref(encRef))
	}
	add(r, "occurrenceDateTime", dateTime(at))
	add(r, "recorded", dateTime(at))
	add(r, "primarySource", encRef != "")
	if encRef == "" {
		add(r, "reportOrigin", code{"http://terminology.hl7.org/CodeSystem/immunization-origin", "recall", "Parent/Guardian/Patient Recall"}.concept())
		return r
	}
	add(r, "location", refDisplay(p.site.ref(), p.site.name))
	add(r, "lotNumber", "L"+pad(p.r.IntN(1_000_000), 6))
	add(r, "site", code{"http://terminology.hl7.org/CodeSystem/v3-ActSite", "LA", "left arm"}.concept())
	add(r, "route", code{"http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "IM", "Injection, intramuscular"}.concept())
	add(r, "performer", list(obj(
		kv("function", code{"http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"}.concept()),
		kv("actor", refDisplay(by.ref(), by.display())),
	)))
	add(r, "protocolApplied", list(obj(kv("doseNumberPositiveInt", integer(1)))))
	return r
}

func (p *patient) careTeamResource() *fhirjson.Object {
	r := resource("CareTeam", p.newID(kindCareTeam), profCareTeam, 8)
	add(r, "status", "active")
	add(r, "category", list(code{sysLOINC, "LA28865-6", "Longitudinal care-coordination focused care team"}.concept()))
	add(r, "name", p.cancer.title+" care team for "+p.displayName())
	add(r, "subject", p.subject())
	add(r, "period", periodFrom(p.diagnosed))
	member := func(role code, s *staff) *fhirjson.Object {
		return obj(
			kv("role", list(role.concept())),
			kv("member", refDisplay(s.ref(), s.display())),
			kv("onBehalfOf", refDisplay(s.org.ref(), s.org.name)),
		)
	}
	participants := list(
		obj(kv("role", list(rolePatient.concept())), kv("member", p.subject())),
		member(p.oncologist.role, p.oncologist),
		member(p.nurse.role, p.nurse),
	)
	if p.surgery {
		participants = append(participants, member(p.surgeon.role, p.surgeon))
	}
	if p.regimen != nil && p.regimen.visits() > 0 && !p.pediatric {
		participants = append(participants, member(rolePharmac, p.g.practice.pharmacist))
	}
	add(r, "participant", participants)
	add(r, "managingOrganization", list(refDisplay(p.org.ref(), p.org.name)))
	return r
}

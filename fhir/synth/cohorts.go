package synth

import "github.com/fhirgraph/fhirgraph/fhir/fhirjson"

// Cohort Groups, emitted after every patient so members resolve. Each lists
// at most CohortLimit members (the first patients that qualify), which keeps
// memory bounded: Groups are the only data carried across patients.

type cohort struct {
	id, name string
	traitFn  func() *fhirjson.Object // builds Group.characteristic afresh per emission
	members  []string
}

type cohorts struct {
	limit               int
	byCancer            map[string]*cohort
	onTherapy, children *cohort
	all                 []*cohort
}

var (
	traitDiagnosis = sct("439401001", "Diagnosis (observable entity)")
	traitAge       = lnc("30525-0", "Age")
)

func newCohorts(limit int) *cohorts {
	cs := &cohorts{limit: limit, byCancer: make(map[string]*cohort)}
	for _, c := range cancers {
		co := &cohort{id: c.cohort, name: c.title + " patients", traitFn: func() *fhirjson.Object {
			return obj(kv("code", traitDiagnosis.concept()), kv("valueCodeableConcept", c.snomed.concept()), kv("exclude", false))
		}}
		cs.byCancer[c.key] = co
		cs.all = append(cs.all, co)
	}
	cs.onTherapy = &cohort{id: "cohort-active-chemotherapy", name: "Patients in an active course of chemotherapy", traitFn: func() *fhirjson.Object {
		return obj(kv("code", procChemotherapy.concept()), kv("valueBoolean", true), kv("exclude", false))
	}}
	cs.children = &cohort{id: "cohort-pediatric", name: "Pediatric oncology patients", traitFn: func() *fhirjson.Object {
		return obj(kv("code", traitAge.concept()),
			kv("valueRange", obj(kv("high", quantity(17, 0, "years", "a")))),
			kv("exclude", false))
	}}
	cs.all = append(cs.all, cs.onTherapy, cs.children)
	return cs
}

func (c *cohort) add(ref string, limit int) {
	if len(c.members) < limit {
		c.members = append(c.members, ref)
	}
}

func (cs *cohorts) add(p *patient) {
	cs.byCancer[p.cancer.key].add(p.ref, cs.limit)
	if p.onTreatment() && p.regimen.visits() > 0 && p.regimen.admin != adminHormonal {
		cs.onTherapy.add(p.ref, cs.limit)
	}
	if p.pediatric {
		cs.children.add(p.ref, cs.limit)
	}
}

func (g *generator) emitCohorts() {
	for _, c := range g.cohorts.all {
		r := resource("Group", c.id, profGroup, 8)
		add(r, "identifier", list(obj(kv("system", "http://lakeshore-oncology.example.org/fhir/sid/cohort"), kv("value", c.id))))
		add(r, "active", true)
		add(r, "type", "person")
		add(r, "actual", true)
		add(r, "name", c.name)
		add(r, "quantity", integer(len(c.members)))
		add(r, "characteristic", list(c.traitFn()))
		if len(c.members) > 0 {
			members := make([]any, len(c.members))
			for i, m := range c.members {
				members[i] = obj(kv("entity", ref(m)), kv("inactive", false))
			}
			add(r, "member", members)
		}
		g.emit(r)
	}
}

package synth

import (
	"strings"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// mandatoryByProfile lists, per claimed profile, the top-level elements the
// profile makes mandatory (min ≥ 1 in the US Core 6.1.0 snapshots), plus
// those its error-level invariants demand for our data (noted inline).
// A name ending in [x] matches any choice type.
var mandatoryByProfile = map[string][]string{
	profPatient:        {"identifier", "name", "gender"},
	profOrganization:   {"active", "name"},
	profLocation:       {"name"},
	profPractitioner:   {"identifier", "name"},
	profPractRole:      {"telecom", "practitioner", "organization"}, // pd-1, us-core-13
	profEncounter:      {"status", "class", "type", "subject"},
	profProblem:        {"category", "code", "subject"},
	profEncounterDx:    {"category", "code", "subject"},
	profLab:            {"status", "category", "code", "subject", "value[x]"}, // us-core-2
	profClinicalResult: {"status", "category", "code", "subject", "value[x]"},
	profScreening:      {"status", "category", "code", "subject", "value[x]"},
	profSmoking:        {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profBP:             {"status", "category", "code", "subject", "effective[x]", "component"},
	profBMI:            {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profHeight:         {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profWeight:         {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profTemp:           {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profHeartRate:      {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profRespRate:       {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profPulseOx:        {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profHeadCirc:       {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profHeadCircPct:    {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profPedBMI:         {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profPedWeight:      {"status", "category", "code", "subject", "effective[x]", "value[x]"},
	profMedication:     {"code"},
	profMedRequest:     {"status", "intent", "medication[x]", "subject"},
	profProcedure:      {"status", "code", "subject", "performed[x]"}, // us-core-7
	profImmunization:   {"status", "vaccineCode", "patient", "occurrence[x]"},
	profAllergy:        {"code", "patient"},
	profDRLab:          {"status", "category", "code", "subject", "effective[x]", "issued"}, // us-core-8, -9
	profDRNote:         {"status", "category", "code", "subject", "effective[x]"},           // us-core-10
	profDocRef:         {"status", "type", "category", "subject", "content"},
	profCarePlan:       {"text", "status", "intent", "category", "subject"},
	profCareTeam:       {"subject", "participant"},
	profGoal:           {"lifecycleStatus", "description", "subject"},
	profDevice:         {"type", "patient"},
	profProvenance:     {"target", "recorded", "agent"},
	profGroup:          {"type", "actual"},
}

// mandatoryWithin lists elements mandatory inside optional parents: when the
// parent is present, each instance of it must carry the child (from the
// same snapshots, e.g. Patient.telecom.system has min 1).
var mandatoryWithin = map[string][]string{
	profPatient:      {"identifier.system", "identifier.value", "telecom.system", "telecom.value", "communication.language", "name.family"},
	profPractitioner: {"identifier.system", "identifier.value", "name.family"},
	profPractRole:    {"telecom.system", "telecom.value"},
	profLocation:     {"position.longitude", "position.latitude"},
	profEncounter:    {"identifier.system", "identifier.value", "diagnosis.condition", "location.location"},
	profMedication:   {"ingredient.item[x]"},
	profImmunization: {"performer.actor", "protocolApplied.doseNumber[x]"},
	profAllergy:      {"reaction.manifestation"},
	profDevice:       {"udiCarrier.deviceIdentifier", "deviceName.name", "deviceName.type"},
	profProcedure:    {"focalDevice.manipulated"},
	profCareTeam:     {"participant.role", "participant.member"},
	profCarePlan:     {"text.status", "text.div", "activity.detail.status"},
	profDocRef:       {"content.attachment"},
	profProvenance:   {"agent.who", "agent.type"},
	profBP:           {"component.code", "component.valueQuantity"},
}

// missingWithin reports whether some instance of path's parent lacks its
// last segment; absent parents make the check vacuous.
func missingWithin(v any, path string) bool {
	head, rest, nested := strings.Cut(path, ".")
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if missingWithin(e, path) {
				return true
			}
		}
		return false
	case *fhirjson.Object:
		if !nested {
			return !hasElement(t, head)
		}
		child, ok := t.Get(head)
		return ok && missingWithin(child, rest)
	}
	return false
}

// requiredCoding is a coding a profile fixes by pattern: element must hold
// a CodeableConcept (or Coding) with this system and code.
type requiredCoding struct{ element, system, code string }

var vsCat = requiredCoding{"category", sysObsCat, "vital-signs"}

var fixedCodings = map[string][]requiredCoding{
	profBP:          {vsCat, {"code", sysLOINC, "85354-9"}},
	profBMI:         {vsCat, {"code", sysLOINC, "39156-5"}},
	profHeight:      {vsCat, {"code", sysLOINC, "8302-2"}},
	profWeight:      {vsCat, {"code", sysLOINC, "29463-7"}},
	profTemp:        {vsCat, {"code", sysLOINC, "8310-5"}},
	profHeartRate:   {vsCat, {"code", sysLOINC, "8867-4"}},
	profRespRate:    {vsCat, {"code", sysLOINC, "9279-1"}},
	profPulseOx:     {vsCat, {"code", sysLOINC, "59408-5"}, {"code", sysLOINC, "2708-6"}},
	profHeadCirc:    {vsCat, {"code", sysLOINC, "9843-4"}},
	profHeadCircPct: {vsCat, {"code", sysLOINC, "8289-1"}},
	profPedBMI:      {vsCat, {"code", sysLOINC, "59576-9"}},
	profPedWeight:   {vsCat, {"code", sysLOINC, "77606-2"}},
	profSmoking:     {{"category", sysObsCat, "social-history"}, {"code", sysLOINC, "72166-2"}},
	profLab:         {{"category", sysObsCat, "laboratory"}},
	profScreening:   {{"category", sysObsCat, "survey"}},
	profProblem:     {{"category", sysCondCat, "problem-list-item"}},
	profEncounterDx: {{"category", sysCondCat, "encounter-diagnosis"}},
	profDRLab:       {{"category", sysV2_0074, "LAB"}},
	profDocRef:      {{"category", sysUSCoreBase + "CodeSystem/us-core-documentreference-category", "clinical-note"}},
	profCarePlan:    {{"category", sysUSCoreBase + "CodeSystem/careplan-category", "assess-plan"}},
}

// valueUnits are the UCUM codes each vital-sign profile fixes or binds.
var valueUnits = map[string][]string{
	profBMI:         {"kg/m2"},
	profHeight:      {"cm", "[in_i]"},
	profWeight:      {"kg", "g", "[lb_av]"},
	profTemp:        {"Cel", "[degF]"},
	profHeartRate:   {"/min"},
	profRespRate:    {"/min"},
	profPulseOx:     {"%"},
	profHeadCirc:    {"cm", "[in_i]"},
	profHeadCircPct: {"%"},
	profPedBMI:      {"%"},
	profPedWeight:   {"%"},
}

func profileOf(r *fhirjson.Object) string {
	v, _ := r.Object("meta").Get("profile")
	list, _ := v.([]any)
	if len(list) == 0 {
		return ""
	}
	s, _ := list[0].(string)
	return s
}

func hasElement(r *fhirjson.Object, name string) bool {
	if choice, ok := strings.CutSuffix(name, "[x]"); ok {
		for _, m := range r.Members {
			if strings.HasPrefix(m.Name, choice) && len(m.Name) > len(choice) && m.Name[len(choice)] >= 'A' && m.Name[len(choice)] <= 'Z' {
				return true
			}
		}
		return false
	}
	_, ok := r.Get(name)
	return ok
}

// codings lists the codings of an element holding CodeableConcepts or
// Codings, singly or in an array.
func codings(v any) []*fhirjson.Object {
	var out []*fhirjson.Object
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			out = append(out, codings(e)...)
		}
	case *fhirjson.Object:
		if cs, ok := t.Get("coding"); ok {
			return codings(cs)
		}
		if t.String("system") != "" {
			out = append(out, t)
		}
	}
	return out
}

func hasCoding(r *fhirjson.Object, want requiredCoding) bool {
	v, _ := r.Get(want.element)
	for _, c := range codings(v) {
		if c.String("system") == want.system && c.String("code") == want.code {
			return true
		}
	}
	return false
}

func TestResourcesCarryTheirProfilesMandatoryElementsAndFixedCodes(t *testing.T) {
	seen := map[string]int{}
	for _, r := range generate(t, Options{Patients: 300, Seed: 1}) {
		where := r.String("resourceType") + "/" + r.String("id")
		prof := profileOf(r)
		seen[prof]++
		for _, name := range mandatoryByProfile[prof] {
			if !hasElement(r, name) {
				t.Errorf("%s (%s): missing mandatory %s", where, prof, name)
			}
		}
		for _, path := range mandatoryWithin[prof] {
			if missingWithin(r, path) {
				t.Errorf("%s (%s): missing mandatory %s", where, prof, path)
			}
		}
		for _, want := range fixedCodings[prof] {
			if !hasCoding(r, want) {
				t.Errorf("%s (%s): %s lacks %s|%s", where, prof, want.element, want.system, want.code)
			}
		}
		if units, ok := valueUnits[prof]; ok {
			q := r.Object("valueQuantity")
			if q == nil || q.String("system") != sysUCUM || !contains(units, q.String("code")) {
				t.Errorf("%s (%s): valueQuantity %s is not UCUM %v", where, prof, fhirjson.Marshal(q), units)
			}
		}
	}
	// Every profile must actually be exercised, including the paediatric
	// vital signs only infants get.
	for prof := range mandatoryByProfile {
		if seen[prof] == 0 {
			t.Errorf("no resource claims %s", prof)
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestBloodPressureHasSystolicAndDiastolicInMillimetresOfMercury(t *testing.T) {
	n := 0
	for _, r := range generate(t, Options{Patients: 20, Seed: 4}) {
		if profileOf(r) != profBP {
			continue
		}
		n++
		comps, _ := r.Get("component")
		found := map[string]bool{}
		for _, c := range comps.([]any) {
			comp := c.(*fhirjson.Object)
			q := comp.Object("valueQuantity")
			if q == nil || q.String("code") != "mm[Hg]" || q.String("system") != sysUCUM {
				t.Errorf("%s: component without mm[Hg] value", r.String("id"))
			}
			for _, cd := range codings(comp.Object("code")) {
				found[cd.String("code")] = true
			}
		}
		if !found["8480-6"] || !found["8462-4"] {
			t.Errorf("%s: components %v, want systolic 8480-6 and diastolic 8462-4", r.String("id"), found)
		}
	}
	if n == 0 {
		t.Fatal("no blood pressure observations")
	}
}

// period returns the start and end of a resource's period member.
func periodOf(t *testing.T, o *fhirjson.Object) (time.Time, time.Time) {
	t.Helper()
	start, err1 := time.Parse(time.RFC3339, o.String("start"))
	end, err2 := time.Parse(time.RFC3339, o.String("end"))
	if err1 != nil || err2 != nil {
		t.Fatalf("bad period %s", fhirjson.Marshal(o))
	}
	return start, end
}

func TestClinicalTimelineIsConsistent(t *testing.T) {
	type span struct {
		start, end time.Time
		location   string
	}
	encounters := map[string]span{}
	lastEncounterStart := map[string]time.Time{}
	diagnosed := map[string]time.Time{}
	checked := 0
	for _, r := range generate(t, Options{Patients: 150, Seed: 21}) {
		where := r.String("resourceType") + "/" + r.String("id")
		patient := patientPrefix.FindString(r.String("id"))
		switch r.String("resourceType") {
		case "Encounter":
			s, e := periodOf(t, r.Object("period"))
			if !s.Before(e) {
				t.Errorf("%s: period ends before it starts", where)
			}
			if s.Before(lastEncounterStart[patient]) {
				t.Errorf("%s: encounters out of date order", where)
			}
			lastEncounterStart[patient] = s
			locs, _ := r.Get("location")
			loc := locs.([]any)[0].(*fhirjson.Object).Object("location").String("reference")
			encounters["Encounter/"+r.String("id")] = span{s, e, loc}
		case "Condition":
			if prof := profileOf(r); prof == profProblem && hasCoding(r, requiredCoding{"code", sysSNOMED, cancerCodeOf(r)}) {
				at, _ := time.Parse(time.RFC3339, r.String("onsetDateTime"))
				diagnosed[patient] = at
			}
		case "MedicationRequest":
			// Treatment never starts before the diagnosis.
			if d, ok := diagnosed[patient]; ok {
				authored, _ := time.Parse(time.RFC3339, r.String("authoredOn"))
				if authored.Before(d) {
					t.Errorf("%s: ordered %s before diagnosis %s", where, authored, d)
				}
			}
		}
		enc := r.Object("encounter")
		if enc == nil {
			continue
		}
		sp, ok := encounters[enc.String("reference")]
		if !ok {
			continue
		}
		for _, name := range []string{"effectiveDateTime", "occurrenceDateTime", "authoredOn"} {
			if s := r.String(name); s != "" {
				at, _ := time.Parse(time.RFC3339, s)
				checked++
				if at.Before(sp.start) || at.After(sp.end) {
					t.Errorf("%s: %s %s outside its encounter %s..%s", where, name, s, sp.start, sp.end)
				}
			}
		}
		if loc := r.Object("location"); loc != nil && loc.String("reference") != sp.location {
			t.Errorf("%s: at %s, its encounter at %s", where, loc.String("reference"), sp.location)
		}
		if pp := r.Object("performedPeriod"); pp != nil {
			s, e := periodOf(t, pp)
			checked++
			if s.Before(sp.start) || e.After(sp.end) {
				t.Errorf("%s: performed %s..%s outside its encounter", where, s, e)
			}
		}
	}
	if checked < 5000 || len(diagnosed) < 100 {
		t.Errorf("checked %d timed resources and %d diagnoses; the walk is not reaching them", checked, len(diagnosed))
	}
}

// cancerCodeOf returns the SNOMED code of r when it is one of the cancers.
func cancerCodeOf(r *fhirjson.Object) string {
	for _, c := range codings(r.Object("code")) {
		for _, k := range cancers {
			if c.String("code") == k.snomed.code {
				return k.snomed.code
			}
		}
	}
	return ""
}

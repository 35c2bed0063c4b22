package synth

import (
	"math/rand/v2"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// The practice: an adult oncology group, a children's cancer centre and the
// reference laboratory both use, with their sites and staff. Emitted first,
// since every patient resource points into it.

type organization struct {
	id, name  string
	typ       code
	npiBase   int    // 0 when the organization has no NPI
	clia      string // laboratory CLIA number, "" when none
	town      town
	line      string
	telephone string
}

func (o *organization) ref() string { return "Organization/" + o.id }

type site struct {
	id, name  string
	org       *organization
	town      town
	line      string
	telephone string
	typ       code
}

func (s *site) ref() string { return "Location/" + s.id }

type staff struct {
	n             int
	given, family string
	female        bool
	credential    string
	role          code
	org           *organization
	site          *site
	npi           string
	telephone     string
}

func (s *staff) practitionerID() string { return "prac-" + pad(s.n, 4) }
func (s *staff) ref() string            { return "Practitioner/" + s.practitionerID() }
func (s *staff) display() string        { return s.given + " " + s.family + ", " + s.credential }

type practice struct {
	oncology, childrens, lab *organization
	orgs                     []*organization
	sites                    []*site
	main, infusion, surgical *site
	peds, labSite            *site
	staff                    []*staff

	oncologists, surgeons, nurses, nps []*staff
	pedOncologist, pedNurse            *staff
	pathologist, radiologist           *staff
	pharmacist, radOncologist          *staff
}

var (
	orgTypeProvider = code{"http://terminology.hl7.org/CodeSystem/organization-type", "prov", "Healthcare Provider"}
	siteOncology    = code{"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "ONCL", "Medical oncology clinic"}
	sitePeds        = code{"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "PEDC", "Pediatrics clinic"}
	siteSurgery     = code{"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "HOSP", "Hospital"}
	siteLab         = code{"http://terminology.hl7.org/CodeSystem/v3-RoleCode", "HLAB", "hospital laboratory"}
	rolePathologist = code{sysNUCC, "207ZP0102X", "Anatomic Pathology & Clinical Pathology Physician"}
	roleRadiologist = code{sysNUCC, "2085R0202X", "Diagnostic Radiology Physician"}
)

func newPractice(r *rand.Rand) *practice {
	pr := &practice{}
	pr.oncology = &organization{id: "org-lakeshore-oncology", name: "Lakeshore Oncology Associates", typ: orgTypeProvider,
		npiBase: 124583901, town: towns[2], line: "11100 Euclid Ave", telephone: phone(r)}
	pr.childrens = &organization{id: "org-lakeshore-childrens", name: "Lakeshore Children's Cancer Center", typ: orgTypeProvider,
		npiBase: 124583917, town: towns[2], line: "10900 Carnegie Ave", telephone: phone(r)}
	pr.lab = &organization{id: "org-lakeshore-lab", name: "Lakeshore Reference Laboratory", typ: orgTypeProvider,
		clia: "36D0918273", town: towns[4], line: "6707 Powers Blvd", telephone: phone(r)}
	pr.orgs = []*organization{pr.oncology, pr.childrens, pr.lab}

	pr.main = &site{id: "loc-euclid-cancer-center", name: "Lakeshore Oncology Euclid Avenue Cancer Center", org: pr.oncology,
		town: towns[2], line: "11100 Euclid Ave", typ: siteOncology}
	pr.infusion = &site{id: "loc-westlake-infusion", name: "Lakeshore Oncology Westlake Infusion Center", org: pr.oncology,
		town: towns[6], line: "25501 Detroit Rd", typ: siteOncology}
	pr.surgical = &site{id: "loc-surgical-pavilion", name: "Lakeshore Surgical Pavilion", org: pr.oncology,
		town: towns[0], line: "2074 Abington Rd", typ: siteSurgery}
	pr.peds = &site{id: "loc-childrens-cancer-center", name: "Lakeshore Children's Cancer Center", org: pr.childrens,
		town: towns[2], line: "10900 Carnegie Ave", typ: sitePeds}
	pr.labSite = &site{id: "loc-reference-lab", name: "Lakeshore Reference Laboratory", org: pr.lab,
		town: towns[4], line: "6707 Powers Blvd", typ: siteLab}
	pr.sites = []*site{pr.main, pr.infusion, pr.surgical, pr.peds, pr.labSite}
	for _, s := range pr.sites {
		s.telephone = phone(r)
	}

	hire := func(role code, credential string, org *organization, at *site) *staff {
		s := &staff{n: len(pr.staff) + 1, role: role, credential: credential, org: org, site: at, female: r.IntN(2) == 0}
		if s.female {
			s.given = pick(r, givenFemale)
		} else {
			s.given = pick(r, givenMale)
		}
		s.family = pick(r, familyNames)
		s.npi = npi(123456000 + s.n*37)
		s.telephone = phone(r)
		pr.staff = append(pr.staff, s)
		return s
	}
	for i := 0; i < 4; i++ {
		role := roleMedOnc
		if i%2 == 1 {
			role = roleHemOnc
		}
		at := pr.main
		if i == 3 {
			at = pr.infusion
		}
		pr.oncologists = append(pr.oncologists, hire(role, "MD", pr.oncology, at))
	}
	pr.surgeons = []*staff{hire(roleSurgOnc, "MD", pr.oncology, pr.surgical), hire(roleSurgOnc, "DO", pr.oncology, pr.surgical)}
	pr.radOncologist = hire(roleRadOnc, "MD", pr.oncology, pr.main)
	pr.nps = []*staff{hire(roleNP, "NP", pr.oncology, pr.main), hire(roleNP, "NP", pr.oncology, pr.infusion)}
	pr.nurses = []*staff{hire(roleOncNurse, "RN", pr.oncology, pr.main), hire(roleOncNurse, "RN", pr.oncology, pr.infusion),
		hire(roleOncNurse, "RN", pr.oncology, pr.main)}
	pr.pharmacist = hire(rolePharmac, "PharmD", pr.oncology, pr.infusion)
	pr.pedOncologist = hire(rolePedHemOnc, "MD", pr.childrens, pr.peds)
	pr.pedNurse = hire(roleOncNurse, "RN", pr.childrens, pr.peds)
	pr.pathologist = hire(rolePathologist, "MD", pr.lab, pr.labSite)
	pr.radiologist = hire(roleRadiologist, "MD", pr.oncology, pr.main)
	return pr
}

func (g *generator) emitPractice() {
	pr := g.practice
	for _, o := range pr.orgs {
		g.emit(organizationResource(o))
	}
	for _, s := range pr.sites {
		g.emit(locationResource(s))
	}
	for _, s := range pr.staff {
		g.emit(practitionerResource(s))
	}
	for _, s := range pr.staff {
		g.emit(practitionerRoleResource(s))
	}
	for _, m := range formulary {
		g.emit(medicationResource(m))
	}
}

func telecom(system, value, use string) *fhirjson.Object {
	return obj(kv("system", system), kv("value", value), kv("use", use))
}

func organizationResource(o *organization) *fhirjson.Object {
	r := resource("Organization", o.id, profOrganization, 6)
	var ids []any
	if o.npiBase != 0 {
		ids = append(ids, obj(kv("system", sysNPI), kv("value", npi(o.npiBase))))
	}
	if o.clia != "" {
		ids = append(ids, obj(kv("system", "urn:oid:2.16.840.1.113883.4.7"), kv("value", o.clia)))
	}
	add(r, "identifier", ids)
	add(r, "active", true)
	add(r, "type", list(o.typ.concept()))
	add(r, "name", o.name)
	add(r, "telecom", list(telecom("phone", o.telephone, "work")))
	add(r, "address", list(address(o.line, o.town, "work")))
	return r
}

func locationResource(s *site) *fhirjson.Object {
	r := resource("Location", s.id, profLocation, 9)
	add(r, "status", "active")
	add(r, "name", s.name)
	add(r, "mode", "instance")
	add(r, "type", list(s.typ.concept()))
	add(r, "telecom", list(telecom("phone", s.telephone, "work")))
	add(r, "address", address(s.line, s.town, "work"))
	add(r, "position", obj(kv("longitude", num(s.town.lon, 4)), kv("latitude", num(s.town.lat, 4))))
	add(r, "managingOrganization", refDisplay(s.org.ref(), s.org.name))
	return r
}

func practitionerResource(s *staff) *fhirjson.Object {
	r := resource("Practitioner", s.practitionerID(), profPractitioner, 7)
	add(r, "identifier", list(obj(kv("system", sysNPI), kv("value", s.npi))))
	add(r, "active", true)
	name := obj(kv("use", "official"), kv("family", s.family), kv("given", list(s.given)))
	if s.credential == "MD" || s.credential == "DO" {
		name.Members = append(name.Members, kv("prefix", list("Dr.")))
	}
	name.Members = append(name.Members, kv("suffix", list(s.credential)))
	add(r, "name", list(name))
	add(r, "telecom", list(telecom("phone", s.telephone, "work")))
	add(r, "address", list(address(s.site.line, s.site.town, "work")))
	gender := "male"
	if s.female {
		gender = "female"
	}
	add(r, "gender", gender)
	return r
}

func practitionerRoleResource(s *staff) *fhirjson.Object {
	r := resource("PractitionerRole", "role-"+pad(s.n, 4), profPractRole, 7)
	add(r, "active", true)
	add(r, "practitioner", refDisplay(s.ref(), s.display()))
	add(r, "organization", refDisplay(s.org.ref(), s.org.name))
	add(r, "code", list(s.role.concept()))
	add(r, "specialty", list(s.role.concept()))
	add(r, "location", list(refDisplay(s.site.ref(), s.site.name)))
	add(r, "telecom", list(telecom("phone", s.telephone, "work")))
	return r
}

func medicationResource(m *medication) *fhirjson.Object {
	r := resource("Medication", m.id, profMedication, 4)
	add(r, "code", obj(kv("coding", list(m.product.coding())), kv("text", m.text)))
	add(r, "status", "active")
	add(r, "form", m.form.concept())
	add(r, "ingredient", list(obj(kv("itemCodeableConcept", m.ingredient.concept()), kv("isActive", true))))
	return r
}

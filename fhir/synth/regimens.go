package synth

// The practice formulary and the treatment regimens built from it. Doses
// follow the published schedules (NCCN-style), so dosageInstruction values
// are believable; they are not treatment advice.

// medication is one formulary entry, emitted once as a Medication resource.
// product is the RxNorm clinical drug where one is used in practice, else
// the ingredient itself; ingredient is always the RxNorm ingredient.
type medication struct {
	id         string
	product    code
	ingredient code
	text       string
	form       code
}

func rx(c, display string) code { return code{sysRxNorm, c, display} }

var (
	formInjection = code{sysSNOMED, "385219001", "Solution for injection"}
	formTablet    = code{sysSNOMED, "385055001", "Tablet"}
)

var (
	medOxaliplatin     = &medication{"med-oxaliplatin", rx("1736776", "10 ML oxaliplatin 5 MG/ML Injection"), rx("32592", "oxaliplatin"), "Oxaliplatin 5 mg/mL injection, 10 mL vial", formInjection}
	medLeucovorin      = &medication{"med-leucovorin", rx("1803932", "Leucovorin 100 MG Injection"), rx("6313", "leucovorin"), "Leucovorin calcium 100 mg injection", formInjection}
	medFluorouracil    = &medication{"med-fluorouracil", rx("1791701", "10 ML Fluorouracil 50 MG/ML Injection"), rx("4492", "fluorouracil"), "Fluorouracil 50 mg/mL injection, 10 mL vial", formInjection}
	medDoxorubicin     = &medication{"med-doxorubicin", rx("1790099", "10 ML Doxorubicin Hydrochloride 2 MG/ML Injection"), rx("3639", "doxorubicin"), "Doxorubicin hydrochloride 2 mg/mL injection, 10 mL vial", formInjection}
	medCyclophosphamid = &medication{"med-cyclophosphamide", rx("1734919", "Cyclophosphamide 1000 MG Injection"), rx("3002", "cyclophosphamide"), "Cyclophosphamide 1000 mg for injection", formInjection}
	medPaclitaxel      = &medication{"med-paclitaxel", rx("583214", "Paclitaxel 100 MG Injection"), rx("56946", "paclitaxel"), "Paclitaxel 100 mg injection", formInjection}
	medNabPaclitaxel   = &medication{"med-paclitaxel-protein-bound", rx("56946", "paclitaxel"), rx("56946", "paclitaxel"), "Paclitaxel protein-bound particles 100 mg for injectable suspension", formInjection}
	medCarboplatin     = &medication{"med-carboplatin", rx("597195", "Carboplatin 10 MG/ML Injectable Solution"), rx("40048", "carboplatin"), "Carboplatin 10 mg/mL injectable solution", formInjection}
	medDocetaxel       = &medication{"med-docetaxel", rx("72962", "docetaxel"), rx("72962", "docetaxel"), "Docetaxel 20 mg/mL injectable solution", formInjection}
	medPemetrexed      = &medication{"med-pemetrexed", rx("68446", "pemetrexed"), rx("68446", "pemetrexed"), "Pemetrexed 500 mg for injection", formInjection}
	medPembrolizumab   = &medication{"med-pembrolizumab", rx("1547545", "pembrolizumab"), rx("1547545", "pembrolizumab"), "Pembrolizumab 25 mg/mL injectable solution", formInjection}
	medGemcitabine     = &medication{"med-gemcitabine", rx("12574", "gemcitabine"), rx("12574", "gemcitabine"), "Gemcitabine 1 g for injection", formInjection}
	medCapecitabine    = &medication{"med-capecitabine", rx("194000", "capecitabine"), rx("194000", "capecitabine"), "Capecitabine 500 mg oral tablet", formTablet}
	medLetrozole       = &medication{"med-letrozole", rx("200064", "letrozole 2.5 MG Oral Tablet"), rx("72965", "letrozole"), "Letrozole 2.5 mg oral tablet", formTablet}
	medTamoxifen       = &medication{"med-tamoxifen", rx("198240", "Tamoxifen 10 MG Oral Tablet"), rx("10324", "tamoxifen"), "Tamoxifen 10 mg oral tablet", formTablet}
	medLeuprolide      = &medication{"med-leuprolide", rx("1946519", "0.25 ML Leuprolide Acetate 30 MG/ML Prefilled Syringe"), rx("42375", "leuprolide"), "Leuprolide acetate 7.5 mg prefilled syringe", formInjection}
	medAbiraterone     = &medication{"med-abiraterone", rx("1100072", "abiraterone"), rx("1100072", "abiraterone"), "Abiraterone acetate 250 mg oral tablet", formTablet}
	medPrednisone      = &medication{"med-prednisone", rx("312617", "predniSONE 5 MG Oral Tablet"), rx("8640", "prednisone"), "Prednisone 5 mg oral tablet", formTablet}
	medVincristine     = &medication{"med-vincristine", rx("11202", "vincristine"), rx("11202", "vincristine"), "Vincristine sulfate 1 mg/mL injectable solution", formInjection}
	medMercaptopurine  = &medication{"med-mercaptopurine", rx("103", "mercaptopurine"), rx("103", "mercaptopurine"), "Mercaptopurine 50 mg oral tablet", formTablet}
	medMethotrexate    = &medication{"med-methotrexate", rx("6851", "methotrexate"), rx("6851", "methotrexate"), "Methotrexate 2.5 mg oral tablet", formTablet}
	medOndansetron     = &medication{"med-ondansetron", rx("26225", "ondansetron"), rx("26225", "ondansetron"), "Ondansetron 8 mg oral tablet", formTablet}
	medDexamethasone   = &medication{"med-dexamethasone", rx("197582", "dexamethasone 4 MG Oral Tablet"), rx("3264", "dexamethasone"), "Dexamethasone 4 mg oral tablet", formTablet}
	medProchlorperazin = &medication{"med-prochlorperazine", rx("8704", "prochlorperazine"), rx("8704", "prochlorperazine"), "Prochlorperazine maleate 10 mg oral tablet", formTablet}
	medPegfilgrastim   = &medication{"med-pegfilgrastim", rx("338036", "pegfilgrastim"), rx("338036", "pegfilgrastim"), "Pegfilgrastim 6 mg/0.6 mL prefilled syringe", formInjection}
	medLisinopril      = &medication{"med-lisinopril", rx("314076", "lisinopril 10 MG Oral Tablet"), rx("29046", "lisinopril"), "Lisinopril 10 mg oral tablet", formTablet}
	medMetformin       = &medication{"med-metformin", rx("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet"), rx("6809", "metformin"), "Metformin ER 500 mg oral tablet", formTablet}
	medAtorvastatin    = &medication{"med-atorvastatin", rx("617311", "atorvastatin 40 MG Oral Tablet"), rx("83367", "atorvastatin"), "Atorvastatin 40 mg oral tablet", formTablet}
	medLevothyroxine   = &medication{"med-levothyroxine", rx("966222", "levothyroxine sodium 0.075 MG Oral Tablet"), rx("10582", "levothyroxine"), "Levothyroxine 75 mcg oral tablet", formTablet}
)

// formulary lists every Medication the practice emits, in emission order.
var formulary = []*medication{
	medOxaliplatin, medLeucovorin, medFluorouracil, medDoxorubicin, medCyclophosphamid,
	medPaclitaxel, medNabPaclitaxel, medCarboplatin, medDocetaxel, medPemetrexed,
	medPembrolizumab, medGemcitabine, medCapecitabine, medLetrozole, medTamoxifen,
	medLeuprolide, medAbiraterone, medPrednisone, medVincristine, medMercaptopurine,
	medMethotrexate, medOndansetron, medDexamethasone, medProchlorperazin, medPegfilgrastim,
	medLisinopril, medMetformin, medAtorvastatin, medLevothyroxine,
}

var (
	routeIV   = code{sysSNOMED, "47625008", "Intravenous route"}
	routeOral = code{sysSNOMED, "26643006", "Oral route"}
	routeSC   = code{sysSNOMED, "34206005", "Subcutaneous route"}
	routeIM   = code{sysSNOMED, "78421000", "Intramuscular route"}
)

// doseBasis says how a dose amount scales with the patient.
type doseBasis int

const (
	flat  doseBasis = iota // milligrams
	perM2                  // milligrams per square metre of body surface area
	auc                    // carboplatin target AUC, Calvert formula
)

// dose is one drug of a regimen. For oral drugs perDay and days describe the
// home schedule (days 0 means continuous).
type dose struct {
	med    *medication
	amount float64
	basis  doseBasis
	route  code
	how    string
	perDay int
	days   int
	prn    bool // taken as needed
}

// phase is a run of identical treatment visits, e.g. the AC part of AC-T.
type phase struct {
	visits  int
	infused []dose
}

// regimen is a course of systemic therapy. Each treatment visit gives the
// infused drugs of its phase; oral drugs are prescribed once, at the start.
type regimen struct {
	key        string
	name       string
	phases     []phase
	interval   int // days between treatment visits
	oral       []dose
	port       bool // needs an implanted central venous port
	emetogenic bool // warrants take-home antiemetics
	growth     bool // warrants pegfilgrastim after each cycle
	admin      code // the administration procedure recorded at each visit
}

func (r *regimen) visits() int {
	n := 0
	for _, p := range r.phases {
		n += p.visits
	}
	return n
}

// phaseAt returns the infused drugs of treatment visit i (0-based).
func (r *regimen) phaseAt(i int) []dose {
	for _, p := range r.phases {
		if i < p.visits {
			return p.infused
		}
		i -= p.visits
	}
	return nil
}

var (
	adminInfusion = code{sysCPT, "96413", "Chemotherapy administration, intravenous infusion technique; up to 1 hour, single or initial substance/drug"}
	adminPush     = code{sysCPT, "96409", "Chemotherapy administration; intravenous, push technique, single or initial substance/drug"}
	adminHormonal = code{sysCPT, "96402", "Chemotherapy administration, subcutaneous or intramuscular; hormonal anti-neoplastic"}
)

var (
	regACT = &regimen{key: "ac-t", name: "AC-T (doxorubicin and cyclophosphamide followed by paclitaxel)",
		phases: []phase{
			{4, []dose{{med: medDoxorubicin, amount: 60, basis: perM2, route: routeIV, how: "IV push on day 1"},
				{med: medCyclophosphamid, amount: 600, basis: perM2, route: routeIV, how: "IV over 30 minutes on day 1"}}},
			{4, []dose{{med: medPaclitaxel, amount: 175, basis: perM2, route: routeIV, how: "IV over 3 hours on day 1"}}},
		},
		interval: 21, port: true, emetogenic: true, growth: true, admin: adminInfusion}
	regTC = &regimen{key: "tc", name: "TC (docetaxel and cyclophosphamide)",
		phases: []phase{{4, []dose{{med: medDocetaxel, amount: 75, basis: perM2, route: routeIV, how: "IV over 1 hour on day 1"},
			{med: medCyclophosphamid, amount: 600, basis: perM2, route: routeIV, how: "IV over 30 minutes on day 1"}}}},
		interval: 21, port: true, emetogenic: true, growth: true, admin: adminInfusion}
	regLetrozole = &regimen{key: "letrozole", name: "Adjuvant letrozole",
		oral: []dose{{med: medLetrozole, amount: 2.5, route: routeOral, how: "by mouth once daily", perDay: 1}}}
	regTamoxifen = &regimen{key: "tamoxifen", name: "Adjuvant tamoxifen",
		oral: []dose{{med: medTamoxifen, amount: 20, route: routeOral, how: "by mouth once daily", perDay: 1}}}
	regCapecitabineBreast = &regimen{key: "capecitabine", name: "Capecitabine monotherapy",
		phases:   []phase{{6, nil}},
		interval: 21,
		oral:     []dose{{med: medCapecitabine, amount: 1000, basis: perM2, route: routeOral, how: "by mouth twice daily on days 1-14 of each 21-day cycle", perDay: 2, days: 14}}}
	regCarboTaxolLung = &regimen{key: "carboplatin-paclitaxel", name: "Carboplatin and paclitaxel",
		phases: []phase{{4, []dose{{med: medPaclitaxel, amount: 200, basis: perM2, route: routeIV, how: "IV over 3 hours on day 1"},
			{med: medCarboplatin, amount: 6, basis: auc, route: routeIV, how: "IV over 30 minutes on day 1 (AUC 6)"}}}},
		interval: 21, port: true, emetogenic: true, admin: adminInfusion}
	regCarboPemPembro = &regimen{key: "carboplatin-pemetrexed-pembrolizumab", name: "Carboplatin, pemetrexed and pembrolizumab, then pemetrexed and pembrolizumab maintenance",
		phases: []phase{
			{4, []dose{{med: medPembrolizumab, amount: 200, route: routeIV, how: "IV over 30 minutes on day 1"},
				{med: medPemetrexed, amount: 500, basis: perM2, route: routeIV, how: "IV over 10 minutes on day 1"},
				{med: medCarboplatin, amount: 5, basis: auc, route: routeIV, how: "IV over 30 minutes on day 1 (AUC 5)"}}},
			{4, []dose{{med: medPembrolizumab, amount: 200, route: routeIV, how: "IV over 30 minutes on day 1"},
				{med: medPemetrexed, amount: 500, basis: perM2, route: routeIV, how: "IV over 10 minutes on day 1"}}},
		},
		interval: 21, port: true, emetogenic: true, admin: adminInfusion}
	regFOLFOX = &regimen{key: "folfox", name: "mFOLFOX6 (oxaliplatin, leucovorin, fluorouracil)",
		phases: []phase{{12, []dose{{med: medOxaliplatin, amount: 85, basis: perM2, route: routeIV, how: "IV over 2 hours on day 1"},
			{med: medLeucovorin, amount: 400, basis: perM2, route: routeIV, how: "IV over 2 hours on day 1"},
			{med: medFluorouracil, amount: 400, basis: perM2, route: routeIV, how: "IV bolus on day 1"},
			{med: medFluorouracil, amount: 2400, basis: perM2, route: routeIV, how: "continuous IV infusion over 46 hours by ambulatory pump"}}}},
		interval: 14, port: true, emetogenic: true, admin: adminInfusion}
	regCAPOX = &regimen{key: "capox", name: "CAPOX (capecitabine and oxaliplatin), 3 months",
		phases:   []phase{{4, []dose{{med: medOxaliplatin, amount: 130, basis: perM2, route: routeIV, how: "IV over 2 hours on day 1"}}}},
		interval: 21,
		oral:     []dose{{med: medCapecitabine, amount: 1000, basis: perM2, route: routeOral, how: "by mouth twice daily on days 1-14 of each 21-day cycle", perDay: 2, days: 14}},
		port:     true, emetogenic: true, admin: adminInfusion}
	regADT = &regimen{key: "adt-abiraterone", name: "Androgen deprivation (leuprolide) with abiraterone and prednisone",
		phases:   []phase{{6, []dose{{med: medLeuprolide, amount: 7.5, route: routeIM, how: "IM injection every 4 weeks"}}}},
		interval: 28,
		oral: []dose{{med: medAbiraterone, amount: 1000, route: routeOral, how: "by mouth once daily on an empty stomach", perDay: 1},
			{med: medPrednisone, amount: 5, route: routeOral, how: "by mouth once daily", perDay: 1}},
		admin: adminHormonal}
	regDocetaxelProstate = &regimen{key: "docetaxel-prednisone", name: "Docetaxel with prednisone",
		phases:   []phase{{6, []dose{{med: medDocetaxel, amount: 75, basis: perM2, route: routeIV, how: "IV over 1 hour on day 1"}}}},
		interval: 21,
		oral:     []dose{{med: medPrednisone, amount: 5, route: routeOral, how: "by mouth twice daily", perDay: 2}},
		port:     true, emetogenic: true, admin: adminInfusion}
	regCarboTaxolOvary = &regimen{key: "carboplatin-paclitaxel", name: "Carboplatin and paclitaxel",
		phases: []phase{{6, []dose{{med: medPaclitaxel, amount: 175, basis: perM2, route: routeIV, how: "IV over 3 hours on day 1"},
			{med: medCarboplatin, amount: 6, basis: auc, route: routeIV, how: "IV over 1 hour on day 1 (AUC 6)"}}}},
		interval: 21, port: true, emetogenic: true, admin: adminInfusion}
	regGemNab = &regimen{key: "gemcitabine-nab-paclitaxel", name: "Biweekly gemcitabine and nab-paclitaxel",
		phases: []phase{{8, []dose{{med: medNabPaclitaxel, amount: 125, basis: perM2, route: routeIV, how: "IV over 30 minutes on day 1"},
			{med: medGemcitabine, amount: 1000, basis: perM2, route: routeIV, how: "IV over 30 minutes on day 1"}}}},
		interval: 14, port: true, emetogenic: true, admin: adminInfusion}
	regALL = &regimen{key: "all-induction-maintenance", name: "ALL induction (vincristine, dexamethasone) then maintenance (mercaptopurine, methotrexate)",
		phases: []phase{
			{4, []dose{{med: medVincristine, amount: 1.5, basis: perM2, route: routeIV, how: "IV push every 2 weeks during induction (maximum 2 mg)"}}},
			{6, []dose{{med: medVincristine, amount: 1.5, basis: perM2, route: routeIV, how: "IV push every 2 weeks during consolidation (maximum 2 mg)"}}},
		},
		interval: 14,
		oral: []dose{{med: medDexamethasone, amount: 6, basis: perM2, route: routeOral, how: "by mouth daily, divided twice daily, for 28 days", perDay: 2, days: 28},
			{med: medMercaptopurine, amount: 75, basis: perM2, route: routeOral, how: "by mouth once daily at bedtime", perDay: 1},
			{med: medMethotrexate, amount: 20, basis: perM2, route: routeOral, how: "by mouth once weekly", perDay: 1}},
		port: true, emetogenic: true, admin: adminPush}
)

// Supportive care added to emetogenic and myelosuppressive regimens.
var (
	supportOndansetron = dose{med: medOndansetron, amount: 8, route: routeOral, how: "by mouth every 8 hours as needed for nausea", perDay: 3, days: 3, prn: true}
	supportDexa        = dose{med: medDexamethasone, amount: 8, route: routeOral, how: "by mouth once daily on days 2-3 after chemotherapy", perDay: 1, days: 2}
	supportProchlor    = dose{med: medProchlorperazin, amount: 10, route: routeOral, how: "by mouth every 6 hours as needed for breakthrough nausea", perDay: 4, days: 5, prn: true}
	supportPegfil      = dose{med: medPegfilgrastim, amount: 6, route: routeSC, how: "subcutaneous injection once, 24-72 hours after chemotherapy", perDay: 1, days: 1}
)

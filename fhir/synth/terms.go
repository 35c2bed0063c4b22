package synth

import "math/rand/v2"

// Clinical terminology the generator draws from: real SNOMED CT, ICD-10-CM,
// LOINC, CVX and CPT codes, so searches by code behave as on real data.

func sct(c, display string) code { return code{sysSNOMED, c, display} }
func icd(c, display string) code { return code{sysICD10CM, c, display} }
func cpt(c, display string) code { return code{sysCPT, c, display} }
func lnc(c, display string) code { return code{sysLOINC, c, display} }

// stageCodes are the SNOMED stage groups I–IV, used in Condition.stage and
// in the staging Observation.
var stageCodes = [4]code{
	sct("258215001", "Stage 1 (qualifier value)"),
	sct("258219007", "Stage 2 (qualifier value)"),
	sct("258224005", "Stage 3 (qualifier value)"),
	sct("258228008", "Stage 4 (qualifier value)"),
}

var stageNames = [4]string{"I", "II", "III", "IV"}

// cancer is one primary malignancy the practice treats, with how it is
// diagnosed, staged, monitored and treated.
type cancer struct {
	key        string
	cohort     string // id of the Group listing its patients
	title      string
	snomed     code
	icd        code
	site       code
	sex        byte // 'F' or 'M' when sex-specific, else 0
	pediatric  bool
	weight     float64
	stages     [4]float64 // relative frequency of stage I..IV at diagnosis; zero when not staged
	marker     *labTest   // tumour marker followed over treatment, nil if none
	biopsy     code
	surgery    *code // definitive surgery offered in stages I–III, nil if none
	inpatient  bool  // surgery needs an inpatient stay
	metastasis [2]code
	treat      func(r *rand.Rand, stage int) *regimen
}

var cancers = []*cancer{
	{
		key: "breast", cohort: "cohort-breast-cancer", title: "Breast cancer",
		snomed: sct("254837009", "Malignant neoplasm of breast (disorder)"),
		icd:    icd("C50.911", "Malignant neoplasm of unspecified site of right female breast"),
		site:   sct("73056007", "Right breast structure (body structure)"),
		sex:    'F', weight: 0.30, stages: [4]float64{0.42, 0.33, 0.15, 0.10},
		marker:     &markerCA153,
		biopsy:     sct("723990008", "Biopsy of breast using ultrasonographic guidance (procedure)"),
		surgery:    &code{sysSNOMED, "392021009", "Lumpectomy of breast (procedure)"},
		metastasis: [2]code{sct("94222008", "Secondary malignant neoplasm of bone (disorder)"), icd("C79.51", "Secondary malignant neoplasm of bone")},
		treat: func(r *rand.Rand, stage int) *regimen {
			switch {
			case stage == 4:
				return regCapecitabineBreast
			case stage == 1 && r.Float64() < 0.6:
				if r.Float64() < 0.7 {
					return regLetrozole
				}
				return regTamoxifen
			case stage == 1:
				return regTC
			}
			return regACT
		},
	},
	{
		key: "lung", cohort: "cohort-lung-cancer", title: "Non-small cell lung cancer",
		snomed: sct("254637007", "Non-small cell lung cancer (disorder)"),
		icd:    icd("C34.11", "Malignant neoplasm of upper lobe, right bronchus or lung"),
		site:   sct("39607008", "Lung structure (body structure)"),
		weight: 0.17, stages: [4]float64{0.22, 0.10, 0.23, 0.45},
		marker:     &markerCEA,
		biopsy:     sct("10847001", "Bronchoscopy (procedure)"),
		surgery:    &code{sysSNOMED, "173171007", "Lobectomy of lung (procedure)"},
		inpatient:  true,
		metastasis: [2]code{sct("94225005", "Secondary malignant neoplasm of brain (disorder)"), icd("C79.31", "Secondary malignant neoplasm of brain")},
		treat: func(r *rand.Rand, stage int) *regimen {
			if stage == 4 {
				return regCarboPemPembro
			}
			if stage == 1 {
				return nil
			}
			return regCarboTaxolLung
		},
	},
	{
		key: "colorectal", cohort: "cohort-colorectal-cancer", title: "Colorectal cancer",
		snomed: sct("363406005", "Malignant neoplasm of colon (disorder)"),
		icd:    icd("C18.7", "Malignant neoplasm of sigmoid colon"),
		site:   sct("71854001", "Colon structure (body structure)"),
		weight: 0.15, stages: [4]float64{0.20, 0.25, 0.33, 0.22},
		marker:     &markerCEA,
		biopsy:     sct("73761001", "Colonoscopy (procedure)"),
		surgery:    &code{sysSNOMED, "43075005", "Partial resection of colon (procedure)"},
		inpatient:  true,
		metastasis: [2]code{sct("94381002", "Secondary malignant neoplasm of liver (disorder)"), icd("C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct")},
		treat: func(r *rand.Rand, stage int) *regimen {
			switch {
			case stage == 1:
				return nil
			case stage == 2 && r.Float64() < 0.5:
				return nil
			case r.Float64() < 0.4:
				return regFOLFOX
			}
			return regCAPOX
		},
	},
	{
		key: "prostate", cohort: "cohort-prostate-cancer", title: "Prostate cancer",
		snomed: sct("399068003", "Malignant tumor of prostate (disorder)"),
		icd:    icd("C61", "Malignant neoplasm of prostate"),
		site:   sct("41216001", "Prostatic structure (body structure)"),
		sex:    'M', weight: 0.16, stages: [4]float64{0.45, 0.28, 0.12, 0.15},
		marker:     &markerPSA,
		biopsy:     sct("65575008", "Biopsy of prostate (procedure)"),
		surgery:    &code{sysSNOMED, "90470006", "Prostatectomy (procedure)"},
		inpatient:  true,
		metastasis: [2]code{sct("94222008", "Secondary malignant neoplasm of bone (disorder)"), icd("C79.51", "Secondary malignant neoplasm of bone")},
		treat: func(r *rand.Rand, stage int) *regimen {
			switch {
			case stage <= 2:
				return nil // active surveillance or surgery alone
			case stage == 4 && r.Float64() < 0.4:
				return regDocetaxelProstate
			}
			return regADT
		},
	},
	{
		key: "ovarian", cohort: "cohort-ovarian-cancer", title: "Ovarian cancer",
		snomed: sct("363443007", "Malignant tumor of ovary (disorder)"),
		icd:    icd("C56.9", "Malignant neoplasm of unspecified ovary"),
		site:   sct("15497006", "Ovarian structure (body structure)"),
		sex:    'F', weight: 0.06, stages: [4]float64{0.17, 0.08, 0.50, 0.25},
		marker:     &markerCA125,
		biopsy:     sct("86273004", "Biopsy (procedure)"),
		surgery:    &code{sysSNOMED, "83152002", "Oophorectomy (procedure)"},
		inpatient:  true,
		metastasis: [2]code{sct("94381002", "Secondary malignant neoplasm of liver (disorder)"), icd("C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct")},
		treat:      func(r *rand.Rand, stage int) *regimen { return regCarboTaxolOvary },
	},
	{
		key: "pancreatic", cohort: "cohort-pancreatic-cancer", title: "Pancreatic cancer",
		snomed: sct("363418001", "Malignant tumor of pancreas (disorder)"),
		icd:    icd("C25.0", "Malignant neoplasm of head of pancreas"),
		site:   sct("15776009", "Pancreatic structure (body structure)"),
		weight: 0.06, stages: [4]float64{0.10, 0.20, 0.20, 0.50},
		marker:     &markerCA199,
		biopsy:     sct("86273004", "Biopsy (procedure)"),
		metastasis: [2]code{sct("94381002", "Secondary malignant neoplasm of liver (disorder)"), icd("C78.7", "Secondary malignant neoplasm of liver and intrahepatic bile duct")},
		treat:      func(r *rand.Rand, stage int) *regimen { return regGemNab },
	},
	{
		key: "leukemia", cohort: "cohort-acute-lymphoblastic-leukemia", title: "Acute lymphoblastic leukemia",
		snomed:    sct("91857003", "Acute lymphoid leukemia (disorder)"),
		icd:       icd("C91.00", "Acute lymphoblastic leukemia not having achieved remission"),
		site:      sct("14016003", "Bone marrow structure (body structure)"),
		pediatric: true,
		biopsy:    cpt("38221", "Diagnostic bone marrow; biopsy(ies)"),
		treat:     func(r *rand.Rand, stage int) *regimen { return regALL },
	},
}

// comorbidity is a chronic condition on the problem list, with the home
// medication that usually comes with it.
type comorbidity struct {
	snomed, icd code
	prevalence  float64 // among adults over 50; scaled down for younger patients
	home        *medication
	homeDose    float64
}

var (
	comorbHypertension = &comorbidity{sct("38341003", "Hypertensive disorder, systemic arterial (disorder)"), icd("I10", "Essential (primary) hypertension"), 0.45, medLisinopril, 10}
	comorbDiabetes     = &comorbidity{sct("44054006", "Diabetes mellitus type 2 (disorder)"), icd("E11.9", "Type 2 diabetes mellitus without complications"), 0.22, medMetformin, 500}
	comorbLipids       = &comorbidity{sct("55822004", "Hyperlipidemia (disorder)"), icd("E78.5", "Hyperlipidemia, unspecified"), 0.35, medAtorvastatin, 40}
	comorbCOPD         = &comorbidity{sct("13645005", "Chronic obstructive lung disease (disorder)"), icd("J44.9", "Chronic obstructive pulmonary disease, unspecified"), 0.10, nil, 0}
	comorbHypothyroid  = &comorbidity{sct("40930008", "Hypothyroidism (disorder)"), icd("E03.9", "Hypothyroidism, unspecified"), 0.09, medLevothyroxine, 0.075}
	comorbCKD          = &comorbidity{sct("433144002", "Chronic kidney disease stage 3 (disorder)"), icd("N18.30", "Chronic kidney disease, stage 3 unspecified"), 0.08, nil, 0}
	comorbDepression   = &comorbidity{sct("35489007", "Depressive disorder (disorder)"), icd("F32.A", "Depression, unspecified"), 0.12, nil, 0}
	comorbAFib         = &comorbidity{sct("49436004", "Atrial fibrillation (disorder)"), icd("I48.91", "Unspecified atrial fibrillation"), 0.06, nil, 0}
	comorbObesity      = &comorbidity{sct("414916001", "Obesity (disorder)"), icd("E66.9", "Obesity, unspecified"), 0, nil, 0} // set from BMI, not drawn
)

var comorbidities = []*comorbidity{comorbHypertension, comorbDiabetes, comorbLipids, comorbCOPD, comorbHypothyroid, comorbCKD, comorbDepression, comorbAFib}

// toxicity is a treatment complication recorded as an encounter diagnosis.
type toxicity struct {
	snomed, icd code
	chance      float64 // per treatment visit
}

var toxicities = []toxicity{
	{sct("16932000", "Nausea and vomiting (disorder)"), icd("R11.2", "Nausea with vomiting, unspecified"), 0.06},
	{sct("84229001", "Fatigue (finding)"), icd("R53.83", "Other fatigue"), 0.05},
	{sct("165517008", "Neutropenia (finding)"), icd("D70.1", "Agranulocytosis secondary to cancer chemotherapy"), 0.03},
	{sct("271737000", "Anemia (disorder)"), icd("D64.81", "Anemia due to antineoplastic chemotherapy"), 0.03},
	{sct("302226006", "Peripheral nerve disease (disorder)"), icd("G62.0", "Drug-induced polyneuropathy"), 0.02},
}

// allergen is a substance a patient may react to.
type allergen struct {
	substance   code
	category    string
	reaction    code
	criticality string
	weight      float64
}

var allergens = []allergen{
	{sct("764146007", "Penicillin (substance)"), "medication", sct("126485001", "Urticaria (disorder)"), "low", 0.40},
	{sct("387406002", "Sulfamethoxazole (substance)"), "medication", sct("271807003", "Eruption of skin (disorder)"), "low", 0.20},
	{sct("372687004", "Amoxicillin (substance)"), "medication", sct("126485001", "Urticaria (disorder)"), "low", 0.10},
	{sct("387458008", "Aspirin (substance)"), "medication", sct("267036007", "Dyspnea (finding)"), "high", 0.08},
	{sct("111088007", "Latex (substance)"), "environment", sct("247472004", "Wheal (finding)"), "low", 0.10},
	{sct("256349002", "Peanut - dietary (substance)"), "food", sct("39579001", "Anaphylaxis (disorder)"), "high", 0.12},
}

var noKnownAllergy = sct("716186003", "No known allergy (situation)")

// Vaccines (CVX) oncology patients are advised to keep current: influenza
// and COVID-19 each autumn, the others once.
var (
	vaxFlu    = code{sysCVX, "140", "Influenza, seasonal, injectable, preservative free"}
	vaxCovid  = code{sysCVX, "208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"}
	vaxPneumo = code{sysCVX, "33", "pneumococcal polysaccharide vaccine, 23 valent"}
	vaxZoster = code{sysCVX, "187", "zoster vaccine recombinant"}
	vaxTdap   = code{sysCVX, "115", "Tdap"}
)

// Procedures, encounter types and note types.
var (
	procPortAdult    = cpt("36561", "Insertion of tunneled centrally inserted central venous access device, with subcutaneous port; age 5 years or older")
	procPortChild    = cpt("36560", "Insertion of tunneled centrally inserted central venous access device, with subcutaneous port; younger than 5 years of age")
	procChemotherapy = sct("367336001", "Chemotherapy (procedure)")

	devicePort = sct("398013009", "Implantable venous access port")

	encTypeProblem  = sct("185347001", "Encounter for problem (procedure)")
	encTypeConsult  = sct("11429006", "Consultation (procedure)")
	encTypeFollowUp = sct("390906007", "Follow-up encounter (procedure)")

	noteConsult   = lnc("11488-4", "Consult note")
	noteProgress  = lnc("11506-3", "Progress note")
	noteOperative = lnc("11504-8", "Surgical operation note")
	noteDischarge = lnc("18842-5", "Discharge summary")

	reportPathology = lnc("11526-1", "Pathology study")
	reportImaging   = lnc("18748-4", "Diagnostic imaging study")
	catPathology    = lnc("LP7839-6", "Pathology")
	catRadiology    = lnc("LP29684-5", "Radiology")
)

// Care team roles from the NUCC provider taxonomy.
var (
	roleMedOnc    = code{sysNUCC, "207RX0202X", "Medical Oncology Physician"}
	roleHemOnc    = code{sysNUCC, "207RH0003X", "Hematology & Oncology Physician"}
	rolePedHemOnc = code{sysNUCC, "2080P0207X", "Pediatric Hematology-Oncology Physician"}
	roleSurgOnc   = code{sysNUCC, "2086X0206X", "Surgical Oncology Physician"}
	roleRadOnc    = code{sysNUCC, "2085R0001X", "Radiation Oncology Physician"}
	roleOncNurse  = code{sysNUCC, "163WX0200X", "Oncology Registered Nurse"}
	roleNP        = code{sysNUCC, "363LA2200X", "Adult Health Nurse Practitioner"}
	rolePharmac   = code{sysNUCC, "183500000X", "Pharmacist"}
	rolePatient   = sct("116154003", "Patient (person)")
)

// weighted picks an index with probability proportional to its weight.
func weighted(r *rand.Rand, weights []float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.Float64() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

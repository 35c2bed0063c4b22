// Package synth generates deterministic, US Core-conformant synthetic data
// for an oncology practice: the practice itself (organizations, locations,
// practitioners, the formulary), then each patient's course of care from
// diagnosis through treatment and follow-up, then a few cohort Groups.
//
// Resource ids are stable and readable:
//
//	org-*, loc-*, prac-NNNN, role-NNNN, med-*      practice level
//	pNNNN                                           Patient
//	pNNNN-<kind>-NNNN                               that patient's resources
//	cohort-*                                        Group
//
// where <kind> is one of enc, cond, obs, dr, doc, medrx, proc, imm, alg,
// dev, ct, cp, goal, prov, and numbers grow past four digits when needed.
// The Groups are one per cancer (cohort-breast-cancer, cohort-lung-cancer,
// cohort-colorectal-cancer, cohort-prostate-cancer, cohort-ovarian-cancer,
// cohort-pancreatic-cancer, cohort-acute-lymphoblastic-leukemia), plus
// cohort-active-chemotherapy and cohort-pediatric.
package synth

import (
	"math/rand/v2"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Options control generation. The zero value of every field but Patients
// has a fixed default, so the same Options always give the same output.
type Options struct {
	Patients int
	Seed     int64
	// Now anchors the timeline: every recorded event happens at or before
	// it; only plans (course end dates, goal due dates, device expiry)
	// reach past it. Zero means DefaultNow; the wall clock is never read.
	Now time.Time
	// CohortLimit caps the members listed in each cohort Group so memory
	// stays bounded however many patients are generated. Zero means
	// DefaultCohortLimit.
	CohortLimit int
}

// practiceZone is the practice's UTC offset. A fixed offset, not a tz
// database zone, so output does not depend on the host's zoneinfo.
var practiceZone = time.FixedZone("-0500", -5*60*60)

// DefaultNow is the timeline anchor used when Options.Now is zero.
var DefaultNow = time.Date(2025, time.June, 30, 17, 0, 0, 0, practiceZone)

// DefaultCohortLimit is the per-Group member cap used when
// Options.CohortLimit is zero.
const DefaultCohortLimit = 1000

// Generate emits resources in an order where every reference points to a
// resource emitted earlier. Output is the same for the same Options.
// Generation streams: memory does not grow with Options.Patients. The
// cohort Groups come last and are always emitted, memberless when no
// patient qualifies. The first error returned by emit stops generation and
// is returned.
func Generate(opts Options, emit func(*fhirjson.Object) error) error {
	if opts.Now.IsZero() {
		opts.Now = DefaultNow
	}
	opts.Now = opts.Now.In(practiceZone)
	if opts.CohortLimit <= 0 {
		opts.CohortLimit = DefaultCohortLimit
	}
	g := &generator{opts: opts, emitFn: emit}
	g.practice = newPractice(rand.New(rand.NewPCG(uint64(opts.Seed), streamPractice)))
	g.emitPractice()
	g.cohorts = newCohorts(opts.CohortLimit)
	for n := 1; n <= opts.Patients && g.err == nil; n++ {
		p := g.newPatient(n)
		p.generate()
		g.cohorts.add(p)
	}
	g.emitCohorts()
	return g.err
}

// Each patient draws from its own PCG stream, keyed by its number, so a
// patient's data depends only on the seed and its position, never on how
// many random numbers earlier patients consumed.
const (
	streamPractice = 0x5eed_0000_0000_0001
	streamPatient  = 0x5eed_0001_0000_0000
)

type generator struct {
	opts     Options
	emitFn   func(*fhirjson.Object) error
	err      error
	practice *practice
	cohorts  *cohorts
}

// emit hands one resource to the caller; after the first error it does
// nothing, so builders need not check errors at every step.
func (g *generator) emit(r *fhirjson.Object) {
	if g.err != nil {
		return
	}
	g.err = g.emitFn(r)
}

// kind is a per-patient resource family; it names the id segment and has
// its own counter, so ids do not shift when another family changes size.
type kind int

const (
	kindEncounter kind = iota
	kindCondition
	kindObservation
	kindReport
	kindDocument
	kindMedRequest
	kindProcedure
	kindImmunization
	kindAllergy
	kindDevice
	kindCareTeam
	kindCarePlan
	kindGoal
	kindProvenance
	numKinds
)

var kindSegments = [numKinds]string{
	"-enc-", "-cond-", "-obs-", "-dr-", "-doc-", "-medrx-", "-proc-",
	"-imm-", "-alg-", "-dev-", "-ct-", "-cp-", "-goal-", "-prov-",
}

// newID returns the patient's next id of a kind, e.g. "p0001-obs-0042".
func (p *patient) newID(k kind) string {
	p.seq[k]++
	return p.id + kindSegments[k] + pad(p.seq[k], 4)
}

// emit hands a patient resource to the caller and remembers it as a target
// of the next Provenance.
func (p *patient) emit(r *fhirjson.Object) string {
	ref := r.String("resourceType") + "/" + r.String("id")
	p.g.emit(r)
	p.touched = append(p.touched, ref)
	return ref
}

package bulk

import (
	"reflect"
	"slices"

	"github.com/fhirgraph/fhirgraph/authz"
	"github.com/fhirgraph/fhirgraph/authz/policy"
)

// reaches reports whether p reaches at least what the token that started
// j reached, type by type: what the job exported (its manifest counts, its
// files) must not show a later token of the same client and subject more
// than that token's own scopes, patient and practices allow. Bulk clients
// fetch a new token for each poll (tokens outlive no export), so the same
// token cannot be required; one with narrower scopes, another patient in
// context or fewer practices is refused.
func (s *Service) reaches(p *authz.Principal, j *Job) (bool, error) {
	jp, err := s.cfg.Guard.Principal(&j.Claims)
	if err != nil {
		return false, nil
	}
	for _, typ := range j.Spec.Types {
		if j.Spec.Level != SystemLevel && !InPatientCompartment(typ) {
			continue // never exported
		}
		had, err := s.cfg.Guard.Decide(jp, policy.SearchType, typ)
		if err != nil {
			return false, err
		}
		if !had.Allowed {
			continue // the export fails on it: it has no output
		}
		has, err := s.cfg.Guard.Decide(p, policy.SearchType, typ)
		if err != nil {
			return false, err
		}
		if !has.Allowed || !covers(has.Filter, had.Filter) {
			return false, nil
		}
	}
	return true, nil
}

// covers reports whether filter f admits everything g does: each of its
// confinements is absent or at least as wide as g's, and its granular
// clauses are none or g's own.
func covers(f, g authz.Filter) bool {
	wider := func(fs, gs []string) bool {
		return len(fs) == 0 || len(gs) > 0 && !slices.ContainsFunc(gs, func(x string) bool { return !slices.Contains(fs, x) })
	}
	return wider(f.Compartments, g.Compartments) && wider(f.Practices, g.Practices) &&
		(len(f.Where) == 0 || reflect.DeepEqual(f.Where, g.Where))
}

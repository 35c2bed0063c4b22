package search

import (
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// PatientCompartments lists the patient compartments ("Patient/<id>") a
// resource belongs to, from its index values: the Patient references of the
// parameters R4's Patient CompartmentDefinition names for its type, and for
// a Patient its own, sorted. Authorization and compartment search rely on
// them.
func PatientCompartments(typ, id string, index []store.IndexValue) []string {
	var out []string
	if typ == "Patient" && id != "" {
		out = append(out, "Patient/"+id)
	}
	r := schema.Search().Resource(typ)
	if r == nil {
		return out
	}
	for _, v := range index {
		if strings.HasPrefix(v.Value, "Patient/") && slices.Contains(r.PatientCompartment, v.Param) && !slices.Contains(out, v.Value) {
			out = append(out, v.Value)
		}
	}
	slices.Sort(out)
	return out
}

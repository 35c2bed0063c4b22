package search

import (
	"slices"
	"strings"

	"github.com/fhirgraph/fhirgraph/schema"
	"github.com/fhirgraph/fhirgraph/store"
)

// PatientCompartments lists the patient compartments ("Patient/<id>") a
// resource belongs to, from its index values: the Patient references of the
// parameters of CompartmentParams for its type, and for a Patient its own,
// sorted. Authorization and compartment search rely on them.
func PatientCompartments(typ, id string, index []store.IndexValue) []string {
	var out []string
	if typ == "Patient" && id != "" {
		out = append(out, "Patient/"+id)
	}
	params := CompartmentParams(typ)
	for _, v := range index {
		if strings.HasPrefix(v.Value, "Patient/") && slices.Contains(params, v.Param) && !slices.Contains(out, v.Value) {
			out = append(out, v.Value)
		}
	}
	slices.Sort(out)
	return out
}

// CompartmentParams are the parameters whose Patient references put a
// resource of typ in that patient's compartment: those R4's Patient
// CompartmentDefinition names, and for Device its patient. R4 leaves
// Device out, yet a US Core Implantable Device is one patient's record,
// searched by patient= under patient scopes.
func CompartmentParams(typ string) []string {
	if typ == "Device" {
		return []string{"patient"}
	}
	if r := schema.Search().Resource(typ); r != nil {
		return r.PatientCompartment
	}
	return nil
}

// OutsidePatientCompartments reports whether no resource of typ is ever in
// a patient's compartment: the data a patient's record refers to
// (Practitioner, Organization, Location, Medication, …). Types the
// registry does not know count as inside.
func OutsidePatientCompartments(typ string) bool {
	return typ != "Patient" && schema.Search().Resource(typ) != nil && len(CompartmentParams(typ)) == 0
}

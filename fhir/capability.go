package fhir

import (
	"github.com/fhirgraph/fhirgraph/schema"
	"net/http"
	"time"
)

// usCoreServer is the canonical URL of the US Core Server CapabilityStatement
// (4.0.0 and 6.1.0 share it) that this server instantiates.
const usCoreServer = "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"

// startedAt dates the CapabilityStatement.
var startedAt = time.Now().UTC().Format(time.RFC3339)

// capabilities serves GET /fhir/metadata: a CapabilityStatement listing
// exactly the interactions this server implements.
func (s *server) capabilities(w http.ResponseWriter, r *http.Request) error {
	type interaction struct {
		Code string `json:"code"`
	}
	type resource struct {
		Type              string        `json:"type"`
		Interaction       []interaction `json:"interaction"`
		Versioning        string        `json:"versioning"`
		ReadHistory       bool          `json:"readHistory"`
		UpdateCreate      bool          `json:"updateCreate"`
		ConditionalCreate bool          `json:"conditionalCreate"`
		ConditionalUpdate bool          `json:"conditionalUpdate"`
		ConditionalDelete string        `json:"conditionalDelete"`
		SupportedProfile  []string      `json:"supportedProfile,omitempty"`
		SearchParam       []searchParam `json:"searchParam,omitempty"`
		SearchInclude     []string      `json:"searchInclude,omitempty"`
		SearchRevInclude  []string      `json:"searchRevInclude,omitempty"`
		Operation         []operation   `json:"operation,omitempty"`
	}
	var resources []resource
	for _, t := range schema.R4().ResourceTypes {
		interactions := []interaction{{"read"}, {"vread"}, {"update"}, {"delete"},
			{"history-instance"}, {"history-type"}, {"create"}, {"search-type"}}
		if t == "AuditEvent" { // the server writes the audit trail; staff read it
			interactions = []interaction{{"read"}, {"vread"}, {"search-type"}}
		}
		resources = append(resources, resource{
			Type:              t,
			Interaction:       interactions,
			Versioning:        "versioned-update",
			ReadHistory:       true,
			UpdateCreate:      true,
			ConditionalUpdate: true,
			ConditionalDelete: "single",
			SupportedProfile:  usCoreProfiles(t),
			SearchParam:       searchParams(t),
			SearchInclude:     includes(t, false),
			SearchRevInclude:  includes(t, true),
			ConditionalCreate: true,
			Operation:         s.exportOperations(t),
		})
	}
	instantiates := []string{usCoreServer}
	rest := map[string]any{
		"mode":        "server",
		"security":    s.security(),
		"resource":    resources,
		"interaction": []interaction{{"transaction"}, {"batch"}, {"history-system"}},
	}
	if s.bulk != nil {
		instantiates = append(instantiates, bulkDataServer)
		rest["operation"] = []operation{{Name: "export", Definition: bulkOperation + "export"}}
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         startedAt,
		"publisher":    "Fhirgraph",
		"kind":         "instance",
		"instantiates": instantiates,
		"software":     map[string]string{"name": "Fhirgraph", "version": s.version},
		"implementation": map[string]string{
			"description": "Fhirgraph FHIR R4 server",
			"url":         s.baseURL(r),
		},
		"fhirVersion": "4.0.1",
		"format":      []string{"json", "application/fhir+json", "application/json"},
		"rest":        []map[string]any{rest},
	}
	writeJSON(w, r, http.StatusOK, cs)
	return nil
}

// security is rest.security: SMART on FHIR, with the authorization
// server's endpoints in the oauth-uris extension
// (hl7.org/fhir/smart-app-launch/STU2/conformance.html).
func (s *server) security() map[string]any {
	sec := map[string]any{
		"cors": true,
		"service": []map[string]any{{
			"coding": []map[string]string{{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}},
			"text":   "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
		}},
		"description": "Every interaction but this CapabilityStatement and the SMART configuration takes a bearer access token.",
	}
	if o := s.oauth; o != nil {
		var uris []map[string]string
		for _, u := range [][2]string{{"authorize", o.Authorize}, {"token", o.Token}, {"introspect", o.Introspect}, {"revoke", o.Revoke}} {
			if u[1] != "" {
				uris = append(uris, map[string]string{"url": u[0], "valueUri": u[1]})
			}
		}
		sec["extension"] = []map[string]any{{
			"url":       "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
			"extension": uris,
		}}
	}
	return sec
}

// usCoreProfiles lists the US Core profiles (of every version targeted) that
// instances of typ may claim.
func usCoreProfiles(typ string) []string {
	r := schema.Search().Resource(typ)
	if r == nil {
		return nil
	}
	var out []string
	for _, p := range r.Profiles {
		out = append(out, p.URL)
	}
	return out
}

type searchParam struct {
	Name       string `json:"name"`
	Definition string `json:"definition,omitempty"`
	Type       string `json:"type"`
}

// searchParams lists the parameters searches on typ answer: every
// parameter of the registry's types except composite and special ones
// (which are not indexed), and _id and _lastUpdated everywhere.
func searchParams(typ string) []searchParam {
	out := []searchParam{
		{Name: "_id", Type: "token", Definition: "http://hl7.org/fhir/SearchParameter/Resource-id"},
		{Name: "_lastUpdated", Type: "date", Definition: "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"},
	}
	r := schema.Search().Resource(typ)
	if r == nil {
		return out
	}
	for _, p := range r.Params {
		if p.Code == "_id" || p.Code == "_lastUpdated" || p.Type == schema.ParamComposite || p.Type == schema.ParamSpecial {
			continue
		}
		out = append(out, searchParam{Name: p.Code, Definition: p.URL, Type: string(p.Type)})
	}
	return out
}

// includes lists the _include (or _revinclude) values US Core names for
// typ; any reference parameter works, these are the ones to advertise.
func includes(typ string, rev bool) []string {
	r := schema.Search().Resource(typ)
	if r == nil {
		return nil
	}
	list := r.Includes
	if rev {
		list = r.RevIncludes
	}
	var out []string
	for _, in := range list {
		out = append(out, in.Value)
	}
	return out
}

// Bulk Data Access 2.0.0 canonical URLs.
const (
	bulkDataServer = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
	bulkOperation  = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
)

type operation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// exportOperations are the $export operations on typ: Patient- and
// Group-level export, when bulk export is enabled.
func (s *server) exportOperations(typ string) []operation {
	if s.bulk == nil {
		return nil
	}
	switch typ {
	case "Patient":
		return []operation{{Name: "export", Definition: bulkOperation + "patient-export"}}
	case "Group":
		return []operation{{Name: "export", Definition: bulkOperation + "group-export"}}
	}
	return nil
}

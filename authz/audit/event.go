package audit

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// Event is one FHIR access, as the API saw it once it had answered.
type Event struct {
	Time time.Time
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// User is the user's FHIR resource (fhirUser, "Practitioner/123") or,
	// without one, the token's subject (a username, or the client id of a
	// backend client).
	User string
	// UserKind is "patient", "practitioner", "staff", or "" for a backend
	// client acting for itself.
	UserKind string
	// Patient is the id of the patient in context (the token's patient
	// claim), if any.
	Patient string
	// Practices are the token's practices (PINs).
	Practices []string
	// Interaction is the FHIR restful-interaction code (read, search-type,
	// create, transaction, …).
	Interaction string
	// Type is the resource type acted on; "" for whole-system interactions.
	Type string
	// IDs are the logical ids read or written (reads and writes).
	IDs []string
	// Query is the search's query string, form-encoded (searches).
	Query string
	// Compartment is the compartment a compartment search ran in
	// ("Patient/123").
	Compartment string
	// Status is the HTTP status of the answer.
	Status int
	// Source is the caller's network address.
	Source string
}

// Code systems of the R4 AuditEvent as this package fills it.
const (
	SystemEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemInteraction = "http://hl7.org/fhir/restful-interaction"
	SystemClient      = "urn:fhirgraph:oauth-client"
	systemRoleType    = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
	systemSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	systemEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	systemObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
)

// Outcome maps an HTTP status to AuditEvent.outcome: 0 success, 4 minor
// failure (the caller's request was refused or wrong: 4xx), 8 serious
// failure (the server failed: 5xx). 12 (major failure) is not used: no
// answered request ends the server.
func Outcome(status int) string {
	switch {
	case status < 400:
		return "0"
	case status < 500:
		return "4"
	}
	return "8"
}

// Action maps a restful interaction to AuditEvent.action: C, R, U, D, or
// E for searches, batches and transactions (R4: "perform a query/search
// operation").
func Action(interaction string) string {
	switch interaction {
	case "create":
		return "C"
	case "read", "vread", "history-instance", "history-type", "history-system":
		return "R"
	case "update", "patch":
		return "U"
	case "delete":
		return "D"
	}
	return "E"
}

// Patients lists the patients the event is about, as "Patient/id": the
// patient in context, a patient user, the Patients read or written, the
// compartment searched, and references to patients in a search's patient
// or subject parameters. Sorted, without repeats.
func (e Event) Patients() []string {
	var out []string
	add := func(ref string) {
		if id, ok := strings.CutPrefix(ref, "Patient/"); ok && id != "" && !strings.Contains(id, "/") {
			out = append(out, ref)
		}
	}
	if e.Patient != "" {
		add("Patient/" + e.Patient)
	}
	add(e.User)
	if e.Type == "Patient" {
		for _, id := range e.IDs {
			add("Patient/" + id)
		}
	}
	add(e.Compartment)
	if e.Query != "" {
		if q, err := url.ParseQuery(e.Query); err == nil {
			for _, p := range []string{"patient", "subject", "patient:Patient", "subject:Patient"} {
				for _, v := range q[p] {
					for _, ref := range strings.Split(v, ",") {
						if !strings.Contains(ref, "/") && strings.HasPrefix(p, "patient") {
							// A bare id is a Patient's only where patient is
							// the one target.
							ref = "Patient/" + ref
						}
						if i := strings.Index(ref, "Patient/"); i >= 0 {
							add(ref[i:])
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Resource is the event as an R4 AuditEvent (without id), with also in
// entity the patients named by more (see Patients; the recorder adds the
// patient compartments of the resources read or written).
func (e Event) Resource(more ...string) (*fhirjson.Object, error) {
	type coding struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	type ref struct {
		Reference  string          `json:"reference,omitempty"`
		Identifier *map[string]any `json:"identifier,omitempty"`
		Display    string          `json:"display,omitempty"`
	}
	type network struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	}
	type agent struct {
		TypeJSON  map[string]any `json:"type,omitempty"`
		Who       ref            `json:"who"`
		AltID     string         `json:"altId,omitempty"`
		Requestor bool           `json:"requestor"`
		Network   *network       `json:"network,omitempty"`
	}
	type entity struct {
		What  *ref    `json:"what,omitempty"`
		Type  *coding `json:"type,omitempty"`
		Role  *coding `json:"role,omitempty"`
		Query string  `json:"query,omitempty"`
	}
	clientID := func() *map[string]any {
		m := map[string]any{"system": SystemClient, "value": e.ClientID}
		return &m
	}
	user := agent{Requestor: true, TypeJSON: map[string]any{"coding": []coding{{System: systemRoleType, Code: "humanuser", Display: "human user"}}}}
	switch {
	case e.UserKind == "":
		// A backend client acting for itself is the requestor.
		user.TypeJSON = map[string]any{"coding": []coding{{System: systemRoleType, Code: "dataprocessor", Display: "data processor"}}}
		user.Who = ref{Identifier: clientID()}
	case strings.Contains(e.User, "/"):
		user.Who = ref{Reference: e.User}
	default:
		user.Who = ref{Display: e.User}
	}
	if e.UserKind != "" {
		user.AltID = e.UserKind
	}
	if e.Source != "" {
		user.Network = &network{Address: e.Source, Type: "2"} // 2: IP address
	}
	agents := []agent{user}
	if e.UserKind != "" {
		agents = append(agents, agent{
			TypeJSON: map[string]any{"coding": []coding{{System: systemRoleType, Code: "application", Display: "application"}}},
			Who:      ref{Identifier: clientID()},
		})
	}
	var entities []entity
	for _, id := range e.IDs {
		if e.Type == "" || id == "" {
			continue
		}
		entities = append(entities, entity{What: &ref{Reference: e.Type + "/" + id}, Type: &coding{System: systemEntityType, Code: "2", Display: "System Object"}})
	}
	if e.Query != "" || strings.HasPrefix(e.Interaction, "search") {
		q := e.Query
		if e.Type != "" {
			q = e.Type + "?" + q
		}
		if e.Compartment != "" {
			q = e.Compartment + "/" + q
		}
		entities = append(entities, entity{Type: &coding{System: systemEntityType, Code: "2", Display: "System Object"},
			Role: &coding{System: systemObjectRole, Code: "24", Display: "Query"}, Query: base64.StdEncoding.EncodeToString([]byte(q))})
	}
	patients := append(e.Patients(), more...)
	slices.Sort(patients)
	for _, p := range slices.Compact(patients) {
		if slices.ContainsFunc(entities, func(x entity) bool { return x.What != nil && x.What.Reference == p }) {
			continue
		}
		entities = append(entities, entity{What: &ref{Reference: p}, Type: &coding{System: systemEntityType, Code: "1", Display: "Person"},
			Role: &coding{System: systemObjectRole, Code: "1", Display: "Patient"}})
	}
	// Members in R4's element order.
	doc := struct {
		ResourceType string         `json:"resourceType"`
		Type         coding         `json:"type"`
		Subtype      []coding       `json:"subtype"`
		Action       string         `json:"action"`
		Recorded     string         `json:"recorded"`
		Outcome      string         `json:"outcome"`
		OutcomeDesc  string         `json:"outcomeDesc"`
		Agent        []agent        `json:"agent"`
		Source       map[string]any `json:"source"`
		Entity       []entity       `json:"entity,omitempty"`
	}{
		ResourceType: "AuditEvent",
		Type:         coding{System: SystemEventType, Code: "rest", Display: "RESTful Operation"},
		Subtype:      []coding{{System: SystemInteraction, Code: e.Interaction, Display: e.Interaction}},
		Action:       Action(e.Interaction),
		Recorded:     e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Outcome:      Outcome(e.Status),
		OutcomeDesc:  "HTTP " + strconv.Itoa(e.Status),
		Agent:        agents,
		Source: map[string]any{
			"observer": ref{Display: "Fhirgraph"},
			"type":     []coding{{System: systemSourceType, Code: "4", Display: "Application Server"}},
		},
		Entity: entities,
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return fhirjson.Parse(data)
}

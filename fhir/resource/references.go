package resource

import (
	"strings"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
)

// RewriteReferences replaces every Reference.reference in v that is a key of
// refs (a Bundle entry's fullUrl) with its value ("Type/id"). It returns the
// first urn:uuid: or urn:oid: reference that names no entry, or "".
func RewriteReferences(v any, refs map[string]string) (unresolved string) {
	switch t := v.(type) {
	case *fhirjson.Object:
		for i, m := range t.Members {
			if s, ok := m.Value.(string); ok && m.Name == "reference" {
				if to, ok := refs[s]; ok {
					t.Members[i].Value = to
				} else if unresolved == "" && (strings.HasPrefix(s, "urn:uuid:") || strings.HasPrefix(s, "urn:oid:")) {
					unresolved = s
				}
				continue
			}
			if u := RewriteReferences(m.Value, refs); unresolved == "" {
				unresolved = u
			}
		}
	case []any:
		for _, e := range t {
			if u := RewriteReferences(e, refs); unresolved == "" {
				unresolved = u
			}
		}
	}
	return unresolved
}

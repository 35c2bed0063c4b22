// Package resource turns a parsed FHIR resource into a store write: it
// validates it, takes the server-owned meta elements out of the client's
// hands and supplies the stamping the store applies once it knows the
// version. REST writes, transaction Bundles and import all go through it, so
// a resource is stored the same way whichever door it came in by.
package resource

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/fhirgraph/fhirgraph/fhir/fhirjson"
	"github.com/fhirgraph/fhirgraph/fhir/search"
	"github.com/fhirgraph/fhirgraph/fhir/validate"
	"github.com/fhirgraph/fhirgraph/store"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ValidID reports whether s is a valid FHIR logical id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Prepare validates obj as a resource of type typ with logical id id, and
// returns the write that stores it with op. The caller has already checked
// that resourceType and id agree with the request; Prepare sets the id and
// drops any client-sent meta.versionId and meta.lastUpdated (the server owns
// them) and computes the search index values, where absolute references
// under base (the server's FHIR base URL; "" when unknown) count as the
// relative ones they stand for. Issues are returned when the resource is
// invalid; obj must not be used by the caller afterwards.
func Prepare(op store.Op, typ, id string, obj *fhirjson.Object, base string) (store.Write, []validate.Issue) {
	obj.Set("id", id)
	if meta := obj.Object("meta"); meta != nil {
		meta.Delete("versionId")
		meta.Delete("lastUpdated")
		if len(meta.Members) == 0 {
			obj.Delete("meta")
		}
	}
	moveToFront(obj, "resourceType", "id", "meta")
	if issues := validate.Resource(obj); len(issues) > 0 {
		return store.Write{}, issues
	}
	content := fhirjson.Marshal(obj)
	derived := derive(typ, id, obj, base)
	return store.Write{
		Index:        derived.Index,
		Compartments: derived.Compartments,
		Op:           op,
		Type:         typ,
		ID:           id,
		Content:      content,
		Hash:         store.HashContent(content),
		Stamp: func(version int64, lastUpdated time.Time) ([]byte, error) {
			return stamp(content, obj, version, lastUpdated), nil
		},
	}, nil
}

// Derive computes what a stored resource's body determines besides itself
// (its search index values and patient compartments) the way Prepare does
// for a write. `fhirgraph reindex` recomputes them with it after the
// search-parameter registry changed. A body that is not a JSON resource of
// type typ is an error.
func Derive(typ, id string, body []byte, base string) (store.IndexUpdate, error) {
	obj, err := fhirjson.Parse(body)
	if err != nil {
		return store.IndexUpdate{}, err
	}
	if rt := obj.String("resourceType"); rt != typ {
		return store.IndexUpdate{}, fmt.Errorf("stored body has resourceType %q, not %q", rt, typ)
	}
	return derive(typ, id, obj, base), nil
}

func derive(typ, id string, obj *fhirjson.Object, base string) store.IndexUpdate {
	index := search.Index(obj, base)
	return store.IndexUpdate{Index: index, Compartments: search.PatientCompartments(typ, id, index)}
}

// Instant formats a time as a FHIR instant, the form meta.lastUpdated takes.
func Instant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// stamp returns content (obj marshaled, with resourceType, id and meta
// first) with meta.versionId and meta.lastUpdated set, as stampMeta and
// Marshal would make it, by splicing them into content: a store stamps
// inside its write transaction, where marshaling the resource again would
// hold every other writer up.
func stamp(content []byte, obj *fhirjson.Object, version int64, lastUpdated time.Time) []byte {
	head := fhirjson.Marshal(&fhirjson.Object{Members: obj.Members[:min(2, len(obj.Members))]})
	head = head[:len(head)-1] // {"resourceType":…,"id":…
	const metaOpen = `,"meta":{`
	if !bytes.HasPrefix(content, head) || len(obj.Members) < 2 || obj.Members[0].Name != "resourceType" || obj.Members[1].Name != "id" {
		stampMeta(obj, version, lastUpdated)
		return fhirjson.Marshal(obj)
	}
	rest := content[len(head):]
	hasMeta := obj.Object("meta") != nil
	if hasMeta && !bytes.HasPrefix(rest, []byte(metaOpen)) {
		stampMeta(obj, version, lastUpdated)
		return fhirjson.Marshal(obj)
	}
	out := make([]byte, 0, len(content)+80)
	out = append(out, head...)
	out = append(out, metaOpen...)
	out = append(out, `"versionId":"`...)
	out = strconv.AppendInt(out, version, 10)
	out = append(out, `","lastUpdated":"`...)
	out = append(out, Instant(lastUpdated)...)
	out = append(out, '"')
	if hasMeta {
		out = append(out, ',')
		out = append(out, rest[len(metaOpen):]...)
	} else {
		out = append(out, '}')
		out = append(out, rest...)
	}
	return out
}

// stampMeta sets meta.versionId and meta.lastUpdated first in meta, with
// meta placed right after id (where FHIR's own examples put it).
func stampMeta(obj *fhirjson.Object, version int64, lastUpdated time.Time) {
	old := obj.Object("meta")
	meta := &fhirjson.Object{Members: []fhirjson.Member{
		{Name: "versionId", Value: fmt.Sprint(version)},
		{Name: "lastUpdated", Value: Instant(lastUpdated)},
	}}
	if old != nil {
		for _, m := range old.Members {
			if m.Name != "versionId" && m.Name != "lastUpdated" {
				meta.Members = append(meta.Members, m)
			}
		}
	}
	obj.Set("meta", meta)
	moveToFront(obj, "resourceType", "id", "meta")
}

// moveToFront reorders obj so the named members, where present, come first
// in the given order.
func moveToFront(obj *fhirjson.Object, names ...string) {
	front := make([]fhirjson.Member, 0, len(obj.Members))
	for _, n := range names {
		if v, ok := obj.Get(n); ok {
			front = append(front, fhirjson.Member{Name: n, Value: v})
		}
	}
	if len(front) == 0 {
		return
	}
	rest := obj.Members[:0:0]
	for _, m := range obj.Members {
		keep := true
		for _, n := range names {
			if m.Name == n {
				keep = false
				break
			}
		}
		if keep {
			rest = append(rest, m)
		}
	}
	obj.Members = append(front, rest...)
}

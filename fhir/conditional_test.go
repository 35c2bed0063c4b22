package fhir

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/fhirgraph/fhirgraph/store"
)

func TestConditionParamsKeepFiltersOnly(t *testing.T) {
	got, err := conditionParams("test", "?identifier=urn:mrn|1&_format=json&_pretty=true&_has:Observation:patient:code=x")
	want := url.Values{"identifier": {"urn:mrn|1"}, "_has:Observation:patient:code": {"x"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for raw, names := range map[string]string{
		"":                       "",
		"?":                      "",
		"_format=json":           "",
		"identifier=x&_count=1":  "_count",
		"identifier=x&_sort=_id": "_sort",
		"identifier=x&_include:iterate=Patient:link": "_include:iterate",
		"identifier=x&_elements=name":                "_elements",
		"identifier=%zz":                             "",
	} {
		_, err := conditionParams("test", raw)
		var fe *Error
		if !errors.As(err, &fe) || fe.Status != http.StatusBadRequest {
			t.Errorf("%q: got %v, want a 400", raw, err)
			continue
		}
		if names != "" && (len(fe.Issues[0].Expression) != 1 || fe.Issues[0].Expression[0] != names) {
			t.Errorf("%q: the outcome names %v, want %s", raw, fe.Issues[0].Expression, names)
		}
	}
}

func TestConditionalTargetDecidesTheWrite(t *testing.T) {
	match := &store.Resource{Type: "Patient", ID: "p1", VersionID: 4}
	cases := []struct {
		name    string
		match   *store.Resource
		bodyID  string
		ifMatch int64
		want    store.Write
		status  int
	}{
		{"one match: update at the version found", match, "", 0, store.Write{Op: store.OpUpdate, ID: "p1", IfMatch: 4}, 0},
		{"one match, its id in the body", match, "p1", 0, store.Write{Op: store.OpUpdate, ID: "p1", IfMatch: 4}, 0},
		{"one match, If-Match given", match, "", 2, store.Write{Op: store.OpUpdate, ID: "p1", IfMatch: 2}, 0},
		{"one match, another id in the body", match, "p2", 0, store.Write{}, http.StatusBadRequest},
		{"no match, the body's id", nil, "new", 0, store.Write{Op: store.OpCreate, ID: "new"}, 0},
		{"no match, If-Match given", nil, "", 3, store.Write{}, http.StatusPreconditionFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := conditionalTarget(c.match, c.bodyID, c.ifMatch)
			var fe *Error
			switch {
			case c.status != 0 && (!errors.As(err, &fe) || fe.Status != c.status):
				t.Errorf("got %+v, %v; want status %d", got, err, c.status)
			case c.status == 0 && (err != nil || !reflect.DeepEqual(got, c.want)):
				t.Errorf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	got, err := conditionalTarget(nil, "", 0)
	if err != nil || got.Op != store.OpCreate || got.ID == "" {
		t.Errorf("no match and no id: got %+v, %v; want a create with a new id", got, err)
	}
}

package search

import (
	"errors"
	"net/url"
	"testing"
)

func TestCompileRefusesEmptyIDs(t *testing.T) {
	for _, q := range []string{"_id=", "_id=a,,b", "_id=a&_id="} {
		params, _ := url.ParseQuery(q)
		_, err := Compile("Patient", params, Options{})
		var pe *ParamError
		if !errors.As(err, &pe) || pe.Param != "_id" {
			t.Errorf("%s: got %v, want a ParamError naming _id", q, err)
		}
	}
}

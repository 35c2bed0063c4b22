package model

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestDecimalKeepsTheNumbersText(t *testing.T) {
	var q Quantity
	if err := json.Unmarshal([]byte(`{"value":1.50,"unit":"mg"}`), &q); err != nil {
		t.Fatal(err)
	}
	if q.Value == nil || *q.Value != "1.50" {
		t.Fatalf("value = %v", q.Value)
	}
	var b bytes.Buffer
	q.Value.MarshalGQL(&b)
	if b.String() != `"1.50"` {
		t.Errorf("GraphQL value = %s", b.String())
	}
}

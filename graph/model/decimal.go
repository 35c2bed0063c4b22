package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Decimal is a FHIR decimal kept exact: the JSON number's text. It
// decodes from FHIR JSON (a number) and is served as a GraphQL string, so
// "1.50" stays "1.50".
type Decimal string

// UnmarshalJSON keeps the number's text as written.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Decimal(s)
		return nil
	}
	if !json.Valid(b) {
		return fmt.Errorf("decimal: invalid JSON %q", b)
	}
	*d = Decimal(b)
	return nil
}

// MarshalGQL writes the decimal as a GraphQL string.
func (d Decimal) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(d))) }

// UnmarshalGQL accepts a string or a number.
func (d *Decimal) UnmarshalGQL(v any) error {
	switch v := v.(type) {
	case string:
		*d = Decimal(v)
	case json.Number:
		*d = Decimal(v.String())
	case int, int64, float64:
		*d = Decimal(fmt.Sprint(v))
	default:
		return fmt.Errorf("decimal: want a string, got %T", v)
	}
	return nil
}

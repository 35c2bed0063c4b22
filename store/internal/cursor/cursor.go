// Package cursor encodes the keyset cursors of store searches: the sort
// values and the tiebreak of the last row of a page, bound to the plan they
// were issued for.
package cursor

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/fhirgraph/fhirgraph/store"
)

// Position is where a page ended: the last row's sort key values (nil for
// a row without a value) and its tiebreak. With Back it is where a page
// began, and the cursor asks for the page before it (store.SearchPage.Prev).
type Position struct {
	Plan string    `json:"p"`
	Keys []*string `json:"k"`
	Tie  string    `json:"t"`
	Back bool      `json:"b,omitempty"`
}

// Encode returns the cursor continuing q after pos.
func Encode(q store.Query, pos Position) string {
	pos.Plan = fingerprint(q)
	b, _ := json.Marshal(pos)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Decode returns the position of a cursor Encode made for q; any other
// string is an error wrapping store.ErrInvalid.
func Decode(q store.Query, c string) (Position, error) {
	var pos Position
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		err = json.Unmarshal(b, &pos)
	}
	switch {
	case err != nil:
	case pos.Plan != fingerprint(q):
		err = fmt.Errorf("issued for another search")
	case len(pos.Keys) != len(q.Sort):
		err = fmt.Errorf("%d sort values for %d keys", len(pos.Keys), len(q.Sort))
	}
	if err != nil {
		return Position{}, fmt.Errorf("%w: search cursor: %v", store.ErrInvalid, err)
	}
	return pos, nil
}

// fingerprint identifies what a plan selects and in which order, not
// which page of it.
func fingerprint(q store.Query) string {
	q.Cursor, q.Count, q.Total, q.CountOnly = "", 0, false, false
	b, _ := json.Marshal(q)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

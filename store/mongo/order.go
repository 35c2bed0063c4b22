package mongo

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"github.com/fhirgraph/fhirgraph/store/internal/cursor"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// How search results are ordered: the sort values a write stores per
// parameter (srt, see currentDoc), the sort a search asks for, and the
// keyset conditions of its cursors.

// sortKeys are the values one parameter sorts a resource by (see
// currentDoc): A ascending, inverted (see invert), D descending. The
// embedded engine computes the same values in SQL (sortKey in
// store/sqlite/searchsql.go): the lowest Low, else the lowest Value,
// ascending; the highest High, else the highest Value, descending; empty
// strings do not count.
type sortKeys struct {
	A string `bson:"a,omitempty"`
	D string `bson:"d,omitempty"`
}

// sortFields lays out the sort values of a version's search values, one
// sub-document per parameter in parameter order. _id and _lastUpdated sort
// by the document's own fields, and entries under a modifier ("code:text",
// the material of :text searches) are no parameter _sort can name.
func sortFields(values []store.IndexValue) bson.D {
	type ends struct{ lowMin, valMin, highMax, valMax string }
	byField := map[string]*ends{}
	var fields []string
	for _, v := range values {
		if v.Param == "_id" || v.Param == "_lastUpdated" || strings.Contains(v.Param, ":") {
			continue
		}
		f := fieldName(v.Param)
		e, ok := byField[f]
		if !ok {
			e = &ends{}
			byField[f] = e
			fields = append(fields, f)
		}
		if v.Low != "" && (e.lowMin == "" || v.Low < e.lowMin) {
			e.lowMin = v.Low
		}
		if v.High != "" && v.High > e.highMax {
			e.highMax = v.High
		}
		if v.Value != "" && (e.valMin == "" || v.Value < e.valMin) {
			e.valMin = v.Value
		}
		if v.Value != "" && v.Value > e.valMax {
			e.valMax = v.Value
		}
	}
	slices.Sort(fields)
	var srt bson.D
	for _, f := range fields {
		e := byField[f]
		k := sortKeys{D: cmp.Or(e.highMax, e.valMax)}
		if a := cmp.Or(e.lowMin, e.valMin); a != "" {
			k.A = invert(a)
		}
		if k != (sortKeys{}) {
			srt = append(srt, bson.E{Key: f, Value: k})
		}
	}
	return srt
}

// invert maps strings to strings in the reverse (byte-wise) order, so that
// ascending sort values can be stored inverted and read in descending
// order, where MongoDB puts missing fields last, as FHIR wants in both
// directions. Each byte becomes a code, larger bytes smaller codes, then
// "~" ends the string, above every code, so that a string sorts after
// those it is a prefix of. Codes are printable ASCII and prefix-free: the
// bytes of usual values (space to 'y') one character, "#" to "|"; the
// bytes above them two, "!" or "\"" then one; control bytes two, "}"
// then one.
func invert(s string) string {
	b := make([]byte, 0, len(s)+1)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'z':
			n := 0xff - c // 0 … 133
			b = append(b, '!'+n/93, '!'+n%93)
		case c >= ' ':
			b = append(b, '#'+('y'-c))
		default:
			b = append(b, '}', '!'+(0x1f-c))
		}
	}
	return string(append(b, '~'))
}

// sortField is one field a search orders documents by, and its direction
// in MongoDB terms (1 ascending, -1 descending).
type sortField struct {
	name string
	dir  int
	// key is the position of the plan's sort key; -1 for the id that
	// breaks ties.
	key int
	// param marks a search parameter's sort value, which documents may
	// lack: read descending, MongoDB puts those without last.
	param bool
}

// sortOrder is the order of a plan's rows, ending with _id, the first
// unique field: keys after it cannot change the order.
type sortOrder []sortField

// orderOf maps sort keys to document fields. A parameter's ascending value
// is stored inverted (see sortKeys), so every parameter is read descending.
func orderOf(keys []store.SortKey) sortOrder {
	var o sortOrder
	for i, k := range keys {
		dir := 1
		if k.Desc {
			dir = -1
		}
		switch k.Param {
		case "_id":
			return append(o, sortField{name: "_id", dir: dir, key: i})
		case "_lastUpdated":
			o = append(o, sortField{name: "lastUpdated", dir: dir, key: i})
		default:
			sub := ".a"
			if k.Desc {
				sub = ".d"
			}
			o = append(o, sortField{name: "srt." + fieldName(k.Param) + sub, dir: -1, key: i, param: true})
		}
	}
	return append(o, sortField{name: "_id", dir: 1, key: -1})
}

// reversed is the order read backwards, for the page before a cursor.
func (o sortOrder) reversed() sortOrder {
	r := slices.Clone(o)
	for i := range r {
		r[i].dir = -r[i].dir
	}
	return r
}

func (o sortOrder) spec() bson.D {
	d := bson.D{}
	for _, f := range o {
		d = append(d, bson.E{Key: f.name, Value: f.dir})
	}
	return d
}

// projection reads what a page returns and what its cursors hold.
func (o sortOrder) projection() bson.D {
	p := slices.Clone(readProjection)
	for _, f := range o {
		if f.param {
			p = append(p, bson.E{Key: f.name, Value: 1})
		}
	}
	return p
}

// after is the keyset condition "comes after the cursor's row in this
// order": after it on a field, or equal on it and after on the rest.
// Documents without a parameter's value come last where it is read
// descending, first where ascending (a reversed order).
func (o sortOrder) after(pos *cursor.Position) bson.D {
	var cond bson.D
	for i := len(o) - 1; i >= 0; i-- {
		f := o[i]
		v := cursorValue(f, pos)
		op := "$gt"
		if f.dir < 0 {
			op = "$lt"
		}
		missing := bson.D{{Key: f.name, Value: bson.D{{Key: "$exists", Value: false}}}}
		switch {
		case cond == nil:
			cond = bson.D{{Key: f.name, Value: bson.D{{Key: op, Value: v}}}}
		case v == nil && f.dir < 0:
			cond = bson.D{{Key: "$and", Value: bson.A{missing, cond}}}
		case v == nil:
			cond = bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: f.name, Value: bson.D{{Key: "$exists", Value: true}}}},
				bson.D{{Key: "$and", Value: bson.A{missing, cond}}},
			}}}
		default:
			or := bson.A{bson.D{{Key: f.name, Value: bson.D{{Key: op, Value: v}}}}}
			if f.param && f.dir < 0 {
				or = append(or, missing)
			}
			or = append(or, bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: f.name, Value: v}}, cond}}})
			cond = bson.D{{Key: "$or", Value: or}}
		}
	}
	return cond
}

// cursorValue is the value of f in the cursor's row, as stored; nil for a
// parameter the row has no value of. decodeSearchCursor has checked it.
func cursorValue(f sortField, pos *cursor.Position) any {
	if f.key < 0 {
		return pos.Tie
	}
	v := pos.Keys[f.key]
	switch {
	case v == nil:
		return nil
	case f.name == "lastUpdated":
		ms, _ := strconv.ParseInt(*v, 10, 64)
		return time.UnixMilli(ms).UTC()
	}
	return *v
}

// encodeSearchCursor is the cursor at d: after it, or before it with back.
func encodeSearchCursor(q store.Query, d currentDoc, back bool) string {
	pos := cursor.Position{Tie: d.ID, Keys: make([]*string, len(q.Sort)), Back: back}
	for i, k := range q.Sort {
		var v string
		switch k.Param {
		case "_id":
			v = d.ID
		case "_lastUpdated":
			v = strconv.FormatInt(d.LastUpdated.UnixMilli(), 10)
		default:
			var ok bool
			if v, ok = d.sortValue(k); !ok {
				continue
			}
		}
		pos.Keys[i] = &v
	}
	return cursor.Encode(q, pos)
}

// sortValue is the value of d that k orders by, as stored.
func (d *currentDoc) sortValue(k store.SortKey) (string, bool) {
	sub := "a"
	if k.Desc {
		sub = "d"
	}
	for _, e := range d.Srt {
		if e.Key != fieldName(k.Param) {
			continue
		}
		keys, _ := e.Value.(bson.D)
		for _, x := range keys {
			if v, ok := x.Value.(string); ok && x.Key == sub {
				return v, true
			}
		}
	}
	return "", false
}

// decodeSearchCursor checks a cursor against the plan's order: every field but
// a parameter's value must be there, and times must be times.
func decodeSearchCursor(q store.Query, o sortOrder) (cursor.Position, error) {
	pos, err := cursor.Decode(q, q.Cursor)
	if err != nil {
		return pos, err
	}
	bad := pos.Tie == ""
	for _, f := range o {
		if f.key < 0 || f.param {
			continue
		}
		v := pos.Keys[f.key]
		if v == nil {
			bad = true
		} else if _, err := strconv.ParseInt(*v, 10, 64); f.name == "lastUpdated" && err != nil {
			bad = true
		}
	}
	if bad {
		return cursor.Position{}, fmt.Errorf("%w: search cursor: bad position", store.ErrInvalid)
	}
	return pos, nil
}

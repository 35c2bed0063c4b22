package sqlite

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
)

// entry is one row of the search table without its rid.
type entry struct {
	pid                      int64
	value, system, low, high string
}

func compareEntry(a, b entry) int {
	return cmp.Or(cmp.Compare(a.pid, b.pid), cmp.Compare(a.value, b.value), cmp.Compare(a.system, b.system), cmp.Compare(a.low, b.low), cmp.Compare(a.high, b.high))
}

// indexSet is what a resource's current version contributes to search and
// compartments, each sorted and without duplicates.
type indexSet struct {
	entries      []entry
	compartments []string
}

func (x *indexSet) normalize() {
	slices.SortFunc(x.entries, compareEntry)
	x.entries = slices.CompactFunc(x.entries, func(a, b entry) bool { return compareEntry(a, b) == 0 })
	slices.Sort(x.compartments)
	x.compartments = slices.Compact(x.compartments)
}

// encodeIndex encodes a normalized set for resources.idx: counts and
// lengths as uvarints, strings as bytes.
func encodeIndex(x indexSet) []byte {
	n := 2 * binary.MaxVarintLen64
	for _, e := range x.entries {
		n += 5*binary.MaxVarintLen64 + len(e.value) + len(e.system) + len(e.low) + len(e.high)
	}
	for _, c := range x.compartments {
		n += binary.MaxVarintLen64 + len(c)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(x.entries)))
	for _, e := range x.entries {
		b = binary.AppendUvarint(b, uint64(e.pid))
		b = appendString(b, e.value)
		b = appendString(b, e.system)
		b = appendString(b, e.low)
		b = appendString(b, e.high)
	}
	b = binary.AppendUvarint(b, uint64(len(x.compartments)))
	for _, c := range x.compartments {
		b = appendString(b, c)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadIndex = errors.New("corrupt resource index entry")

// decodeIndex reverses encodeIndex; an empty blob is an empty set.
func decodeIndex(b []byte) (indexSet, error) {
	var x indexSet
	if len(b) == 0 {
		return x, nil
	}
	d := decoder{b: b}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		x.entries = append(x.entries, entry{pid: int64(d.uvarint()), value: d.string(), system: d.string(), low: d.string(), high: d.string()})
	}
	n = d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		x.compartments = append(x.compartments, d.string())
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errBadIndex
	}
	return x, d.err
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadIndex
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errBadIndex
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// diffSorted returns the elements of a not in b and of b not in a, for
// sorted, duplicate-free slices.
func diffSorted[T any](a, b []T, compare func(T, T) int) (onlyA, onlyB []T) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compare(a[i], b[j]); {
		case c < 0:
			onlyA = append(onlyA, a[i])
			i++
		case c > 0:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return append(onlyA, a[i:]...), append(onlyB, b[j:]...)
}

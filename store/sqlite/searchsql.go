package sqlite

import (
	"fmt"
	"strings"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
)

// How a search plan becomes SQL.
//
// A plan selects rows of resources (alias r) in three parts:
//
//   - a driver, the one clause the statement starts from: its predicates
//     read search through its primary key (pid, value, …) and yield rids
//     that resources is joined to by rowid (CROSS JOIN keeps that order, so
//     the plan never depends on the planner's guess). The most selective
//     kind of clause drives: a reference equality (patient=…), then the
//     compartments, another equality, a reverse chain, a prefix, a range,
//     a substring. With IDs the driver is resources_key (type, id); with
//     nothing else, resources_key (type).
//   - every other clause, checked per candidate with EXISTS on search's
//     key (pid, value, rid): a handful of index probes per resource. A chain
//     compares the entry's value with 'Type/'||id of the target plan's
//     rows; a reverse chain looks for 'Type/'||id among the referrers'
//     entries by (pid, value). Missing and Not are NOT EXISTS.
//   - the columns of resources: deleted, practice, last_updated.
//
// Deleted resources have no search or compartments rows (Apply removes
// them), and deleted = 0 excludes them where the driver is resources.
//
// Parameter ids are looked up inside the statement, (SELECT pid FROM params
// …), a constant SQLite evaluates once; a parameter no resource ever had
// yields NULL, which nothing equals.
type sqlBuilder struct {
	sb   strings.Builder
	args []any
	n    int
}

func (b *sqlBuilder) w(parts ...string) {
	for _, p := range parts {
		b.sb.WriteString(p)
	}
}

// arg adds a bound argument and writes its placeholder.
func (b *sqlBuilder) arg(v any) {
	b.args = append(b.args, v)
	b.sb.WriteByte('?')
}

// list writes "(?, ?, …)".
func (b *sqlBuilder) list(vs []string) {
	b.w("(")
	for i, v := range vs {
		if i > 0 {
			b.w(", ")
		}
		b.arg(v)
	}
	b.w(")")
}

// alias returns a table alias not used before in this statement.
func (b *sqlBuilder) alias(prefix string) string {
	b.n++
	return fmt.Sprintf("%s%d", prefix, b.n)
}

func (b *sqlBuilder) pid(typ, param string) {
	b.w("(SELECT pid FROM params WHERE type = ")
	b.arg(typ)
	b.w(" AND param = ")
	b.arg(param)
	b.w(")")
}

// driver kinds, most selective first.
const (
	driveRefEqual = iota
	driveCompartments
	driveEqual
	driveHas
	drivePrefix
	driveRange
	driveContains
	driveNone
)

// driverRank says how well a clause can start a search; driveNone when
// it cannot (a negation needs every resource of the type to test).
func driverRank(c store.Clause) int {
	worst := 0
	for _, p := range c {
		r := driveNone
		switch {
		case p.Missing || p.Not:
		case len(p.Bounds) > 0:
			r = driveRange
		case p.Has != nil:
			r = driveHas
		case p.Target != nil:
			r = driveRefEqual
		case p.Match == store.MatchEqual && strings.Contains(p.Value, "/"):
			r = driveRefEqual
		case p.Match == store.MatchEqual:
			r = driveEqual
		case p.Match == store.MatchPrefix && p.Value != "":
			r = drivePrefix
		case p.Match == store.MatchContains:
			r = driveContains
		default:
			r = driveRange
		}
		worst = max(worst, r)
	}
	return worst
}

// from writes "FROM … WHERE …" selecting the live resources of q, with r
// the alias of resources. The clause at index drive starts the search when
// it can; with drive < 0 the best kind of clause does (see driverRank).
func (b *sqlBuilder) from(q *store.Query, r string, drive int) {
	rank := driveNone
	if drive >= 0 && drive < len(q.Where) {
		rank = driverRank(q.Where[drive])
	}
	if rank == driveNone {
		drive = -1
		for i, c := range q.Where {
			if k := driverRank(c); k < rank {
				drive, rank = i, k
			}
		}
	}
	byIDs := len(q.IDs) > 0
	byCompartments := !byIDs && len(q.Compartments) > 0 && rank > driveCompartments
	switch {
	case byIDs:
		b.w(" FROM resources ", r, " WHERE ", r, ".type = ")
		b.arg(q.Type)
		b.w(" AND ", r, ".id IN ")
		b.list(q.IDs)
		drive = -1
	case byCompartments:
		d := b.alias("d")
		b.w(" FROM (SELECT DISTINCT rid FROM compartments WHERE compartment IN ")
		b.list(q.Compartments)
		b.w(") AS ", d, " CROSS JOIN resources ", r, " ON ", r, ".rid = ", d, ".rid WHERE ", r, ".type = ")
		b.arg(q.Type)
		drive = -1
	case drive >= 0:
		d := b.alias("d")
		b.w(" FROM (")
		b.clauseRIDs(q.Type, q.Where[drive])
		b.w(") AS ", d, " CROSS JOIN resources ", r, " ON ", r, ".rid = ", d, ".rid WHERE ", r, ".type = ")
		b.arg(q.Type)
	default:
		b.w(" FROM resources ", r, " WHERE ", r, ".type = ")
		b.arg(q.Type)
	}
	b.w(" AND ", r, ".deleted = 0")
	if len(q.Compartments) > 0 && !byCompartments {
		c := b.alias("c")
		b.w(" AND EXISTS (SELECT 1 FROM compartments ", c, " WHERE ", c, ".compartment IN ")
		b.list(q.Compartments)
		b.w(" AND ", c, ".rid = ", r, ".rid)")
	}
	if len(q.Practices) > 0 {
		b.w(" AND ", r, ".practice IN ")
		b.list(q.Practices)
	}
	if q.Since != "" {
		b.w(" AND ", r, ".last_updated >= ")
		b.arg(instantMs(q.Since))
	}
	if q.Before != "" {
		b.w(" AND ", r, ".last_updated < ")
		b.arg(instantMs(q.Before))
	}
	for i, c := range q.Where {
		if i == drive {
			continue
		}
		b.w(" AND (")
		for j, p := range c {
			if j > 0 {
				b.w(" OR ")
			}
			b.cond(q.Type, p, r)
		}
		b.w(")")
	}
}

// probeSQL counts the rids a clause that can start a search yields, up to
// limit: what choosing between such clauses needs to know.
func probeSQL(typ string, c store.Clause, limit int) (string, []any) {
	var b sqlBuilder
	b.w("SELECT count(*) FROM (")
	b.clauseRIDs(typ, c)
	b.w(" LIMIT ")
	b.arg(limit)
	b.w(")")
	return b.sb.String(), b.args
}

// clauseRIDs writes a SELECT of the distinct rids matching a clause whose
// predicates are all positive (see driverRank).
func (b *sqlBuilder) clauseRIDs(typ string, c store.Clause) {
	for i, p := range c {
		if i > 0 {
			b.w(" UNION ")
		}
		if p.Has != nil {
			b.hasRIDs(typ, p.Has)
			continue
		}
		s := b.alias("s")
		if len(c) == 1 {
			b.w("SELECT DISTINCT ")
		} else {
			b.w("SELECT ")
		}
		b.w(s, ".rid FROM search ", s, " WHERE ")
		b.entry(typ, p, s)
	}
}

// hasRIDs writes a SELECT of the rids of resources of typ that resources
// matching h.Query point at through h.Param.
func (b *sqlBuilder) hasRIDs(typ string, h *store.ReverseChain) {
	x, s, t := b.alias("x"), b.alias("s"), b.alias("t")
	b.w("SELECT ", x, ".rid FROM resources ", x, " WHERE ", x, ".type = ")
	b.arg(typ)
	b.w(" AND ", x, ".id IN (SELECT substr(", s, ".value, ")
	b.arg(len(typ) + 2)
	b.w(") FROM search ", s, " WHERE ", s, ".pid = ")
	b.pid(h.Query.Type, h.Param)
	b.w(" AND ", s, ".value >= ")
	b.arg(typ + "/")
	b.w(" AND ", s, ".value < ")
	b.arg(typ + "0") // '0' follows '/'
	b.w(" AND ", s, ".rid IN (SELECT ", t, ".rid")
	b.from(h.Query, t, -1)
	b.w("))")
}

// cond writes a predicate as a condition on the resource r.
func (b *sqlBuilder) cond(typ string, p store.Predicate, r string) {
	s := b.alias("s")
	if p.Has != nil {
		t := b.alias("t")
		if p.Not {
			b.w("NOT ")
		}
		b.w("EXISTS (SELECT 1 FROM search ", s, " WHERE ", s, ".pid = ")
		b.pid(p.Has.Query.Type, p.Has.Param)
		b.w(" AND ", s, ".value = ")
		b.arg(typ + "/")
		// "+" keeps SQLite from walking the referrers' list per candidate:
		// the candidate's own reference entries are found by (pid, value).
		b.w(" || ", r, ".id AND +", s, ".rid IN (SELECT ", t, ".rid")
		b.from(p.Has.Query, t, -1)
		b.w("))")
		return
	}
	if p.Missing {
		if !p.Not {
			b.w("NOT ")
		}
		b.w("EXISTS (SELECT 1 FROM search ", s, " WHERE ", s, ".rid = ", r, ".rid AND ", s, ".pid = ")
		b.pid(typ, p.Param)
		b.w(")")
		return
	}
	if p.Not {
		b.w("NOT ")
	}
	b.w("EXISTS (SELECT 1 FROM search ", s, " WHERE ", s, ".rid = ", r, ".rid AND ")
	b.entry(typ, p, s)
	b.w(")")
}

// entry writes the conditions one search row s must meet for p.
func (b *sqlBuilder) entry(typ string, p store.Predicate, s string) {
	b.w(s, ".pid = ")
	b.pid(typ, p.Param)
	switch {
	case p.Target != nil:
		t := b.alias("t")
		b.w(" AND ", s, ".value IN (SELECT ")
		b.arg(p.Target.Type + "/")
		b.w(" || ", t, ".id")
		b.from(p.Target, t, -1)
		b.w(")")
	case p.Match == store.MatchEqual:
		b.w(" AND ", s, ".value = ")
		b.arg(p.Value)
	case p.Match == store.MatchPrefix && p.Value != "":
		// A range on the primary key, not LIKE (which would scan): every
		// string starting with v sorts in [v, v+U+10FFFF).
		b.w(" AND ", s, ".value >= ")
		b.arg(p.Value)
		b.w(" AND ", s, ".value < ")
		b.arg(p.Value + "\U0010FFFF")
	case p.Match == store.MatchContains:
		b.w(" AND instr(", s, ".value, ")
		b.arg(p.Value)
		b.w(") > 0")
	}
	if p.HasSystem {
		b.w(" AND ", s, ".system = ")
		b.arg(p.System)
	}
	for _, bd := range p.Bounds {
		col := ".low"
		if bd.Field == store.High {
			col = ".high"
		}
		b.w(" AND ", s, col, cmpOps[bd.Op])
		b.arg(bd.Arg)
	}
}

var cmpOps = map[store.CmpOp]string{store.LT: " < ", store.LE: " <= ", store.GT: " > ", store.GE: " >= "}

// sortKey writes the expression a sort key orders resource r by: the
// lowest value (or Low) ascending, the highest (or High) descending.
func (b *sqlBuilder) sortKey(typ string, k store.SortKey, r string) {
	switch k.Param {
	case "_lastUpdated":
		b.w(r, ".last_updated")
		return
	case "_id":
		b.w(r, ".id")
		return
	}
	s := b.alias("s")
	if k.Desc {
		b.w("(SELECT coalesce(max(nullif(", s, ".high, '')), max(nullif(", s, ".value, '')))")
	} else {
		b.w("(SELECT coalesce(min(nullif(", s, ".low, '')), min(nullif(", s, ".value, '')))")
	}
	b.w(" FROM search ", s, " WHERE ", s, ".rid = ", r, ".rid AND ", s, ".pid = ")
	b.pid(typ, k.Param)
	b.w(")")
}

// countSQL is the statement that counts the matches of q, started from
// the clause drive (see from).
func countSQL(q *store.Query, drive int) (string, []any) {
	var b sqlBuilder
	b.w("SELECT count(*)")
	b.from(q, "r", drive)
	return b.sb.String(), b.args
}

// pageSQL is the statement that returns the page of q after c (nil for
// the first page), or before it when c.Back: rid, id, version,
// last_updated, body, then the sort keys, in the plan's order, one row
// more than a page. The inner query orders and limits rids and keys only
// (from the cursor on, so backwards for a page before it); bodies are read
// for the page alone. The clause drive starts the search (see from).
func pageSQL(q *store.Query, c *searchCursor, drive int) (string, []any) {
	var b sqlBuilder
	b.w("SELECT p.rid, o.id, o.version, o.last_updated, v.body")
	for i := range q.Sort {
		b.w(fmt.Sprintf(", p.k%d", i))
	}
	b.w(" FROM (SELECT * FROM (SELECT r.rid AS rid")
	for i, k := range q.Sort {
		b.w(", ")
		b.sortKey(q.Type, k, "r")
		b.w(fmt.Sprintf(" AS k%d", i))
	}
	b.from(q, "r", drive)
	b.w(")")
	back := c != nil && c.Back
	if c != nil {
		b.w(" WHERE ")
		b.after(q.Sort, c, 0, back)
	}
	b.w(" ORDER BY ")
	b.w(orderBy(q.Sort, "", back))
	b.w(" LIMIT ")
	b.arg(q.Count + 1)
	b.w(") AS p CROSS JOIN resources o ON o.rid = p.rid JOIN versions v ON v.seq = o.seq ORDER BY ")
	b.w(orderBy(q.Sort, "p.", false))
	return b.sb.String(), b.args
}

// orderBy is the plan's order (NULL keys last, rid breaking ties), or its
// reverse.
func orderBy(keys []store.SortKey, prefix string, reverse bool) string {
	asc, desc, nulls, rid := " ASC", " DESC", " NULLS LAST, ", "rid"
	if reverse {
		asc, desc, nulls, rid = desc, asc, " NULLS FIRST, ", "rid DESC"
	}
	var sb strings.Builder
	for i, k := range keys {
		dir := asc
		if k.Desc {
			dir = desc
		}
		fmt.Fprintf(&sb, "%sk%d%s%s", prefix, i, dir, nulls)
	}
	sb.WriteString(prefix + rid)
	return sb.String()
}

// after writes the keyset condition "sorts after the cursor's row" (with
// back, "before"), from key i on: after on key i, or equal on it and after
// on the rest; rid breaks ties. NULL keys sort last.
func (b *sqlBuilder) after(keys []store.SortKey, c *searchCursor, i int, back bool) {
	if i == len(keys) {
		if back {
			b.w("rid < ")
		} else {
			b.w("rid > ")
		}
		b.arg(c.RID)
		return
	}
	k := fmt.Sprintf("k%d", i)
	v := c.bind(keys, i)
	b.w("(")
	switch {
	case v != nil:
		op := " > "
		if keys[i].Desc != back {
			op = " < "
		}
		b.w(k, op)
		b.arg(v)
		if !back {
			b.w(" OR ", k, " IS NULL")
		}
		b.w(" OR (", k, " = ")
		b.arg(v)
	case back:
		b.w(k, " IS NOT NULL OR (", k, " IS NULL")
	default:
		b.w("(", k, " IS NULL")
	}
	b.w(" AND ")
	b.after(keys, c, i+1, back)
	b.w("))")
}

// instantMs converts an instant in the index layout to Unix ms; Validate
// has checked it.
func instantMs(s string) int64 {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t.UnixMilli()
}

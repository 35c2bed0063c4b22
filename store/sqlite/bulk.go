package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// bulkInsert inserts many rows with few statements: one statement per chunk
// of up to 64 rows. Per-statement overhead, not per-row work, is what
// row-at-a-time inserts spend most on. The statements are prepared on the
// write connection when the store opens (a write transaction holds the only
// write connection, so none can be prepared later).
type bulkInsert struct {
	prefix string // "INSERT … VALUES "
	cols   int
	stmts  map[int]*sql.Stmt // by rows per statement
}

// chunkSizes are the statement sizes, largest first.
var chunkSizes = [...]int{64, 16, 4, 1}

func newBulkInsert(prefix string, cols int) *bulkInsert {
	return &bulkInsert{prefix: prefix, cols: cols, stmts: map[int]*sql.Stmt{}}
}

func (b *bulkInsert) prepare(ctx context.Context, db *sql.DB) error {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", b.cols), ",") + ")"
	for _, n := range chunkSizes {
		st, err := db.PrepareContext(ctx, b.prefix+strings.TrimSuffix(strings.Repeat(row+",", n), ","))
		if err != nil {
			return fmt.Errorf("sqlite store: prepare %q: %w", b.prefix, err)
		}
		b.stmts[n] = st
	}
	return nil
}

// exec inserts the rows whose values args holds one after the other.
func (b *bulkInsert) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	for rows := len(args) / b.cols; rows > 0; {
		n := chunkSizes[len(chunkSizes)-1]
		for _, size := range chunkSizes {
			if size <= rows {
				n = size
				break
			}
		}
		if _, err := tx.StmtContext(ctx, b.stmts[n]).ExecContext(ctx, args[:n*b.cols]...); err != nil {
			return err
		}
		args = args[n*b.cols:]
		rows -= n
	}
	return nil
}

func (b *bulkInsert) close() {
	for _, st := range b.stmts {
		st.Close()
	}
}

// Package pgcopy helps the PostgreSQL read models write the rows a batch
// created: binary COPY is the fastest way in, and the version-guarded
// upsert the read model already has takes over when one of the rows turns
// out to be stored already.
package pgcopy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Insert writes n rows into table with COPY, inside a savepoint of tx;
// row(i) gives the values of row i in the order of columns. If one of the
// rows is stored already (a unique violation: a redelivery of its
// creation), the savepoint is rolled back and fallback writes them all
// instead, which must be an upsert that never moves a row back.
func Insert(ctx context.Context, tx pgx.Tx, table string, columns []string, n int, row func(i int) []any,
	fallback func(ctx context.Context, tx pgx.Tx) error) error {
	if n == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("insert %s: %w", table, err)
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromSlice(n, func(i int) ([]any, error) {
		return row(i), nil
	}))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		if err := sp.Rollback(ctx); err != nil {
			return fmt.Errorf("insert %s: %w", table, err)
		}
		return fallback(ctx, tx)
	}
	_ = sp.Rollback(ctx)
	return fmt.Errorf("insert %s: %w", table, err)
}

// Columns splits a comma-separated column list, as a read model writes it
// into its SQL, into the names Insert takes.
func Columns(list string) []string {
	out := strings.Split(list, ",")
	for i, c := range out {
		out[i] = strings.TrimSpace(c)
	}
	return out
}

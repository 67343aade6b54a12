package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
)

// isUnavailable is what the HTTP adapter asks of an error before answering
// 503.
func isUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

func TestMarkUnavailable(t *testing.T) {
	t.Parallel()
	marked := &postgres.UnavailableError{Err: io.EOF}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("boom"), false},
		{"admin shutdown", fmt.Errorf("load: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"connection lost mid-protocol", fmt.Errorf("receive: %w", io.ErrUnexpectedEOF), true},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, true},
		{"cancelled by the caller", fmt.Errorf("query: %w", context.Canceled), false},
		{"deadline of the caller", context.DeadlineExceeded, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := postgres.MarkUnavailable(tc.err)
			require.Equal(t, tc.want, isUnavailable(got))
			if tc.err == nil {
				require.NoError(t, got)
				return
			}
			require.ErrorIs(t, got, tc.err, "the original error stays visible")
			if !tc.want {
				require.True(t, got == tc.err, "an error of the request itself is not wrapped: %v", got)
			}
		})
	}
	require.Same(t, marked, postgres.MarkUnavailable(marked), "not wrapped twice")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestStoreReportsADatabaseThatIsDownAsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "postgres://postgres@" + closedPort(t) + "/postgres?sslmode=disable&connect_timeout=5"

	// Open's pool marks a refused connection for every user of the pool.
	_, err := postgres.Open(ctx, url, postgres.Config{})
	require.Error(t, err)
	require.True(t, isUnavailable(err), "%v", err)

	// A store on a pool of the caller's classifies the error itself.
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	s, err := postgres.New(ctx, pool, postgres.Config{SkipMigrations: true})
	require.NoError(t, err)
	_, err = s.Load(ctx, "booking-x", 0)
	require.True(t, isUnavailable(err), "%v", err)
	_, err = s.HeadPosition(ctx)
	require.True(t, isUnavailable(err), "%v", err)
}

func TestStoreReportsATerminatedConnectionAsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := mustOpen(t, postgres.Config{MaxConns: 1})
	_, err := s.HeadPosition(ctx)
	require.NoError(t, err)
	// The server ends the store's session, as a shutdown or a failover
	// would.
	n := mustExec(t, url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.EqualValues(t, 1, n)
	_, err = s.Load(ctx, "booking-x", 0)
	require.Error(t, err)
	require.True(t, isUnavailable(err), "%v", err)
	// The pool replaces the connection: the store works again.
	_, err = s.Load(ctx, "booking-x", 0)
	require.NoError(t, err)
}

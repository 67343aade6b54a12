package postgres

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// UnavailableError wraps an error that says the database could not be
// reached or stopped serving (it is down, starting up or shutting down, or
// the connection was lost), as opposed to an error of the request itself.
// It reports Unavailable() true, which the HTTP adapter answers with 503
// service_unavailable, so a client retries (with its Idempotency-Key)
// instead of taking the failure for a bug. errors.Is and errors.As see
// the original error through Unwrap.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string { return "database unavailable: " + e.Err.Error() }

// Unwrap returns the original error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable reports true: the condition is temporary and a retry may
// succeed.
func (e *UnavailableError) Unavailable() bool { return true }

// MarkUnavailable returns err wrapped in *UnavailableError when it tells of
// an unreachable or stopping database, and err unchanged otherwise (nil
// stays nil, an error already marked is not wrapped twice). It recognises:
// a failed connection attempt (*pgconn.ConnectError); the server's errors
// of class 08 (connection exception), 57P01 to 57P03 (shutting down,
// crashed, starting up) and 53300 (too many connections); a network error
// or an end of file in the middle of the protocol; and pgx's errors that
// are safe to retry because nothing reached the server (a closed
// connection). A cancelled or expired context is the caller's doing, not
// the database's, and is left alone.
func MarkUnavailable(err error) error {
	if err == nil || !unavailable(err) {
		return err
	}
	return &UnavailableError{Err: err}
}

// markUnavailable is MarkUnavailable on a named result, for a defer.
func markUnavailable(err *error) { *err = MarkUnavailable(*err) }

func unavailable(err error) bool {
	var marked *UnavailableError
	if errors.As(err, &marked) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08",
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", pgErr.Code == "53300":
			return true
		}
		// Any other server error answers the statement: the database is
		// there, even when the error came while connecting (a wrong
		// password, an unknown database).
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// unavailableDial wraps dial so that a failed connection attempt, the
// first thing every user of the pool meets while the server is down,
// carries *UnavailableError, also for the pool's users outside this
// package (the idempotency keys, the read models).
func unavailableDial(dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			return nil, &UnavailableError{Err: err}
		}
		return c, err
	}
}

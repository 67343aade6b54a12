package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
)

// TestAppendDuplicates covers every way an append can meet event ids that
// are stored already: through the function's stale path, through the
// unique index on event_id, whole and partial, same stream and another.
func TestAppendDuplicates(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	tenant := uuid.New()

	cases := []struct {
		name string
		// run appends first, then the retry, and checks the retry's outcome.
		run func(t *testing.T, stream string)
	}{
		{"WholeRetryStaleExact", func(t *testing.T, stream string) {
			e1, e2 := ev("booking.created", `{}`), ev("booking.confirmed", `{}`)
			first, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1, e2}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Exact(2), Events: []eventstore.EventData{ev("booking.noted", `{}`)}})
			require.NoError(t, err)
			retry, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1, e2}})
			require.NoError(t, err)
			require.True(t, retry.Duplicate)
			require.Equal(t, first.LastPosition, retry.LastPosition)
			require.Equal(t, map[string]int64{stream: 2}, retry.Versions, "the versions the events got, not the stream's")
		}},
		{"SingleRetryStaleExact", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			first, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Exact(1), Events: []eventstore.EventData{ev("booking.noted", `{}`)}})
			require.NoError(t, err)
			retry, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			require.Equal(t, eventstore.AppendResult{LastPosition: first.LastPosition, Versions: map[string]int64{stream: 1}, Duplicate: true}, retry)
		}},
		{"WholeRetryAny", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			first, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Any, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			retry, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Any, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			require.True(t, retry.Duplicate)
			require.Equal(t, first, eventstore.AppendResult{LastPosition: retry.LastPosition, Versions: retry.Versions})
		}},
		{"PartialStale", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1, ev("x.y", `{}`)}})
			require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
		}},
		{"PartialAny", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Any, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.Any, Events: []eventstore.EventData{ev("x.y", `{}`), e1}})
			require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
		}},
		{"WholeInAnotherStreamFresh", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			// The other stream's expectation holds, so the event_id index fires.
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream + "-other", TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
		}},
		{"WholeInAnotherStreamStale", func(t *testing.T, stream string) {
			e1 := ev("booking.created", `{}`)
			_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream + "-other", TenantID: tenant, Expected: eventstore.Any, Events: []eventstore.EventData{ev("x.y", `{}`)}})
			require.NoError(t, err)
			_, err = s.Append(ctx, eventstore.StreamAppend{StreamID: stream + "-other", TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{e1}})
			require.ErrorIs(t, err, eventstore.ErrDuplicateEvent)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stream := "booking-" + uuid.NewString()
			tc.run(t, stream)
			report, err := s.Verify(ctx, "", uuid.Nil)
			require.NoError(t, err)
			require.True(t, report.OK(), "%+v", report.Breaks)
		})
	}
}

// TestAppendInvalid checks that malformed appends fail before the
// database is asked, with ErrInvalidAppend.
func TestAppendInvalid(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	stream := "booking-" + uuid.NewString()
	cases := []struct {
		name    string
		appends []eventstore.StreamAppend
	}{
		{"Nothing", nil},
		{"NoEvents", []eventstore.StreamAppend{{StreamID: stream}}},
		{"ArrayData", []eventstore.StreamAppend{{StreamID: stream, Events: []eventstore.EventData{ev("x.y", `[1]`)}}}},
		{"BadExpected", []eventstore.StreamAppend{{StreamID: stream, Expected: -2, Events: []eventstore.EventData{ev("x.y", `{}`)}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.Append(t.Context(), tc.appends...)
			require.ErrorIs(t, err, eventstore.ErrInvalidAppend)
		})
	}
	v, err := s.StreamVersion(t.Context(), stream)
	require.NoError(t, err)
	require.Zero(t, v)
}

// TestAppendLosesAtIndex makes a writer pass the version check while
// another transaction holds the same version uncommitted, so the unique
// index, not the check, decides: an Exact writer gets the typed conflict,
// a writer expecting Any tries again and lands on the next version.
func TestAppendLosesAtIndex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		expected eventstore.ExpectedVersion
		check    func(t *testing.T, res eventstore.AppendResult, err error, stream string)
	}{
		{"Exact", eventstore.NoStream, func(t *testing.T, _ eventstore.AppendResult, err error, stream string) {
			var vc *eventstore.VersionConflictError
			require.ErrorAs(t, err, &vc)
			require.Equal(t, eventstore.VersionConflictError{StreamID: stream, Expected: eventstore.NoStream, Actual: 1}, *vc)
		}},
		{"Any", eventstore.Any, func(t *testing.T, res eventstore.AppendResult, err error, stream string) {
			require.NoError(t, err)
			require.Equal(t, int64(2), res.Versions[stream])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, url := mustOpen(t, postgres.Config{})
			ctx := t.Context()
			stream, tenant := "booking-"+uuid.NewString(), uuid.New()

			holder, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer holder.Close(context.Background())
			tx, err := holder.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, rawAppendSQL, rawAppendArgs(stream, tenant, 0, ev("booking.created", `{}`))...)
			require.NoError(t, err)

			type result struct {
				res eventstore.AppendResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				res, err := s.Append(ctx, eventstore.StreamAppend{StreamID: stream, TenantID: tenant, Expected: tc.expected,
					Events: []eventstore.EventData{ev("booking.created", `{}`)}})
				done <- result{res, err}
			}()
			awaitLockWaiters(t, url, 1)
			require.NoError(t, tx.Commit(ctx))
			r := <-done
			tc.check(t, r.res, r.err, stream)

			report, err := s.Verify(ctx, stream, uuid.Nil)
			require.NoError(t, err)
			require.True(t, report.OK(), "%+v", report.Breaks)
		})
	}
}

// TestAppendConcurrentExact races 32 writers for the same version of one
// stream, round after round: exactly one wins each round and every loser
// gets the typed conflict naming the winner's version.
func TestAppendConcurrentExact(t *testing.T) {
	t.Parallel()
	const (
		writers = 32
		rounds  = 6
	)
	s, _ := mustOpen(t, postgres.Config{MaxConns: 16})
	stream, tenant := "booking-"+uuid.NewString(), uuid.New()
	for round := range int64(rounds) {
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, writers)
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				_, errs[w] = s.Append(t.Context(), eventstore.StreamAppend{StreamID: stream, TenantID: tenant,
					Expected: eventstore.Exact(round), Events: []eventstore.EventData{ev("booking.updated", fmt.Sprintf(`{"w":%d}`, w))}})
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			var vc *eventstore.VersionConflictError
			require.ErrorAs(t, err, &vc)
			require.Equal(t, eventstore.VersionConflictError{StreamID: stream, Expected: eventstore.Exact(round), Actual: round + 1}, *vc)
		}
		require.Equal(t, 1, wins, "round %d", round)
	}
	evs, err := s.Load(t.Context(), stream, 0)
	require.NoError(t, err)
	require.Len(t, evs, rounds)
	report, err := s.Verify(t.Context(), stream, uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report.Breaks)
}

// TestAppendConcurrentAny lets 32 writers expecting Any append to one
// stream at once: all succeed, on consecutive versions, with an intact
// chain.
func TestAppendConcurrentAny(t *testing.T) {
	t.Parallel()
	const writers, each = 32, 4
	s, _ := mustOpen(t, postgres.Config{MaxConns: 16})
	stream, tenant := "booking-"+uuid.NewString(), uuid.New()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: stream, TenantID: tenant,
					Expected: eventstore.Any, Events: []eventstore.EventData{ev("booking.updated", `{}`)}}); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	evs, err := s.Load(t.Context(), stream, 0)
	require.NoError(t, err)
	require.Len(t, evs, writers*each)
	for i, e := range evs {
		require.Equal(t, int64(i+1), e.StreamVersion)
	}
	report, err := s.Verify(t.Context(), stream, uuid.Nil)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report.Breaks)
}

// TestAppendMultiStreamConflictWritesNothing checks that a stale second
// stream fails the whole append, in the caller's order or not.
func TestAppendMultiStreamConflictWritesNothing(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	tenant := uuid.New()
	a, b := "booking-a"+uuid.NewString(), "booking-b"+uuid.NewString()
	_, err := s.Append(ctx, eventstore.StreamAppend{StreamID: b, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{ev("x.y", `{}`)}})
	require.NoError(t, err)
	_, err = s.Append(ctx,
		eventstore.StreamAppend{StreamID: b, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{ev("x.y", `{}`)}},
		eventstore.StreamAppend{StreamID: a, TenantID: tenant, Expected: eventstore.NoStream, Events: []eventstore.EventData{ev("x.y", `{}`)}},
	)
	var vc *eventstore.VersionConflictError
	require.ErrorAs(t, err, &vc)
	require.Equal(t, eventstore.VersionConflictError{StreamID: b, Expected: eventstore.NoStream, Actual: 1}, *vc)
	v, err := s.StreamVersion(ctx, a)
	require.NoError(t, err)
	require.Zero(t, v)
}

// TestAppendStoresCanonicalJSON checks what the store keeps of a payload:
// jsonb's normal form, with metadata as written.
func TestAppendStoresCanonicalJSON(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	stream := "booking-" + uuid.NewString()
	e := ev("booking.created", `{ "b": 1,   "a": {"y": [1, 2], "x": null} }`)
	e.Metadata = eventstore.Metadata{CorrelationID: "c1", Actor: "u1", IdempotencyKey: "k"}
	_, err := s.Append(t.Context(), eventstore.StreamAppend{StreamID: stream, Expected: eventstore.NoStream, Events: []eventstore.EventData{e}})
	require.NoError(t, err)
	evs, err := s.Load(t.Context(), stream, 0)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, `{"a": {"x": null, "y": [1, 2]}, "b": 1}`, string(evs[0].Data))
	require.Equal(t, e.Metadata, evs[0].Metadata)
	require.Equal(t, "booking", evs[0].Category)
	require.Len(t, evs[0].Hash, 32)
	require.True(t, json.Valid(evs[0].Data))
}

// TestAppendFunctionRejectsMalformedArrays calls the append function the
// way no Store does, as another client might, and checks that it refuses
// arrays that disagree instead of writing a partial append.
func TestAppendFunctionRejectsMalformedArrays(t *testing.T) {
	t.Parallel()
	s, url := mustOpen(t, postgres.Config{})
	id, tenant := uuid.New(), uuid.New()
	cases := []struct {
		name string
		args []any
	}{
		{"Empty", []any{[]string{}, []uuid.UUID{}, []int64{}, []int32{}, []uuid.UUID{}, []string{}, []int32{}, []string{}, []string{}}},
		{"TenantsShort", []any{[]string{"a-1"}, []uuid.UUID{}, []int64{0}, []int32{1}, []uuid.UUID{id}, []string{"x.y"}, []int32{1}, []string{`{}`}, []string{`{}`}}},
		{"CountsDisagree", []any{[]string{"a-1"}, []uuid.UUID{tenant}, []int64{0}, []int32{2}, []uuid.UUID{id}, []string{"x.y"}, []int32{1}, []string{`{}`}, []string{`{}`}}},
		{"ZeroCount", []any{[]string{"a-1", "a-2"}, []uuid.UUID{tenant, tenant}, []int64{0, 0}, []int32{0, 1}, []uuid.UUID{id}, []string{"x.y"}, []int32{1}, []string{`{}`}, []string{`{}`}}},
	}
	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := conn.Exec(t.Context(), rawAppendSQL, tc.args...)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "22023", pgErr.Code)
		})
	}
	head, err := s.HeadPosition(t.Context())
	require.NoError(t, err)
	require.Zero(t, head)
}

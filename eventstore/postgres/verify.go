package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// verifyQuery recomputes every chain in one pass: a window over each
// stream in version order yields the previous version and hash, each row is
// judged, and each stream keeps its first broken row. The FULL JOIN with
// booking_streams adds what the rows cannot show: a head whose version has
// no event (a deleted last event) or whose hash differs from that event's.
// The output is one row per stream, read as a stream of rows, so a large
// table is never held in memory. %s is the filter on both tables.
const verifyQuery = `
WITH chain AS (
    SELECT stream_id, stream_version, position, hash,
           lag(stream_version) OVER w AS prev_version,
           sha256(coalesce(lag(hash) OVER w, '\x'::bytea) || booking_events_canonical(
               stream_id, stream_version, event_id, type, event_version,
               tenant_id, recorded_at, data, metadata)) AS want
      FROM booking_events
     WHERE %[1]s
    WINDOW w AS (PARTITION BY stream_id ORDER BY stream_version)
), judged AS (
    SELECT stream_id, stream_version, position, hash,
           CASE
             WHEN prev_version IS NULL AND stream_version <> 1 THEN 'version_gap'
             WHEN prev_version = stream_version THEN 'version_duplicate'
             WHEN prev_version IS NOT NULL AND stream_version <> prev_version + 1 THEN 'version_gap'
             WHEN hash <> want THEN 'hash_mismatch'
           END AS reason,
           CASE WHEN prev_version = stream_version OR stream_version = coalesce(prev_version, 0) + 1
                THEN stream_version ELSE coalesce(prev_version, 0) + 1
           END AS break_version
      FROM chain
), per_stream AS (
    SELECT stream_id, count(*) AS events, max(stream_version) AS last_version,
           (array_agg(break_version ORDER BY stream_version) FILTER (WHERE reason IS NOT NULL))[1] AS break_version,
           (array_agg(position ORDER BY stream_version) FILTER (WHERE reason IS NOT NULL))[1] AS break_position,
           (array_agg(reason ORDER BY stream_version) FILTER (WHERE reason IS NOT NULL))[1] AS break_reason
      FROM judged
     GROUP BY stream_id
), heads AS (
    SELECT h.stream_id, h.version, h.last_position,
           h.hash IS NOT DISTINCT FROM (SELECT e.hash FROM booking_events e
                                         WHERE e.stream_id = h.stream_id AND e.stream_version = h.version) AS hash_ok
      FROM booking_streams h
     WHERE %[1]s
)
SELECT coalesce(p.stream_id, h.stream_id), coalesce(p.events, 0), coalesce(p.last_version, 0),
       p.break_version, p.break_position, p.break_reason,
       h.version, h.last_position, h.hash_ok
  FROM per_stream p FULL JOIN heads h ON h.stream_id = p.stream_id`

// Verify recomputes the hash chain and checks the version sequence of one
// stream (streamID set), of one tenant's streams (tenantID set) or of every
// stream, in one streamed query, and reports the first break of each
// broken stream: hash_mismatch for an edited row, version_gap for a missing
// one (also a deleted last event, found through booking_streams, the head
// table the append writes in the same statement), version_duplicate for a
// repeated version. It only reads; it is safe for concurrent use, also with
// appends (each stream is judged in one snapshot). Breaks are reported as
// data, not as an error; the error is for a failed query.
func (s *Store) Verify(ctx context.Context, streamID string, tenantID uuid.UUID) (_ eventstore.VerifyReport, err error) {
	defer markUnavailable(&err)
	filter, args := "true", []any{}
	switch {
	case streamID != "" && tenantID != uuid.Nil:
		filter, args = "stream_id = $1 AND tenant_id = $2", []any{streamID, tenantID}
	case streamID != "":
		filter, args = "stream_id = $1", []any{streamID}
	case tenantID != uuid.Nil:
		filter, args = "tenant_id = $1", []any{tenantID}
	}
	rows, err := s.pool.Query(ctx, fmt.Sprintf(verifyQuery, filter), args...)
	if err != nil {
		return eventstore.VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	var (
		report                      eventstore.VerifyReport
		stream                      string
		events, last                int64
		breakVersion, breakPosition *int64
		breakReason                 *string
		headVersion, headPosition   *int64
		headHashOK                  *bool
	)
	_, err = pgx.ForEachRow(rows, []any{&stream, &events, &last, &breakVersion, &breakPosition,
		&breakReason, &headVersion, &headPosition, &headHashOK}, func() error {
		report.StreamsChecked++
		report.EventsChecked += events
		var b *eventstore.Break
		if breakReason != nil {
			b = &eventstore.Break{StreamID: stream, Version: *breakVersion, Position: *breakPosition, Reason: *breakReason}
		}
		if headVersion != nil {
			var h *eventstore.Break
			switch {
			case last < *headVersion:
				h = &eventstore.Break{StreamID: stream, Version: last + 1, Reason: "version_gap"}
				if last+1 == *headVersion {
					h.Position = *headPosition
				}
			case last > *headVersion:
				// Rows past the head were written behind the append.
				h = &eventstore.Break{StreamID: stream, Version: *headVersion + 1, Reason: "version_gap"}
			case headHashOK == nil || !*headHashOK:
				h = &eventstore.Break{StreamID: stream, Version: *headVersion, Position: *headPosition, Reason: "hash_mismatch"}
			}
			if h != nil && (b == nil || h.Version < b.Version) {
				b = h
			}
		}
		if b != nil {
			report.Breaks = append(report.Breaks, *b)
		}
		return nil
	})
	if err != nil {
		return eventstore.VerifyReport{}, fmt.Errorf("verify: %w", err)
	}
	slices.SortFunc(report.Breaks, func(a, b eventstore.Break) int { return strings.Compare(a.StreamID, b.StreamID) })
	return report, nil
}

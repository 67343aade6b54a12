package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/google/uuid"
)

// resourceBookingCategories are the stream categories whose events name the
// resource they occupy in data.resource_id: history --resource shows every
// stream of these categories that ever named the resource.
var resourceBookingCategories = []string{"booking", "hold", "waitlist"}

// historyQuery selects the events history prints: exactly one of booking,
// resource and tenant, within [from, to) of recorded_at when set.
type historyQuery struct {
	booking, resource, tenant uuid.UUID
	from, to                  time.Time
}

// sql returns the streaming query for q, oldest first by position.
//
// For a resource it takes the resource's own stream and every booking
// stream whose events name the resource in data.resource_id (the
// booking.created event does): the later events of a booking (cancelled,
// status_changed) carry only the booking id, so matching events rather
// than streams would lose them. No index covers data->>'resource_id'; the
// subquery scans the booking category, acceptable for an operator's tool.
func (q historyQuery) sql() (string, []any) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case q.booking != uuid.Nil:
		where = append(where, "stream_id = "+arg(domain.BookingStream(q.booking)))
	case q.resource != uuid.Nil:
		where = append(where, "(stream_id = "+arg(domain.ResourceStream(q.resource))+
			" OR stream_id IN (SELECT stream_id FROM booking_events WHERE category = ANY("+
			arg(resourceBookingCategories)+") AND data->>'resource_id' = "+arg(q.resource.String())+"))")
	case q.tenant != uuid.Nil:
		where = append(where, "tenant_id = "+arg(q.tenant))
	}
	if !q.from.IsZero() {
		where = append(where, "recorded_at >= "+arg(q.from))
	}
	if !q.to.IsZero() {
		where = append(where, "recorded_at < "+arg(q.to))
	}
	return `SELECT ` + storedColumns + ` FROM booking_events WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY position`, args
}

func runHistory(ctx context.Context, m *Main, args []string) error {
	fs := m.flagSet("history", "history (--booking ID | --resource ID | --tenant ID) [--from T] [--to T] [--format text|jsonl]\n\n"+
		"Prints events oldest first (by global position). --booking: the booking's stream.\n"+
		"--resource: the resource's stream and the streams of every booking of it.\n"+
		"--tenant: every event of the tenant. --from (inclusive) and --to (exclusive)\n"+
		"bound recorded_at, as RFC 3339 times.\n\n"+
		"text: one line per event (recorded_at, position, stream, version, type, actor,\n"+
		"correlation and causation ids, a summary of the data).\n"+
		"jsonl: one JSON object per event with every stored field, data and metadata\n"+
		"exactly as stored and the hash in hex: the export an auditor receives.")
	dbFlag := databaseFlag(fs)
	booking := fs.String("booking", "", "booking id")
	resource := fs.String("resource", "", "resource id")
	tenant := fs.String("tenant", "", "tenant id")
	from := fs.String("from", "", "only events recorded at or after this RFC 3339 time")
	to := fs.String("to", "", "only events recorded before this RFC 3339 time")
	format := fs.String("format", "text", "text or jsonl")
	if err := fs.parse(args); err != nil {
		return err
	}
	var (
		q   historyQuery
		err error
	)
	if err := fs.exactlyOne("booking", "resource", "tenant"); err != nil {
		return err
	}
	set := fs.given()
	switch {
	case set["booking"]:
		q.booking, err = parseID("booking", *booking)
	case set["resource"]:
		q.resource, err = parseID("resource", *resource)
	default:
		q.tenant, err = parseID("tenant", *tenant)
	}
	if err != nil {
		return err
	}
	if q.from, err = parseTime("from", *from); err != nil {
		return err
	}
	if q.to, err = parseTime("to", *to); err != nil {
		return err
	}
	if !q.from.IsZero() && !q.to.IsZero() && !q.from.Before(q.to) {
		return usagef("--from %s is not before --to %s", *from, *to)
	}
	var write func(io.Writer, storedEvent) error
	switch *format {
	case "text":
		write = writeText
	case "jsonl":
		write = writeJSONL
	default:
		return usagef("--format %q: want text or jsonl", *format)
	}
	dbURL, err := m.databaseURL(dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, dbURL)
	if err != nil {
		return err
	}
	defer store.Close()

	out := bufio.NewWriterSize(m.Stdout, 64<<10)
	sql, sqlArgs := q.sql()
	n := 0
	err = forEachEvent(ctx, store.Pool(), sql, sqlArgs, func(e storedEvent) error {
		n++
		return write(out, e)
	})
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write: %w", ferr)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(m.Stderr, "bookingctl history: no events match")
	}
	return nil
}

// exportedEvent is the shape of one jsonl line, for readers of an export;
// writeJSONL produces it by hand so that data and metadata keep the
// database's bytes (encoding/json would compact them).
type exportedEvent struct {
	Position      int64           `json:"position"`
	TransactionID uint64          `json:"transaction_id"`
	TenantID      uuid.UUID       `json:"tenant_id"`
	StreamID      string          `json:"stream_id"`
	StreamVersion int64           `json:"stream_version"`
	EventID       uuid.UUID       `json:"event_id"`
	Type          string          `json:"type"`
	EventVersion  int             `json:"event_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Hash          string          `json:"hash"`
}

// writeJSONL writes e as one line in the exportedEvent shape. recorded_at
// keeps its microseconds, which the hash covers.
func writeJSONL(w io.Writer, e storedEvent) error {
	b := make([]byte, 0, 512+len(e.Data)+len(e.Metadata))
	b = append(b, `{"position":`...)
	b = strconv.AppendInt(b, e.Position, 10)
	b = append(b, `,"transaction_id":`...)
	b = strconv.AppendUint(b, e.TransactionID, 10)
	b = append(b, `,"tenant_id":"`...)
	b = append(b, e.TenantID.String()...)
	b = append(b, `","stream_id":`...)
	b = appendJSONString(b, e.StreamID)
	b = append(b, `,"stream_version":`...)
	b = strconv.AppendInt(b, e.StreamVersion, 10)
	b = append(b, `,"event_id":"`...)
	b = append(b, e.EventID.String()...)
	b = append(b, `","type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"event_version":`...)
	b = strconv.AppendInt(b, int64(e.EventVersion), 10)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	b = append(b, `,"metadata":`...)
	b = append(b, e.Metadata...)
	b = append(b, `,"recorded_at":"`...)
	b = e.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, e.Hash)
	b = append(b, "\"}\n"...)
	_, err := w.Write(b)
	return err
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// writeText writes e as one readable line.
func writeText(w io.Writer, e storedEvent) error {
	var md eventstore.Metadata
	_ = json.Unmarshal(e.Metadata, &md) // a bad metadata object shows as empty fields
	actor := orDash(md.Actor)
	if md.ActorRole != "" {
		actor += "(" + md.ActorRole + ")"
	}
	_, err := fmt.Fprintf(w, "%s  #%d  %s v%d  %s  actor=%s corr=%s cause=%s  %s\n",
		e.RecordedAt.Format("2006-01-02T15:04:05.000000Z07:00"), e.Position, e.StreamID, e.StreamVersion,
		e.Type, actor, orDash(md.CorrelationID), orDash(md.CausationID), summarize(e.StreamID, e.Data))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summaryFirst are the data fields a reader looks for first; the rest
// follow in alphabetical order.
var summaryFirst = []string{"status", "from", "to", "start", "end", "resource_id", "client_id",
	"seats", "title", "policy_version", "late", "reason", "name", "email", "role"}

// summaryOmit are fields the line already shows: the actor, the tenant,
// and the command's own clock reading (at, created_at), which lies within
// moments of recorded_at; the jsonl export keeps them all.
var summaryOmit = []string{"tenant_id", "actor", "actor_role", "created_by", "at", "created_at"}

// maxSummary bounds the data summary of a text line.
const maxSummary = 240

// summarize renders an event's data as compact key=value pairs: empty
// values and fields the line already shows are left out, the id of the
// stream's own aggregate too, and nested objects appear as their size.
func summarize(streamID string, data []byte) string {
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return "data=<unreadable>"
	}
	keys := make([]string, 0, len(fields))
	for k, v := range fields {
		if slices.Contains(summaryOmit, k) || isEmpty(v) {
			continue
		}
		if s, ok := v.(string); ok && strings.HasSuffix(k, "_id") && strings.HasSuffix(streamID, s) {
			continue
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(summaryFirst, a), slices.Index(summaryFirst, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	var sb strings.Builder
	for _, k := range keys {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(summaryValue(fields[k]))
		if sb.Len() > maxSummary {
			break
		}
	}
	s := sb.String()
	if len(s) > maxSummary {
		s = strings.ToValidUTF8(s[:maxSummary], "") + "…"
	}
	return s
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

func summaryValue(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 60 {
			v = strings.ToValidUTF8(v[:60], "") + "…"
		}
		if strings.ContainsAny(v, " \t\"=") {
			return strconv.Quote(v)
		}
		return v
	case map[string]any:
		return fmt.Sprintf("{%d fields}", len(v))
	case []any:
		return fmt.Sprintf("[%d items]", len(v))
	}
	return fmt.Sprint(v)
}

// parseID parses the uuid given to --name.
func parseID(name, v string) (uuid.UUID, error) {
	id, err := uuid.Parse(v)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, usagef("--%s %q is not a uuid", name, v)
	}
	return id, nil
}

// parseTime parses the RFC 3339 time given to --name; empty stays zero.
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usagef("--%s %q is not an RFC 3339 time (e.g. 2026-12-01T09:58:00-03:00)", name, v)
	}
	return t, nil
}

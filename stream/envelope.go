package stream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/bookingengine/booking/eventstore"
)

// CloudEvents constants of the envelope.
const (
	// SpecVersion is the CloudEvents version of every envelope.
	SpecVersion = "1.0"
	// ContentType is the datacontenttype of every envelope: data is the
	// event's stored JSON object, unchanged.
	ContentType = "application/json"
)

// Watermill metadata keys set on every published message, so that a
// consumer can route or filter without decoding the payload. They are
// part of the wire format: never rename one.
const (
	// MetadataPartitionKey holds the stream id, the key that chose the
	// message's partition.
	MetadataPartitionKey = "partition_key"
	// MetadataEventType holds the event type, e.g. "booking.created".
	MetadataEventType = "event_type"
	// MetadataTenantID holds the tenant id.
	MetadataTenantID = "tenant_id"
)

// sequenceDigits is the width of the zero-padded sequence attribute: a
// bigint has at most 19 digits.
const sequenceDigits = 20

// ErrInvalidEnvelope is matched (errors.Is) by every error Decode returns
// for a payload that is not an envelope of this contract.
var ErrInvalidEnvelope = errors.New("stream: invalid CloudEvents envelope")

// Event is one published event, decoded from its CloudEvents envelope. It
// is a plain value; Data is the event's JSON object as stored.
type Event struct {
	// ID is the event id (CloudEvents id); dedupe by it.
	ID uuid.UUID
	// Source is the CloudEvents source: "<base>/tenants/<tenant id>".
	Source string
	// Type is the event type, e.g. "booking.created".
	Type string
	// StreamID is the CloudEvents subject: the stream the event belongs
	// to, e.g. "booking-<uuid>".
	StreamID string
	// Time is when the event was recorded (UTC).
	Time time.Time
	// TenantID is the extension tenantid.
	TenantID uuid.UUID
	// EventVersion is the extension eventversion: the schema version of
	// Data for Type.
	EventVersion int
	// Sequence is the extension sequence: the event's global position in
	// the store. It orders the events of one stream; across streams it is
	// insertion order, which may differ from commit and publish order.
	Sequence int64
	// StreamVersion is the extension streamversion: 1 for a stream's first
	// event, then consecutive. Order the events of a stream by it.
	StreamVersion int64
	// CorrelationID and CausationID are the extensions correlationid and
	// causationid (empty when the command had none).
	CorrelationID string
	CausationID   string
	// Data is the event's payload, a JSON object.
	Data json.RawMessage
}

// envelope is the wire form. Attribute names are the contract's; the
// extension names are lower-case alphanumerics as CloudEvents requires.
type envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	TenantID        string          `json:"tenantid"`
	EventVersion    int             `json:"eventversion"`
	Sequence        json.RawMessage `json:"sequence"`
	StreamVersion   int64           `json:"streamversion"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	CausationID     string          `json:"causationid,omitempty"`
}

// Source returns the CloudEvents source of a tenant's events under base
// (a URI reference without a trailing slash, e.g. "" or
// "https://booking.example.com"): base + "/tenants/" + tenant id.
func Source(base string, tenant uuid.UUID) string {
	return strings.TrimSuffix(base, "/") + "/tenants/" + tenant.String()
}

// FromRecorded converts a stored event to its published form, with the
// source under base (see Source).
func FromRecorded(e eventstore.RecordedEvent, base string) Event {
	return Event{
		ID:            e.ID,
		Source:        Source(base, e.TenantID),
		Type:          e.Type,
		StreamID:      e.StreamID,
		Time:          e.RecordedAt.UTC(),
		TenantID:      e.TenantID,
		EventVersion:  e.EventVersion,
		Sequence:      e.Position,
		StreamVersion: e.StreamVersion,
		CorrelationID: e.Metadata.CorrelationID,
		CausationID:   e.Metadata.CausationID,
		Data:          e.Data,
	}
}

// Category returns the event-store category of the event's stream.
func (e Event) Category() string { return eventstore.Category(e.StreamID) }

// Encode returns the CloudEvents 1.0 JSON envelope of e (structured
// mode). sequence is a string, the position zero-padded to 20 digits, as
// the CloudEvents sequence extension asks for a lexicographically
// orderable string (and CloudEvents integers stop at 2^31-1);
// eventversion and streamversion are JSON numbers. time is RFC 3339 in
// UTC with up to microseconds. It fails when Data is not a JSON object.
func (e Event) Encode() ([]byte, error) {
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' {
		return nil, fmt.Errorf("stream: encode event %s: data is not a JSON object", e.ID)
	}
	seq := strconv.FormatInt(e.Sequence, 10)
	if pad := sequenceDigits - len(seq); pad > 0 && e.Sequence >= 0 {
		seq = strings.Repeat("0", pad) + seq
	}
	env := envelope{
		SpecVersion:     SpecVersion,
		ID:              e.ID.String(),
		Source:          e.Source,
		Type:            e.Type,
		Subject:         e.StreamID,
		Time:            e.Time.UTC().Format(time.RFC3339Nano),
		DataContentType: ContentType,
		Data:            data,
		TenantID:        e.TenantID.String(),
		EventVersion:    e.EventVersion,
		Sequence:        json.RawMessage(strconv.Quote(seq)),
		StreamVersion:   e.StreamVersion,
		CorrelationID:   e.CorrelationID,
		CausationID:     e.CausationID,
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("stream: encode event %s: %w", e.ID, err)
	}
	return b, nil
}

// Decode parses a CloudEvents 1.0 JSON envelope of this contract. It
// accepts sequence as a string (padded or not) or as a JSON number, and
// ignores attributes it does not know. Errors match ErrInvalidEnvelope and
// name every missing or malformed attribute.
func Decode(payload []byte) (Event, error) {
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrInvalidEnvelope, err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if env.SpecVersion != SpecVersion {
		bad("specversion %q, want %q", env.SpecVersion, SpecVersion)
	}
	if env.DataContentType != "" && env.DataContentType != ContentType {
		bad("datacontenttype %q, want %q", env.DataContentType, ContentType)
	}
	e := Event{
		Source:        env.Source,
		Type:          env.Type,
		StreamID:      env.Subject,
		EventVersion:  env.EventVersion,
		StreamVersion: env.StreamVersion,
		CorrelationID: env.CorrelationID,
		CausationID:   env.CausationID,
		Data:          env.Data,
	}
	var err error
	if e.ID, err = uuid.Parse(env.ID); err != nil {
		bad("id %q: %v", env.ID, err)
	}
	if e.TenantID, err = uuid.Parse(env.TenantID); err != nil {
		bad("tenantid %q: %v", env.TenantID, err)
	}
	if e.Time, err = time.Parse(time.RFC3339Nano, env.Time); err != nil {
		bad("time %q: %v", env.Time, err)
	}
	e.Time = e.Time.UTC()
	if e.Source == "" {
		bad("source is empty")
	}
	if e.Type == "" {
		bad("type is empty")
	}
	if e.StreamID == "" {
		bad("subject is empty")
	}
	if e.StreamVersion < 1 {
		bad("streamversion %d, want >= 1", e.StreamVersion)
	}
	if e.EventVersion < 1 {
		bad("eventversion %d, want >= 1", e.EventVersion)
	}
	if e.Sequence, err = parseSequence(env.Sequence); err != nil {
		bad("sequence %s: %v", env.Sequence, err)
	}
	if d := bytes.TrimSpace(env.Data); len(d) == 0 || d[0] != '{' {
		bad("data is not a JSON object")
	}
	if len(errs) > 0 {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEnvelope, errors.Join(errs...))
	}
	return e, nil
}

func parseSequence(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errors.New("missing")
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("%d, want >= 1", n)
	}
	return n, nil
}

// NewMessage returns the Watermill message that publishes e: UUID = the
// event id (so a broker-level trace names the event), payload = Encode(e),
// and the metadata MetadataPartitionKey, MetadataEventType and
// MetadataTenantID.
func NewMessage(e Event) (*message.Message, error) {
	payload, err := e.Encode()
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(e.ID.String(), payload)
	msg.Metadata.Set(MetadataPartitionKey, e.StreamID)
	msg.Metadata.Set(MetadataEventType, e.Type)
	msg.Metadata.Set(MetadataTenantID, e.TenantID.String())
	return msg, nil
}

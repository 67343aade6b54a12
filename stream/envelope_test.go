package stream_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/stream"
)

func recorded() eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		Position:      42,
		TransactionID: 900,
		TenantID:      uuid.MustParse("11111111-2222-3333-4444-555555555555"),
		StreamID:      "booking-6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10",
		Category:      "booking",
		StreamVersion: 3,
		ID:            uuid.MustParse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
		Type:          "booking.status_changed",
		EventVersion:  2,
		Data:          json.RawMessage(`{"booking_id":"6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10","from":"pending","to":"confirmed"}`),
		Metadata:      eventstore.Metadata{CorrelationID: "corr-1", CausationID: "cause-1", Actor: "user-1"},
		RecordedAt:    time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.FixedZone("x", -3*3600)),
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	in := stream.FromRecorded(recorded(), "https://booking.example.com/")
	payload, err := in.Encode()
	require.NoError(t, err)

	out, err := stream.Decode(payload)
	require.NoError(t, err)
	require.Equal(t, in.ID, out.ID)
	require.Equal(t, in.Time, out.Time)
	require.JSONEq(t, string(in.Data), string(out.Data))
	in.Data, out.Data = nil, nil
	require.Equal(t, in, out)
	require.Equal(t, "https://booking.example.com/tenants/11111111-2222-3333-4444-555555555555", out.Source)
	require.Equal(t, int64(42), out.Sequence)
	require.Equal(t, "booking", out.Category())
}

func TestEnvelopeWireFormat(t *testing.T) {
	t.Parallel()
	payload, err := stream.FromRecorded(recorded(), "").Encode()
	require.NoError(t, err)
	var wire map[string]any
	require.NoError(t, json.Unmarshal(payload, &wire))
	require.Equal(t, map[string]any{
		"specversion":     "1.0",
		"id":              "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		"source":          "/tenants/11111111-2222-3333-4444-555555555555",
		"type":            "booking.status_changed",
		"subject":         "booking-6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10",
		"time":            "2026-12-01T15:00:00.123456Z",
		"datacontenttype": "application/json",
		"data": map[string]any{
			"booking_id": "6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10", "from": "pending", "to": "confirmed",
		},
		"tenantid":      "11111111-2222-3333-4444-555555555555",
		"eventversion":  float64(2),
		"sequence":      "00000000000000000042",
		"streamversion": float64(3),
		"correlationid": "corr-1",
		"causationid":   "cause-1",
	}, wire)
}

func TestDecodeAcceptsSequenceAsNumberOrUnpaddedString(t *testing.T) {
	t.Parallel()
	payload, err := stream.FromRecorded(recorded(), "").Encode()
	require.NoError(t, err)
	for _, seq := range []any{"42", 42, "0042"} {
		var wire map[string]any
		require.NoError(t, json.Unmarshal(payload, &wire))
		wire["sequence"] = seq
		b, err := json.Marshal(wire)
		require.NoError(t, err)
		e, err := stream.Decode(b)
		require.NoError(t, err, "sequence %v", seq)
		require.Equal(t, int64(42), e.Sequence)
	}
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := stream.Decode([]byte(`{"specversion":"0.3","id":"x","tenantid":"y","time":"yesterday","sequence":"-1","data":[1]}`))
	require.ErrorIs(t, err, stream.ErrInvalidEnvelope)
	for _, want := range []string{"specversion", "id", "tenantid", "time", "source", "type", "subject",
		"streamversion", "eventversion", "sequence", "data"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = stream.Decode([]byte(`not json`))
	require.True(t, errors.Is(err, stream.ErrInvalidEnvelope))
}

func TestEncodeRefusesNonObjectData(t *testing.T) {
	t.Parallel()
	e := stream.FromRecorded(recorded(), "")
	e.Data = json.RawMessage(`[1,2]`)
	_, err := e.Encode()
	require.Error(t, err)
}

func TestNewMessageCarriesTheEventIDAndPartitionKey(t *testing.T) {
	t.Parallel()
	e := stream.FromRecorded(recorded(), "")
	msg, err := stream.NewMessage(e)
	require.NoError(t, err)
	require.Equal(t, e.ID.String(), msg.UUID)
	require.Equal(t, e.StreamID, msg.Metadata.Get(stream.MetadataPartitionKey))
	require.Equal(t, e.Type, msg.Metadata.Get(stream.MetadataEventType))
	require.Equal(t, e.TenantID.String(), msg.Metadata.Get(stream.MetadataTenantID))
	back, err := stream.Decode(msg.Payload)
	require.NoError(t, err)
	require.Equal(t, e.ID, back.ID)
}

func TestMessageFromRedisEntryNeverFails(t *testing.T) {
	t.Parallel()
	msg := stream.MessageFromRedisEntry(map[string]any{"payload": "hello"})
	require.Empty(t, msg.UUID)
	require.NotEmpty(t, msg.Metadata.Get(stream.UnmarshalErrorKey))
	require.Equal(t, "hello", string(msg.Payload))

	msg = stream.MessageFromRedisEntry(map[string]any{"_watermill_message_uuid": 7})
	require.NotEmpty(t, msg.Metadata.Get(stream.UnmarshalErrorKey))

	msg = stream.MessageFromRedisEntry(map[string]any{"_watermill_message_uuid": "id-1", "payload": "{}"})
	require.Equal(t, "id-1", msg.UUID)
	require.Empty(t, msg.Metadata.Get(stream.UnmarshalErrorKey))
}

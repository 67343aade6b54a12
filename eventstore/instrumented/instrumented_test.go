package instrumented_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/instrumented"
	"github.com/bookingengine/booking/eventstore/memory"
)

func event() eventstore.EventData {
	return eventstore.EventData{ID: uuid.New(), Type: "x.happened", Version: 1, Data: json.RawMessage(`{}`)}
}

func appendTo(stream string, expected eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.StreamAppend {
	return eventstore.StreamAppend{StreamID: stream, TenantID: uuid.New(), Expected: expected, Events: evs}
}

// appends returns how many appends the histogram saw with outcome.
func appends(t *testing.T, reg *prometheus.Registry, outcome string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != instrumented.MetricAppendDuration {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestStoreRecordsAppendOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inner := memory.New()
	t.Cleanup(inner.Close)
	reg := prometheus.NewRegistry()
	s, err := instrumented.New(inner, reg)
	require.NoError(t, err)
	require.Same(t, inner, s.Unwrap().(*memory.Store))

	first := []eventstore.EventData{event(), event()}
	res, err := s.Append(ctx, appendTo("booking-1", eventstore.NoStream, first...))
	require.NoError(t, err)
	require.False(t, res.Duplicate)

	// A retry of the same events is a duplicate and writes nothing.
	again, err := s.Append(ctx, appendTo("booking-1", eventstore.NoStream, first...))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, res.LastPosition, again.LastPosition)

	_, err = s.Append(ctx, appendTo("booking-1", eventstore.NoStream, event()))
	require.ErrorIs(t, err, eventstore.ErrVersionConflict, "the decorator returns the store's error as it is")
	var conflict *eventstore.VersionConflictError
	require.True(t, errors.As(err, &conflict))

	_, err = s.Append(ctx)
	require.ErrorIs(t, err, eventstore.ErrInvalidAppend)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Append(cancelled, appendTo("booking-2", eventstore.Any, event()))
	require.Error(t, err)

	require.EqualValues(t, 1, appends(t, reg, instrumented.OutcomeOK))
	require.EqualValues(t, 1, appends(t, reg, instrumented.OutcomeDuplicate))
	require.EqualValues(t, 1, appends(t, reg, instrumented.OutcomeConflict))
	require.EqualValues(t, 1, appends(t, reg, instrumented.OutcomeInvalid))
	require.EqualValues(t, 1, appends(t, reg, instrumented.OutcomeCanceled))
	require.Equal(t, 2.0, testutil.ToFloat64(collector(t, reg, instrumented.MetricAppendedEvents)))

	evs, err := s.Load(ctx, "booking-1", 0)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	n, err := testutil.GatherAndCount(reg, instrumented.MetricLoadDuration)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// Methods not instrumented pass through.
	v, err := s.StreamVersion(ctx, "booking-1")
	require.NoError(t, err)
	require.EqualValues(t, 2, v)
}

// collector finds the counter named name on reg through a second New, which
// must hand back the collectors registered by the first.
func collector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	require.Equal(t, instrumented.MetricAppendedEvents, name)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "Events written to the event store (retried appends that wrote nothing are not counted)."})
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	require.True(t, errors.As(err, &already), "%v", err)
	return already.ExistingCollector
}

func TestNewSharesCollectorsOnOneRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a, b := memory.New(), memory.New()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	sa, err := instrumented.New(a, reg)
	require.NoError(t, err)
	sb, err := instrumented.New(b, reg)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = sa.Append(ctx, appendTo("x-1", eventstore.Any, event()))
	require.NoError(t, err)
	_, err = sb.Append(ctx, appendTo("x-1", eventstore.Any, event()))
	require.NoError(t, err)
	require.EqualValues(t, 2, appends(t, reg, instrumented.OutcomeOK))
}

func TestNewRefusesAClashingCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: instrumented.MetricAppendedEvents, Help: "something else"}))
	s := memory.New()
	t.Cleanup(s.Close)
	_, err := instrumented.New(s, reg)
	require.Error(t, err)
}

package stream_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/stream"
)

// TestPartitionIsStable pins the hash: FNV-1a (32 bit) of the stream id,
// modulo n. Changing it moves streams between partitions.
func TestPartitionIsStable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id   string
		n    int
		want int
	}{
		{"booking-6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10", 4, 3},
		{"booking-6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10", 16, 15},
		{"booking-00000000-0000-0000-0000-000000000001", 4, 0},
		{"hold-6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10", 16, 7},
		{"", 16, 5},
		{"booking-00000000-0000-0000-0000-000000000001", 1, 0},
		{"booking-00000000-0000-0000-0000-000000000001", 0, 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, stream.Partition(c.id, c.n), "%s mod %d", c.id, c.n)
	}
}

func TestPartitionSpreadsStreams(t *testing.T) {
	t.Parallel()
	const n, streams = 8, 8000
	counts := make([]int, n)
	for range streams {
		counts[stream.Partition("booking-"+uuid.NewString(), n)]++
	}
	for p, c := range counts {
		require.InDelta(t, streams/n, c, streams/n/4, "partition %d has %d of %d streams", p, c, streams)
	}
}

func TestTopicsRouteCategories(t *testing.T) {
	t.Parallel()
	id := "6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10"
	plain := stream.Topics{}
	for stream_, want := range map[string]string{
		"tenant-" + id:            "tenant.events",
		"resource-" + id:          "resource.events",
		"resource-category-" + id: "resource.events",
		"user-" + id:              "user.events",
		"booking-" + id:           "booking.events",
		"hold-" + id:              "booking.events",
		"waitlist-" + id:          "booking.events",
		"series-" + id:            "booking.events",
	} {
		got, ok := plain.ForStream(stream_)
		require.True(t, ok, stream_)
		require.Equal(t, want, got, stream_)
	}
	for _, internal := range []string{"schedule-" + id + "-20261201", "guard-domain-x.example.com", "clientday-" + id + "-" + id + "-20261201", "other"} {
		_, ok := plain.ForStream(internal)
		require.False(t, ok, internal)
	}

	parted := stream.Topics{Prefix: "p:", Partitions: 4}
	got, _ := parted.ForStream("booking-" + id)
	require.Equal(t, fmt.Sprintf("p:booking.events.%d", stream.Partition("booking-"+id, 4)), got)
	got, _ = parted.ForStream("hold-" + id)
	require.Equal(t, fmt.Sprintf("p:booking.events.%d", stream.Partition("hold-"+id, 4)), got)
	got, _ = parted.ForStream("tenant-" + id)
	require.Equal(t, "p:tenant.events", got, "only booking.events is partitioned")

	require.Equal(t, []string{"p:booking.events.0", "p:booking.events.1", "p:booking.events.2", "p:booking.events.3"},
		parted.Expand(stream.TopicBooking))
	require.Equal(t, []string{"p:user.events"}, parted.Expand(stream.TopicUser))
	require.Equal(t, []string{"booking.events"}, plain.Expand(stream.TopicBooking))
}

func TestTopicsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, stream.Topics{}.Validate())
	err := stream.Topics{Prefix: "a b", Partitions: -1}.Validate()
	require.ErrorContains(t, err, "Partitions")
	require.ErrorContains(t, err, "Prefix")
}

package stream

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Category topics of the external contract. Their names are a public
// interface: consumers subscribe to them by name, so never rename one.
const (
	TopicTenant   = "tenant.events"
	TopicResource = "resource.events"
	TopicUser     = "user.events"
	TopicBooking  = "booking.events"
)

// CategoryTopics lists the category topics, in the order of the contract.
func CategoryTopics() []string {
	return []string{TopicTenant, TopicResource, TopicUser, TopicBooking}
}

// routes maps each published event-store category to its category topic.
// Holds, waitlist entries and recurring series belong to bookings from a
// consumer's point of view, so they travel on booking.events. The categories schedule, guard
// and clientday are the store's internal consistency streams (day buckets
// of a resource, uniqueness claims, per-client daily counters): their
// events restate what the aggregate's own events already say and are not
// published. A category not listed here is not published either.
var routes = map[string]string{
	"tenant":   TopicTenant,
	"resource": TopicResource,
	"user":     TopicUser,
	"booking":  TopicBooking,
	"hold":     TopicBooking,
	"waitlist": TopicBooking,
	"series":   TopicBooking,
}

// RouteOf returns the category topic that carries events of the given
// event-store category (see eventstore.Category), and false for an
// internal category that is never published.
func RouteOf(category string) (string, bool) {
	t, ok := routes[category]
	return t, ok
}

// Published reports whether events of the category are published.
func Published(category string) bool {
	_, ok := routes[category]
	return ok
}

// partitioned lists the category topics that are split into partitions.
// Bookings are the only high-volume category; tenants, resources and
// users stay on one stream each so that their consumers read one topic.
var partitioned = map[string]bool{TopicBooking: true}

// Partition returns the partition, in [0, n), of a stream id: FNV-1a
// (32 bit) of the id, modulo n. It is stable across processes, releases
// and architectures, so every event of a stream lands on the same
// partition and keeps its order. Changing the function, or n, moves
// streams between partitions: drain the topics first. n < 1 is treated
// as 1.
func Partition(streamID string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(streamID))
	return int(h.Sum32() % uint32(n))
}

// Topics names the Redis streams (Watermill topics) of one deployment.
// The zero value is the contract's naming: no prefix, one partition.
// Topics is a plain value, safe for concurrent use.
type Topics struct {
	// Prefix is prepended to every topic name. Production leaves it
	// empty; tests use it to share a Redis server.
	Prefix string
	// Partitions splits booking.events into booking.events.0 …
	// booking.events.N-1. 0 and 1 both mean one topic with the plain
	// name. Publisher and subscribers must agree on it.
	Partitions int
}

// Validate reports every problem of t at once.
func (t Topics) Validate() error {
	var errs []error
	if t.Partitions < 0 {
		errs = append(errs, fmt.Errorf("stream: Partitions is %d, want >= 0", t.Partitions))
	}
	if t.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("stream: Partitions is %d, want <= 1024", t.Partitions))
	}
	if strings.ContainsAny(t.Prefix, " \t\r\n") {
		errs = append(errs, fmt.Errorf("stream: Prefix %q contains white space", t.Prefix))
	}
	return errors.Join(errs...)
}

func (t Topics) partitions() int { return max(t.Partitions, 1) }

// ForStream returns the topic that carries events of a stream id, and
// false when its category is internal and never published.
func (t Topics) ForStream(streamID string) (string, bool) {
	cat := streamID
	if i := strings.IndexByte(streamID, '-'); i >= 0 {
		cat = streamID[:i]
	}
	base, ok := routes[cat]
	if !ok {
		return "", false
	}
	if partitioned[base] && t.partitions() > 1 {
		return t.Prefix + base + "." + strconv.Itoa(Partition(streamID, t.partitions())), true
	}
	return t.Prefix + base, true
}

// Expand returns the topics a subscriber of the category topic reads: the
// topic itself (prefixed), or each of its partitions when it is
// partitioned. A name that is not one of the category topics is returned
// prefixed and unchanged.
func (t Topics) Expand(categoryTopic string) []string {
	if !partitioned[categoryTopic] || t.partitions() == 1 {
		return []string{t.Prefix + categoryTopic}
	}
	out := make([]string, t.partitions())
	for i := range out {
		out[i] = t.Prefix + categoryTopic + "." + strconv.Itoa(i)
	}
	return out
}

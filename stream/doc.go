// Package stream is the wire format and the plumbing of the published
// event streams: the CloudEvents envelope, topic names and partitioning,
// and the construction of Watermill publishers and subscribers on Redis
// Streams or, in embedded mode, the in-process GoChannel. Package relay
// publishes; package subscriber consumes.
//
// # Topics
//
// One Redis stream per category (TopicTenant, TopicResource, TopicUser,
// TopicBooking). Holds and waitlist entries travel with bookings on
// booking.events. The store's internal categories (schedule day buckets,
// guard uniqueness claims, clientday counters) are not published: they
// restate what the aggregates' own events say, in a shape that serves
// only the write side. With Topics.Partitions = N > 1, booking.events is
// split into booking.events.0 … booking.events.N-1 by Partition, an
// FNV-1a hash of the stream id, so a stream always lands on one partition
// and keeps its order.
//
// # Envelope
//
// Every message's payload is a CloudEvents 1.0 JSON envelope (structured
// mode, see Event.Encode):
//
//	{"specversion": "1.0", "id": "<event id>",
//	 "source": "/tenants/<tenant id>", "type": "booking.created",
//	 "subject": "booking-<uuid>", "time": "2026-12-01T12:00:00.123456Z",
//	 "datacontenttype": "application/json", "data": {…},
//	 "tenantid": "<tenant id>", "eventversion": 1,
//	 "sequence": "00000000000000000042", "streamversion": 3,
//	 "correlationid": "…", "causationid": "…"}
//
// sequence, the global position, is a string, zero-padded to 20 digits:
// the CloudEvents sequence extension asks for a lexicographically
// orderable string, and CloudEvents integers stop at 2^31-1. It parses as
// a decimal integer. eventversion and streamversion are JSON numbers.
// The Watermill message UUID is the event id; its metadata carries the
// partition key (the stream id), the event type and the tenant id.
//
// # Delivery
//
// At least once. A consumer dedupes by id and orders a stream's events by
// streamversion; package subscriber does both.
//
// # Retention
//
// Nothing trims the streams automatically: NewRedisPublisher sets no
// MAXLEN, because a length cap removes entries whether or not every
// consumer group has read them. An operator trims with XTRIM <topic>
// MINID <id>, choosing id at or below the last-delivered-id of every
// consumer group of the topic (XINFO GROUPS) and below its oldest pending
// entry (XPENDING), so no entry a group still needs is removed. The event
// store stays the source of truth; a consumer that needs history from
// before a trim rebuilds from the store.
package stream

// Package webhooks delivers a tenant's published events to the URLs it
// subscribed, signed as Standard Webhooks
// (https://www.standardwebhooks.com): the outbound half of "events out".
//
// # Pipeline
//
// A consumer group (Group, "webhooks") reads the category topics (Topics)
// like any package subscriber consumer. For each event, Service.Handle
// enqueues one Delivery per enabled Endpoint of the event's tenant whose
// event types match (Match). On PostgreSQL the deliveries and the
// subscriber's done-mark commit in one transaction (subscriber.MarkDoneTx),
// and a unique (endpoint, event) key backs it up, so an event is enqueued
// once however often the stream redelivers it; the memory store keeps the
// same key within the process.
//
// A Dispatcher claims due deliveries and POSTs them. Claiming takes a
// lease (FOR UPDATE SKIP LOCKED on PostgreSQL), so several dispatchers,
// in one process or many, never send the same delivery at the same time;
// a dispatcher that dies mid-request leaves a lease that expires, after
// which another sends the delivery again (at least once, as Standard
// Webhooks expects: receivers dedupe by webhook-id).
//
// # Order
//
// Deliveries to one endpoint of one stream (the event's subject, e.g.
// booking-<uuid>) go out first in, first out: a delivery is not sent
// while an earlier delivery of the same stream to the same endpoint is
// still pending or failed (waiting for a retry). A dead delivery no longer
// holds the queue. Deliveries of different streams are independent.
//
// # The request
//
//	POST <endpoint url>
//	content-type: application/cloudevents+json
//	webhook-id: <event id>                (the same on every attempt)
//	webhook-timestamp: <unix seconds of this attempt>
//	webhook-signature: v1,<base64 HMAC-SHA256("<id>.<timestamp>.<body>")>
//
// The HMAC key is the base64-decoded part of the endpoint's whsec_
// secret; the body is the event's CloudEvents 1.0 JSON envelope
// (stream.Event.Encode), the same bytes on every attempt.
//
// # Outcomes
//
// A 2xx answer succeeds. 410 Gone disables the endpoint at once. Any other
// answer, a timeout or a connection error fails the attempt, and the
// delivery is retried on RetryPolicy's schedule (5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h, 10 h by default, each with jitter), never later than
// RetryPolicy.MaxAge (24 h) after its first attempt; then it is dead. An
// endpoint whose attempts fail DisablePolicy.MaxConsecutiveFailures times
// in a row, or keep failing for DisablePolicy.FailureWindow, is disabled.
// A disabled endpoint gets no new deliveries and its pending ones wait;
// Service.Enable resumes them with a fresh retry window. Every attempt is
// recorded (time, status code, duration, error).
package webhooks

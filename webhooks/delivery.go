package webhooks

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// Status is the state of a delivery.
type Status string

// Delivery states. Pending and failed deliveries are still to be sent
// and hold their stream's queue; succeeded and dead ones are final.
const (
	// StatusPending: not attempted yet (or resumed by Service.Enable).
	StatusPending Status = "pending"
	// StatusFailed: the last attempt failed; NextAttemptAt says when
	// the next one is due.
	StatusFailed Status = "failed"
	// StatusSucceeded: the receiver answered 2xx.
	StatusSucceeded Status = "succeeded"
	// StatusDead: retries ran out (RetryPolicy); nothing more is sent
	// unless an admin redelivers the event.
	StatusDead Status = "dead"
)

// Open reports whether the delivery is still to be sent.
func (s Status) Open() bool { return s == StatusPending || s == StatusFailed }

// Delivery is one event to send to one endpoint.
type Delivery struct {
	ID         uuid.UUID
	QueueID    int64 // first-in-first-out rank among all deliveries
	TenantID   uuid.UUID
	EndpointID uuid.UUID
	EventID    uuid.UUID
	EventType  string
	// Subject is the event's stream id: the unit of ordering.
	Subject       string
	Sequence      int64
	StreamVersion int64
	// Redelivery is true for a delivery enqueued by Service.Redeliver.
	Redelivery bool
	Status     Status
	// Tries counts the attempts of the current retry window, which
	// began at WindowStart (zero before the first attempt).
	Tries       int
	WindowStart time.Time
	// NextAttemptAt is when an open delivery is due.
	NextAttemptAt        time.Time
	CreatedAt, UpdatedAt time.Time
	// Attempts are every attempt, oldest first (filled by
	// Store.Deliveries, not by Claim).
	Attempts []Attempt
	// Payload is the body to send (filled by Claim, not by Deliveries).
	Payload []byte
}

// Attempt is one request to the receiver.
type Attempt struct {
	At time.Time
	// StatusCode is the receiver's answer; 0 when none came (timeout,
	// refused connection).
	StatusCode int
	Duration   time.Duration
	// Error says why the attempt failed; empty on success.
	Error string
}

// Claim is a delivery a dispatcher holds the lease of, with what it needs
// to send it.
type Claim struct {
	Delivery
	URL    string
	Secret string
	// Token identifies the lease; Store.Record checks it.
	Token string
}

// Result classifies an attempt for the endpoint's health.
type Result int

// Attempt results.
const (
	// Succeeded: 2xx.
	Succeeded Result = iota + 1
	// Failed: any other answer, or none.
	Failed
	// Gone: 410, the receiver asks to stop.
	Gone
)

// Outcome is what Store.Record applies after an attempt: the attempt
// itself, the delivery's next state and the attempt's result.
type Outcome struct {
	Attempt       Attempt
	Result        Result
	Status        Status
	Tries         int
	WindowStart   time.Time
	NextAttemptAt time.Time
}

// RetryPolicy schedules the retries of a failed delivery.
type RetryPolicy struct {
	// Schedule[i] is the wait after the (i+1)-th failed attempt of a
	// window; past its end the delivery is dead. Default
	// DefaultSchedule.
	Schedule []time.Duration
	// MaxAge bounds a window: no attempt is scheduled later than MaxAge
	// after its first one (the last is moved to that bound). Default
	// 24 h.
	MaxAge time.Duration
	// Jitter spreads each wait uniformly by ±Jitter of itself, so that
	// deliveries that failed together do not retry together. 0 means
	// DefaultJitter; negative means none.
	Jitter float64
	// Rand returns a number in [0, 1); default math/rand/v2.Float64.
	Rand func() float64
}

// Defaults of RetryPolicy.
var (
	// DefaultSchedule is the Standard Webhooks reference schedule.
	DefaultSchedule = []time.Duration{
		5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
	DefaultMaxAge = 24 * time.Hour
)

// DefaultJitter is RetryPolicy.Jitter when zero.
const DefaultJitter = 0.1

func (p RetryPolicy) withDefaults() RetryPolicy {
	if len(p.Schedule) == 0 {
		p.Schedule = DefaultSchedule
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultMaxAge
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	return p
}

func (p RetryPolicy) validate() error {
	var errs []error
	for i, d := range p.Schedule {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("schedule[%d] is %s, want > 0", i, d))
		}
	}
	if p.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("jitter %g, want < 1", p.Jitter))
	}
	return errors.Join(errs...)
}

// Next returns a delivery's state after an attempt at now with result r:
// its status, tries, window start and next attempt time. tries and
// windowStart are the delivery's before the attempt (0 and zero for its
// first, or the first after Service.Enable). A success is final; 410
// leaves the delivery failed, waiting for the endpoint to be enabled; a
// failure schedules the next try by Schedule (jittered, moved back to
// windowStart+MaxAge when later), or makes the delivery dead when the
// schedule or the window is used up. Zero fields take their defaults.
func (p RetryPolicy) Next(tries int, windowStart, now time.Time, r Result) (Status, int, time.Time, time.Time) {
	p = p.withDefaults()
	if windowStart.IsZero() {
		windowStart = now
	}
	tries++
	switch r {
	case Succeeded:
		return StatusSucceeded, tries, windowStart, now
	case Gone:
		// Waits for the endpoint to be enabled again, which restarts
		// the window.
		return StatusFailed, tries, windowStart, now
	}
	end := windowStart.Add(p.MaxAge)
	if tries > len(p.Schedule) || !now.Before(end) {
		return StatusDead, tries, windowStart, now
	}
	wait := p.Schedule[tries-1]
	if p.Jitter > 0 {
		wait += time.Duration((2*p.Rand() - 1) * p.Jitter * float64(wait))
	}
	at := now.Add(wait)
	if at.After(end) {
		at = end
	}
	return StatusFailed, tries, windowStart, at
}

// DisablePolicy decides when failing attempts disable an endpoint.
type DisablePolicy struct {
	// MaxConsecutiveFailures disables an endpoint after that many failed
	// attempts in a row (default 20).
	MaxConsecutiveFailures int
	// FailureWindow disables an endpoint whose attempts have failed,
	// without a success, for that long (default 24 h).
	FailureWindow time.Duration
}

// Defaults of DisablePolicy.
const (
	DefaultMaxConsecutiveFailures = 20
	DefaultFailureWindow          = 24 * time.Hour
)

func (p DisablePolicy) withDefaults() DisablePolicy {
	if p.MaxConsecutiveFailures <= 0 {
		p.MaxConsecutiveFailures = DefaultMaxConsecutiveFailures
	}
	if p.FailureWindow <= 0 {
		p.FailureWindow = DefaultFailureWindow
	}
	return p
}

// apply updates ep's health after an attempt with result r at now and
// reports whether ep changed and whether this attempt disabled it.
// Stores call it under the endpoint's lock.
func (p DisablePolicy) apply(ep *Endpoint, r Result, now time.Time) (changed, disabled bool) {
	p = p.withDefaults()
	switch r {
	case Succeeded:
		if ep.ConsecutiveFailures == 0 && ep.FailingSince.IsZero() {
			return false, false
		}
		ep.ConsecutiveFailures, ep.FailingSince = 0, time.Time{}
		return true, false
	case Gone:
		ep.ConsecutiveFailures++
		if ep.FailingSince.IsZero() {
			ep.FailingSince = now
		}
		if ep.Enabled {
			disable(ep, DisabledGone, now)
			return true, true
		}
		return true, false
	}
	ep.ConsecutiveFailures++
	if ep.FailingSince.IsZero() {
		ep.FailingSince = now
	}
	if ep.Enabled && (ep.ConsecutiveFailures >= p.MaxConsecutiveFailures || !now.Before(ep.FailingSince.Add(p.FailureWindow))) {
		disable(ep, DisabledFailing, now)
		return true, true
	}
	return true, false
}

func disable(ep *Endpoint, reason string, now time.Time) {
	ep.Enabled, ep.DisabledReason, ep.DisabledAt = false, reason, now
	ep.Version++
	ep.UpdatedAt, ep.UpdatedBy = now, ""
}

// enable re-enables a disabled ep as actor at now and reports whether it
// was disabled; an enabled endpoint is left alone.
func enable(ep *Endpoint, actor string, now time.Time) bool {
	if ep.Enabled {
		return false
	}
	ep.Enabled, ep.DisabledReason, ep.DisabledAt = true, "", time.Time{}
	ep.ConsecutiveFailures, ep.FailingSince = 0, time.Time{}
	ep.Version++
	ep.UpdatedAt, ep.UpdatedBy = now, actor
	return true
}

package webhooks

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Reasons an endpoint was disabled (Endpoint.DisabledReason).
const (
	// DisabledGone: the receiver answered 410 Gone.
	DisabledGone = "gone"
	// DisabledFailing: attempts kept failing (see DisablePolicy).
	DisabledFailing = "failing"
)

// Endpoint is a tenant's subscription: where to send which events, and
// with which secret to sign them.
type Endpoint struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// URL receives the POSTs.
	URL string
	// EventTypes are the patterns an event's type must match (see Match).
	EventTypes []string
	// Description is free text for the tenant's admins.
	Description string
	// Secret is the signing secret, "whsec_<base64>". Shown to the
	// tenant only when the endpoint is created.
	Secret string
	// Enabled is false once the endpoint was disabled (DisabledReason
	// says why, DisabledAt when) until Service.Enable.
	Enabled        bool
	DisabledReason string
	DisabledAt     time.Time
	// ConsecutiveFailures counts failed attempts since the last success;
	// FailingSince is the time of the first of them (zero when none).
	ConsecutiveFailures int
	FailingSince        time.Time
	// Version starts at 1 and grows with every change (disable, enable).
	Version              int64
	CreatedAt, UpdatedAt time.Time
	// CreatedBy and UpdatedBy are the token subjects of the creator and
	// of the latest change made through the API ("" for the dispatcher).
	CreatedBy, UpdatedBy string
}

// Input is what a tenant admin sends to create an endpoint.
type Input struct {
	URL string
	// EventTypes lists event types ("booking.created"), family patterns
	// ("booking.*") or "*". Empty means every event ("*").
	EventTypes []string
	// Secret is optional; empty generates one (GenerateSecret).
	Secret      string
	Description string
}

// Limits of an Input.
const (
	MaxEventTypes     = 100
	MaxURLLength      = 2048
	MaxDescription    = 1000
	SecretPrefix      = "whsec_"
	MinSecretBytes    = 24
	MaxSecretBytes    = 64
	generatedKeyBytes = 32
)

// EventTypes are the event types a webhook may name: those of the
// contract, published on the category topics. Internal categories
// (schedule, guard, clientday) are never published, so never delivered.
var EventTypes = []string{
	"tenant.created", "tenant.updated", "tenant.settings_changed",
	"resource_category.created",
	"resource.created", "resource.updated", "resource.availability_changed", "resource.deactivated",
	"user.created", "user.updated",
	"booking.created", "booking.rescheduled", "booking.status_changed", "booking.cancelled",
	"hold.placed", "hold.released", "hold.expired",
	"waitlist.joined", "waitlist.promoted",
}

// EventFamilies are the prefixes a "<family>.*" pattern may name.
var EventFamilies = []string{"tenant", "resource_category", "resource", "user", "booking", "hold", "waitlist"}

// Match reports whether an event of type eventType is delivered to an
// endpoint subscribed to patterns: a pattern is "*" (everything), an
// exact type, or "<family>.*" (every type that starts with
// "<family>.").
func Match(patterns []string, eventType string) bool {
	for _, p := range patterns {
		switch {
		case p == "*", p == eventType:
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(eventType, p[:len(p)-1]):
			return true
		}
	}
	return false
}

// normalizeEventTypes validates patterns and returns them trimmed, without
// duplicates, in the order given; none means ["*"].
func normalizeEventTypes(patterns []string, errs *fieldErrors) []string {
	if len(patterns) > MaxEventTypes {
		errs.add("event_types", "invalid", "at most %d entries", MaxEventTypes)
		return nil
	}
	out := make([]string, 0, len(patterns))
	for i, p := range patterns {
		p = strings.TrimSpace(p)
		field := fmt.Sprintf("event_types[%d]", i)
		switch {
		case p == "":
			errs.add(field, "required", "must not be empty")
			continue
		case p == "*", slices.Contains(EventTypes, p):
		case strings.HasSuffix(p, ".*") && slices.Contains(EventFamilies, strings.TrimSuffix(p, ".*")):
		default:
			errs.add(field, "invalid", "%q is neither an event type of the contract (e.g. booking.created), a family pattern (e.g. booking.*) nor *", p)
			continue
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 && len(patterns) == 0 {
		out = append(out, "*")
	}
	return out
}

// URLPolicy decides which endpoint URLs are accepted. The zero value
// accepts https only.
type URLPolicy struct {
	// Schemes are accepted for any host; empty means ["https"].
	Schemes []string
	// LoopbackSchemes are accepted in addition when the host is a
	// loopback name or address (localhost, 127.0.0.0/8, ::1): ["http"]
	// for development and tests. A production deployment leaves it
	// empty, so a tenant cannot point the dispatcher at plain-text URLs.
	LoopbackSchemes []string
}

func (p URLPolicy) check(raw string, errs *fieldErrors) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		errs.add("url", "required", "is required")
		return ""
	}
	if len(raw) > MaxURLLength {
		errs.add("url", "invalid", "at most %d characters", MaxURLLength)
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		errs.add("url", "invalid", "must be an absolute URL such as https://example.com/hooks")
		return ""
	}
	if u.User != nil {
		errs.add("url", "invalid", "must not carry credentials; authenticate with the signature")
		return ""
	}
	if u.Fragment != "" {
		errs.add("url", "invalid", "must not have a fragment")
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	schemes := p.Schemes
	if len(schemes) == 0 {
		schemes = []string{"https"}
	}
	if isLoopback(u.Hostname()) {
		schemes = append(slices.Clone(schemes), p.LoopbackSchemes...)
	}
	if !slices.Contains(schemes, scheme) {
		errs.add("url", "invalid", "scheme %q is not accepted; use %s", u.Scheme, strings.Join(schemes, " or "))
		return ""
	}
	u.Scheme = scheme
	return u.String()
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// GenerateSecret returns a new signing secret: "whsec_" and the standard
// base64 of 32 random bytes. It fails only when the system's random
// source does.
func GenerateSecret() (string, error) {
	b := make([]byte, generatedKeyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// SecretKey returns the HMAC key of a secret: the standard base64 after
// "whsec_", which must decode to 24 to 64 bytes (the Standard Webhooks
// bounds).
func SecretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("webhooks: secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("webhooks: secret is not standard base64 after %q", SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("webhooks: secret key is %d bytes, want %d to %d", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// validate checks in against policy and returns the endpoint fields it
// yields (URL normalised, patterns deduplicated, secret generated when
// absent), or a *ValidationError naming every bad field.
func (in Input) validate(policy URLPolicy) (Input, error) {
	var errs fieldErrors
	out := Input{Description: strings.TrimSpace(in.Description)}
	out.URL = policy.check(in.URL, &errs)
	out.EventTypes = normalizeEventTypes(in.EventTypes, &errs)
	if len(out.Description) > MaxDescription {
		errs.add("description", "invalid", "at most %d characters", MaxDescription)
	}
	if in.Secret != "" {
		if _, err := SecretKey(in.Secret); err != nil {
			errs.add("secret", "invalid", "must be %q followed by the standard base64 of %d to %d random bytes",
				SecretPrefix, MinSecretBytes, MaxSecretBytes)
		}
		out.Secret = in.Secret
	}
	if err := errs.err(); err != nil {
		return Input{}, err
	}
	if out.Secret == "" {
		s, err := GenerateSecret()
		if err != nil {
			return Input{}, err
		}
		out.Secret = s
	}
	return out, nil
}

package domain

import (
	"fmt"
	"slices"
)

// Limits on settings that keep the free-slot search bounded.
const (
	// MaxDurationLimitMinutes caps max_duration_minutes (one week).
	MaxDurationLimitMinutes = 7 * 24 * 60
	// MaxOccurrencesLimit caps max_occurrences: a series is checked and
	// appended in one step, so its size bounds one append.
	MaxOccurrencesLimit = 1000
	// MaxHoldMinutes caps a hold's time to live and waitlist_hold_minutes
	// (one week).
	MaxHoldMinutes = 7 * 24 * 60
	// MaxGranularityMinutes caps slot_granularity_minutes (one day).
	MaxGranularityMinutes = 24 * 60
)

// Settings is a tenant's booking policy. It is replaced whole: every change
// (PUT /tenants/{id}/settings) stores a complete document and bumps the
// policy version, which each booking records.
//
// Zero values of the four limits MinNoticeMinutes, MaxAdvanceDays,
// CancellationDeadlineMinutes and MaxBookingsPerClientPerDay mean "no limit".
// BusinessHours nil or empty closes every weekday, so a Settings value built
// by hand (not through SettingsInput.Resolve) must list its hours.
type Settings struct {
	// Timezone is the IANA zone in which business hours, closures and the
	// slot grid are read, unless the resource has its own zone.
	Timezone string `json:"timezone"`
	// BusinessHours per weekday; an absent or empty weekday is closed.
	BusinessHours WeeklyHours `json:"business_hours"`
	// Closures are whole local dates outside business hours.
	Closures []Closure `json:"closures"`
	// SlotGranularityMinutes: starts lie on this grid counted in wall-clock
	// minutes from local midnight, and durations are multiples of it.
	SlotGranularityMinutes int `json:"slot_granularity_minutes"`
	MinDurationMinutes     int `json:"min_duration_minutes"`
	MaxDurationMinutes     int `json:"max_duration_minutes"`
	// BufferBeforeMinutes and BufferAfterMinutes widen the time a booking
	// occupies on its resource (cleaning, travel); clients never see them.
	BufferBeforeMinutes int `json:"buffer_before_minutes"`
	BufferAfterMinutes  int `json:"buffer_after_minutes"`
	// MinNoticeMinutes: a booking must start at least this long after now.
	MinNoticeMinutes int `json:"min_notice_minutes"`
	// MaxAdvanceDays: a booking's local start date may be at most this many
	// calendar days after today's local date.
	MaxAdvanceDays int `json:"max_advance_days"`
	// CancellationDeadlineMinutes: clients may cancel or reschedule only up
	// to this long before the start.
	CancellationDeadlineMinutes int  `json:"cancellation_deadline_minutes"`
	RequiresApproval            bool `json:"requires_approval"`
	// MaxBookingsPerClientPerDay counts active bookings by local start date.
	MaxBookingsPerClientPerDay int           `json:"max_bookings_per_client_per_day"`
	CustomFields               []CustomField `json:"custom_fields"`
	// MaxOccurrences bounds the bookings one recurring series may create.
	// Documents stored before the field existed read as the default.
	MaxOccurrences int `json:"max_occurrences"`
	// WaitlistPromotion says what the first waiting entry becomes when its
	// time frees: WaitlistPromoteBooking or WaitlistPromoteHold.
	WaitlistPromotion string `json:"waitlist_promotion"`
	// WaitlistHoldMinutes is the time to live of a hold made by promoting
	// a waitlist entry.
	WaitlistHoldMinutes int `json:"waitlist_hold_minutes"`
}

// Waitlist promotion modes (setting waitlist_promotion).
const (
	// WaitlistPromoteBooking books the freed time for the waiting client.
	WaitlistPromoteBooking = "booking"
	// WaitlistPromoteHold holds the freed time for waitlist_hold_minutes,
	// so the client confirms it by booking with the hold's id.
	WaitlistPromoteHold = "hold"
)

// Defaults of the recurrence and waitlist settings.
const (
	DefaultMaxOccurrences      = 365
	DefaultWaitlistHoldMinutes = 60
)

// DefaultSettings returns the settings of a tenant created without them, and
// the value of each field a SettingsInput omits: UTC; Monday to Friday
// 09:00–17:00, weekends closed; no closures; a 15-minute grid; durations
// from 15 minutes to 8 hours; no buffers; no minimum notice; bookings up to
// 365 days ahead; no cancellation deadline; no approval; no daily limit per
// client; no custom fields; series of at most 365 occurrences; waitlist
// entries promoted to 60-minute holds.
func DefaultSettings() Settings {
	day := []TimeRange{{Start: "09:00", End: "17:00"}}
	return Settings{
		Timezone: "UTC",
		BusinessHours: WeeklyHours{
			"mon": slices.Clone(day), "tue": slices.Clone(day), "wed": slices.Clone(day),
			"thu": slices.Clone(day), "fri": slices.Clone(day),
		},
		Closures:                    []Closure{},
		SlotGranularityMinutes:      15,
		MinDurationMinutes:          15,
		MaxDurationMinutes:          480,
		MaxAdvanceDays:              365,
		CustomFields:                []CustomField{},
		BufferBeforeMinutes:         0,
		BufferAfterMinutes:          0,
		MinNoticeMinutes:            0,
		CancellationDeadlineMinutes: 0,
		MaxBookingsPerClientPerDay:  0,
		MaxOccurrences:              DefaultMaxOccurrences,
		WaitlistPromotion:           WaitlistPromoteHold,
		WaitlistHoldMinutes:         DefaultWaitlistHoldMinutes,
	}
}

// SettingsInput is a settings document as a client sends it, on tenant
// creation and on PUT. Every absent (nil) field takes its DefaultSettings
// value, never the tenant's previous value, so a PUT is a whole replacement
// and sending the same document twice yields the same settings. A present
// business_hours replaces the default week entirely (an absent weekday in it
// is closed).
type SettingsInput struct {
	Timezone                    *string        `json:"timezone,omitempty"`
	BusinessHours               *WeeklyHours   `json:"business_hours,omitempty"`
	Closures                    *[]Closure     `json:"closures,omitempty"`
	SlotGranularityMinutes      *int           `json:"slot_granularity_minutes,omitempty"`
	MinDurationMinutes          *int           `json:"min_duration_minutes,omitempty"`
	MaxDurationMinutes          *int           `json:"max_duration_minutes,omitempty"`
	BufferBeforeMinutes         *int           `json:"buffer_before_minutes,omitempty"`
	BufferAfterMinutes          *int           `json:"buffer_after_minutes,omitempty"`
	MinNoticeMinutes            *int           `json:"min_notice_minutes,omitempty"`
	MaxAdvanceDays              *int           `json:"max_advance_days,omitempty"`
	CancellationDeadlineMinutes *int           `json:"cancellation_deadline_minutes,omitempty"`
	RequiresApproval            *bool          `json:"requires_approval,omitempty"`
	MaxBookingsPerClientPerDay  *int           `json:"max_bookings_per_client_per_day,omitempty"`
	CustomFields                *[]CustomField `json:"custom_fields,omitempty"`
	MaxOccurrences              *int           `json:"max_occurrences,omitempty"`
	WaitlistPromotion           *string        `json:"waitlist_promotion,omitempty"`
	WaitlistHoldMinutes         *int           `json:"waitlist_hold_minutes,omitempty"`
}

// Resolve fills absent fields from DefaultSettings. It does not validate;
// NewTenant and ChangeSettings do.
func (in SettingsInput) Resolve() Settings {
	s := DefaultSettings()
	if in.Timezone != nil {
		s.Timezone = *in.Timezone
	}
	if in.BusinessHours != nil {
		s.BusinessHours = cloneWeekly(*in.BusinessHours)
		if s.BusinessHours == nil {
			s.BusinessHours = WeeklyHours{}
		}
	}
	if in.Closures != nil {
		s.Closures = slices.Clone(*in.Closures)
	}
	setInt := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setInt(&s.SlotGranularityMinutes, in.SlotGranularityMinutes)
	setInt(&s.MinDurationMinutes, in.MinDurationMinutes)
	setInt(&s.MaxDurationMinutes, in.MaxDurationMinutes)
	setInt(&s.BufferBeforeMinutes, in.BufferBeforeMinutes)
	setInt(&s.BufferAfterMinutes, in.BufferAfterMinutes)
	setInt(&s.MinNoticeMinutes, in.MinNoticeMinutes)
	setInt(&s.MaxAdvanceDays, in.MaxAdvanceDays)
	setInt(&s.CancellationDeadlineMinutes, in.CancellationDeadlineMinutes)
	setInt(&s.MaxBookingsPerClientPerDay, in.MaxBookingsPerClientPerDay)
	setInt(&s.MaxOccurrences, in.MaxOccurrences)
	setInt(&s.WaitlistHoldMinutes, in.WaitlistHoldMinutes)
	if in.WaitlistPromotion != nil {
		s.WaitlistPromotion = *in.WaitlistPromotion
	}
	if in.RequiresApproval != nil {
		s.RequiresApproval = *in.RequiresApproval
	}
	if in.CustomFields != nil {
		s.CustomFields = cloneFields(*in.CustomFields)
	}
	return s.normalized()
}

// Validate reports every problem of s at once as a *ValidationError with
// fields named as in the JSON document: an unknown time zone, a bad HH:MM,
// an end not after its start, overlapping ranges, an unknown weekday,
// negative minutes, a granularity outside 1–1440, min > max duration, a
// max duration over one week, a bad or repeated closure date, bad custom
// field definitions, max_occurrences outside 1–1000, an unknown
// waitlist_promotion, waitlist_hold_minutes outside 1–10080. It returns
// nil when s is valid.
func (s Settings) Validate() error {
	var v ValidationError
	s.validate(&v, "")
	return v.Err()
}

func (s Settings) validate(v *ValidationError, prefix string) {
	p := func(f string) string { return joinPath(prefix, f) }
	if _, err := loadLocation(s.Timezone); err != nil {
		v.Addf(p("timezone"), FieldInvalid, "must be an IANA time zone such as Europe/Lisbon, got %q", s.Timezone)
	}
	validateWeekly(v, p("business_hours"), s.BusinessHours)
	seen := map[string]int{}
	for i, c := range s.Closures {
		cp := p(fmt.Sprintf("closures[%d]", i))
		if _, ok := parseDate(c.Date); !ok {
			v.Addf(cp+".date", FieldInvalid, "must be a date YYYY-MM-DD, got %q", c.Date)
		} else if j, dup := seen[c.Date]; dup {
			v.Addf(cp+".date", FieldDuplicate, "date %s is already closed by closures[%d]", c.Date, j)
		} else {
			seen[c.Date] = i
		}
		if len(c.Reason) > maxNameLen {
			v.Addf(cp+".reason", FieldTooLong, "must be at most %d bytes", maxNameLen)
		}
	}
	if s.SlotGranularityMinutes < 1 || s.SlotGranularityMinutes > MaxGranularityMinutes {
		v.Addf(p("slot_granularity_minutes"), FieldOutOfRange, "must be between 1 and %d", MaxGranularityMinutes)
	}
	if s.MinDurationMinutes < 1 {
		v.Add(p("min_duration_minutes"), FieldOutOfRange, "must be at least 1")
	}
	if s.MaxDurationMinutes < 1 || s.MaxDurationMinutes > MaxDurationLimitMinutes {
		v.Addf(p("max_duration_minutes"), FieldOutOfRange, "must be between 1 and %d", MaxDurationLimitMinutes)
	} else if s.MinDurationMinutes >= 1 && s.MaxDurationMinutes < s.MinDurationMinutes {
		v.Addf(p("max_duration_minutes"), FieldOutOfRange, "must not be less than min_duration_minutes (%d)", s.MinDurationMinutes)
	}
	for _, f := range []struct {
		name string
		val  int
	}{
		{"buffer_before_minutes", s.BufferBeforeMinutes},
		{"buffer_after_minutes", s.BufferAfterMinutes},
		{"min_notice_minutes", s.MinNoticeMinutes},
		{"max_advance_days", s.MaxAdvanceDays},
		{"cancellation_deadline_minutes", s.CancellationDeadlineMinutes},
		{"max_bookings_per_client_per_day", s.MaxBookingsPerClientPerDay},
	} {
		if f.val < 0 {
			v.Add(p(f.name), FieldOutOfRange, "must not be negative")
		}
	}
	validateCustomFields(v, p("custom_fields"), s.CustomFields)
	// Zero stands for a document written before these settings existed;
	// normalized reads it as the default.
	if s.MaxOccurrences < 0 || s.MaxOccurrences > MaxOccurrencesLimit {
		v.Addf(p("max_occurrences"), FieldOutOfRange, "must be between 1 and %d", MaxOccurrencesLimit)
	}
	switch s.WaitlistPromotion {
	case "", WaitlistPromoteBooking, WaitlistPromoteHold:
	default:
		v.Addf(p("waitlist_promotion"), FieldInvalid, "must be %q or %q, got %q", WaitlistPromoteBooking, WaitlistPromoteHold, s.WaitlistPromotion)
	}
	if s.WaitlistHoldMinutes < 0 || s.WaitlistHoldMinutes > MaxHoldMinutes {
		v.Addf(p("waitlist_hold_minutes"), FieldOutOfRange, "must be between 1 and %d", MaxHoldMinutes)
	}
}

// normalized returns a deep copy with nil collections made empty, so that
// equal documents compare equal and serialise identically.
func (s Settings) normalized() Settings {
	out := s
	out.BusinessHours = cloneWeekly(s.BusinessHours)
	if out.BusinessHours == nil {
		out.BusinessHours = WeeklyHours{}
	}
	for k, rs := range out.BusinessHours {
		if len(rs) == 0 {
			delete(out.BusinessHours, k)
		}
	}
	out.Closures = slices.Clone(s.Closures)
	if out.Closures == nil {
		out.Closures = []Closure{}
	}
	out.CustomFields = cloneFields(s.CustomFields)
	if out.CustomFields == nil {
		out.CustomFields = []CustomField{}
	}
	if out.MaxOccurrences == 0 {
		out.MaxOccurrences = DefaultMaxOccurrences
	}
	if out.WaitlistPromotion == "" {
		out.WaitlistPromotion = WaitlistPromoteHold
	}
	if out.WaitlistHoldMinutes == 0 {
		out.WaitlistHoldMinutes = DefaultWaitlistHoldMinutes
	}
	return out
}

func cloneFields(fs []CustomField) []CustomField {
	if fs == nil {
		return nil
	}
	out := make([]CustomField, len(fs))
	for i, f := range fs {
		f.Options = slices.Clone(f.Options)
		out[i] = f
	}
	return out
}

// FieldsFor returns the custom field definitions of one entity, in order.
func (s Settings) FieldsFor(entity FieldEntity) []CustomField {
	var out []CustomField
	for _, f := range s.CustomFields {
		if f.Entity == entity {
			out = append(out, f)
		}
	}
	return out
}

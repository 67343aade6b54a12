package domain

import (
	"encoding/json"
	"maps"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	maxNameLen  = 200
	maxTextLen  = 5000
	maxLabelKey = 64
	maxLabels   = 100
)

// Branding is how a white-label tenant looks. Every field is optional; URLs
// must be absolute http(s) and colours #RGB or #RRGGBB.
type Branding struct {
	LogoURL        string `json:"logo_url,omitempty"`
	FaviconURL     string `json:"favicon_url,omitempty"`
	PrimaryColor   string `json:"primary_color,omitempty"`
	SecondaryColor string `json:"secondary_color,omitempty"`
}

var colorPattern = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

func (b Branding) validate(v *ValidationError, prefix string) {
	for _, u := range []struct{ name, val string }{{"logo_url", b.LogoURL}, {"favicon_url", b.FaviconURL}} {
		if u.val == "" {
			continue
		}
		parsed, err := url.Parse(u.val)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" || len(u.val) > 2048 {
			v.Addf(joinPath(prefix, u.name), FieldInvalid, "must be an absolute http(s) URL")
		}
	}
	for _, c := range []struct{ name, val string }{{"primary_color", b.PrimaryColor}, {"secondary_color", b.SecondaryColor}} {
		if c.val != "" && !colorPattern.MatchString(c.val) {
			v.Addf(joinPath(prefix, c.name), FieldInvalid, "must be a colour #RGB or #RRGGBB, got %q", c.val)
		}
	}
}

// validateLabels checks custom labels: non-empty keys of at most 64 bytes,
// values of at most 200 bytes, at most 100 entries.
func validateLabels(v *ValidationError, path string, labels map[string]string) {
	if len(labels) > maxLabels {
		v.Addf(path, FieldOutOfRange, "at most %d labels", maxLabels)
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > maxLabelKey {
			v.Addf(path, FieldInvalid, "label keys must be 1-%d bytes", maxLabelKey)
		} else if len(labels[k]) > maxNameLen {
			v.Addf(path+"."+k, FieldTooLong, "must be at most %d bytes", maxNameLen)
		}
	}
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// NormalizeDomain trims and lower-cases a white-label domain and checks it is
// a host name (dot-separated labels of a-z, 0-9 and inner hyphens, at most
// 253 bytes). The command side derives the guard stream from the result.
// It returns a *ValidationError on field "domain".
func NormalizeDomain(domain string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(domain))
	var v ValidationError
	switch {
	case d == "":
		v.Add("domain", FieldRequired, "is required")
	case len(d) > 253:
		v.Add("domain", FieldTooLong, "must be at most 253 bytes")
	default:
		for _, l := range strings.Split(d, ".") {
			if !hostLabel.MatchString(l) {
				v.Addf("domain", FieldInvalid, "must be a host name such as clinic.example.com, got %q", domain)
				break
			}
		}
	}
	return d, v.Err()
}

// TenantInput creates a tenant. Settings nil means DefaultSettings; a
// partial settings document takes defaults for what it omits (see
// SettingsInput).
type TenantInput struct {
	Name     string            `json:"name"`
	Domain   string            `json:"domain"`
	Branding Branding          `json:"branding"`
	Labels   map[string]string `json:"labels"`
	Settings *SettingsInput    `json:"settings"`
}

// TenantPatch changes a tenant's descriptive fields; nil fields stay. The
// domain cannot change: it is the tenant's unique white-label key.
// Branding and Labels, when given, replace the old value whole.
type TenantPatch struct {
	Name     *string            `json:"name,omitempty"`
	Branding *Branding          `json:"branding,omitempty"`
	Labels   *map[string]string `json:"labels,omitempty"`
}

// Tenant is an organisation using the engine: its white-label identity and
// its booking policy (settings) with a policy version that starts at 1 and
// grows with every settings change.
type Tenant struct {
	root
	id            uuid.UUID
	name          string
	domain        string
	branding      Branding
	labels        map[string]string
	settings      Settings
	policyVersion int
	location      *time.Location
	createdAt     time.Time
	updatedAt     time.Time
	createdBy     string
	updatedBy     string
}

// NewTenant validates in and records tenant.created with policy version 1.
// It returns a *ValidationError listing every bad field (settings fields
// under "settings."). Domain uniqueness is not checked here: the command
// side claims DomainGuardStream in the same append.
func NewTenant(id uuid.UUID, in TenantInput, actor Actor, now time.Time) (*Tenant, error) {
	var v ValidationError
	if id == uuid.Nil {
		v.Add("id", FieldRequired, "is required")
	}
	name := strings.TrimSpace(in.Name)
	validateName(&v, "name", name)
	domain, err := NormalizeDomain(in.Domain)
	v.Merge("", err)
	in.Branding.validate(&v, "branding")
	validateLabels(&v, "labels", in.Labels)
	settings := DefaultSettings()
	if in.Settings != nil {
		settings = in.Settings.Resolve()
	}
	settings.validate(&v, "settings")
	if err := v.Err(); err != nil {
		return nil, err
	}
	t := &Tenant{}
	err = t.record(t.apply, TenantCreated{
		TenantID: id, Name: name, Domain: domain, Branding: in.Branding,
		Labels: cloneLabels(in.Labels), Settings: settings.normalized(), PolicyVersion: 1,
		CreatedBy: actor.ID, CreatedAt: now.UTC(),
	})
	return t, err
}

// Replay rebuilds the tenant from its stream, oldest first. It fails on an
// event of another aggregate or one out of order.
func (t *Tenant) Replay(events ...Event) error { return t.replay("tenant", t.apply, events) }

// ChangeSettings replaces the settings whole and bumps the policy version.
// s should come from SettingsInput.Resolve so omitted fields take defaults.
// It returns a *ValidationError listing every problem. Setting the very
// same settings again records nothing and returns nil, so a retried PUT does
// not bump the version.
func (t *Tenant) ChangeSettings(s Settings, actor Actor, now time.Time) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s = s.normalized()
	if sameJSON(s, t.settings) {
		return nil
	}
	return t.record(t.apply, TenantSettingsChanged{
		TenantID: t.id, Settings: s, PolicyVersion: t.policyVersion + 1,
		Actor: actor.ID, At: now.UTC(),
	})
}

// Update applies a patch to name, branding and labels. It returns a
// *ValidationError for bad fields and records nothing when the patch changes
// nothing (idempotent).
func (t *Tenant) Update(in TenantPatch, actor Actor, now time.Time) error {
	var v ValidationError
	ev := TenantUpdated{TenantID: t.id, Name: t.name, Branding: t.branding, Labels: cloneLabels(t.labels), Actor: actor.ID, At: now.UTC()}
	if in.Name != nil {
		ev.Name = strings.TrimSpace(*in.Name)
		validateName(&v, "name", ev.Name)
	}
	if in.Branding != nil {
		ev.Branding = *in.Branding
		ev.Branding.validate(&v, "branding")
	}
	if in.Labels != nil {
		ev.Labels = cloneLabels(*in.Labels)
		validateLabels(&v, "labels", ev.Labels)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if ev.Name == t.name && ev.Branding == t.branding && maps.Equal(ev.Labels, t.labels) {
		return nil
	}
	return t.record(t.apply, ev)
}

func (t *Tenant) apply(e Event) error {
	switch e := e.(type) {
	case TenantCreated:
		if t.version > 0 {
			return alreadyCreated("tenant", e)
		}
		t.id, t.name, t.domain, t.branding = e.TenantID, e.Name, e.Domain, e.Branding
		t.labels = cloneLabels(e.Labels)
		t.settings = e.Settings.normalized()
		t.location = mustLocation(e.Settings.Timezone)
		t.policyVersion = e.PolicyVersion
		t.createdAt, t.updatedAt = e.CreatedAt, e.CreatedAt
		t.createdBy, t.updatedBy = e.CreatedBy, e.CreatedBy
	case TenantSettingsChanged:
		if t.version == 0 {
			return notCreated("tenant", e)
		}
		t.settings = e.Settings.normalized()
		t.location = mustLocation(e.Settings.Timezone)
		t.policyVersion = e.PolicyVersion
		t.updatedAt, t.updatedBy = e.At, e.Actor
	case TenantUpdated:
		if t.version == 0 {
			return notCreated("tenant", e)
		}
		t.name, t.branding, t.labels = e.Name, e.Branding, cloneLabels(e.Labels)
		t.updatedAt, t.updatedBy = e.At, e.Actor
	default:
		return foreignEvent("tenant", e)
	}
	return nil
}

// ID returns the tenant id.
func (t *Tenant) ID() uuid.UUID { return t.id }

// Name returns the display name.
func (t *Tenant) Name() string { return t.name }

// Domain returns the normalised white-label domain.
func (t *Tenant) Domain() string { return t.domain }

// Settings returns a copy of the current settings.
func (t *Tenant) Settings() Settings { return t.settings.normalized() }

// PolicyVersion returns the version of the current settings (1 at creation).
func (t *Tenant) PolicyVersion() int { return t.policyVersion }

// Location returns the tenant's zone (UTC for a zero Tenant).
func (t *Tenant) Location() *time.Location {
	if t.location == nil {
		return time.UTC
	}
	return t.location
}

// TenantView is the JSON shape of a tenant in API responses.
type TenantView struct {
	ID            uuid.UUID         `json:"id"`
	Name          string            `json:"name"`
	Domain        string            `json:"domain"`
	Branding      Branding          `json:"branding"`
	Labels        map[string]string `json:"labels"`
	Settings      Settings          `json:"settings"`
	PolicyVersion int               `json:"policy_version"`
	Version       int64             `json:"version"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	CreatedBy     string            `json:"created_by"`
	UpdatedBy     string            `json:"updated_by"`
}

// View returns the tenant as the API shows it.
func (t *Tenant) View() TenantView {
	labels := cloneLabels(t.labels)
	if labels == nil {
		labels = map[string]string{}
	}
	return TenantView{
		ID: t.id, Name: t.name, Domain: t.domain, Branding: t.branding, Labels: labels,
		Settings: t.Settings(), PolicyVersion: t.policyVersion, Version: t.version,
		CreatedAt: t.createdAt, UpdatedAt: t.updatedAt, CreatedBy: t.createdBy, UpdatedBy: t.updatedBy,
	}
}

func validateName(v *ValidationError, field, name string) {
	if name == "" {
		v.Add(field, FieldRequired, "is required")
	} else if len(name) > maxNameLen {
		v.Addf(field, FieldTooLong, "must be at most %d bytes", maxNameLen)
	}
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}

// sameJSON compares two values by their JSON encoding, which is how they are
// stored; it treats values that serialise identically as equal. Values that
// cannot be encoded never compare equal, so the change is recorded and the
// store reports the encoding error.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

package domain_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

var resourceFields = []domain.CustomField{
	{Entity: domain.EntityResource, Key: "floor", Label: "Floor", Type: domain.FieldNumber, Required: true},
	{Entity: domain.EntityBooking, Key: "floor", Label: "Not for resources", Type: domain.FieldText, Required: true},
}

func TestNewResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     domain.ResourceInput
		fields []string
		want   domain.ResourceCreated
	}{
		{name: "capacity defaults to one",
			in: domain.ResourceInput{CategoryID: &categoryID, Name: " Sala 1 ", Kind: domain.KindSpace, Attributes: map[string]any{"floor": 2.0}},
			want: domain.ResourceCreated{ResourceID: resourceID, TenantID: tenantID, CategoryID: &categoryID, Name: "Sala 1", Kind: domain.KindSpace,
				Capacity: 1, Attributes: map[string]any{"floor": 2.0}, CreatedBy: admin.ID, CreatedAt: t0}},
		{name: "own zone and seats, nil category",
			in: domain.ResourceInput{CategoryID: &uuid.Nil, Name: "Yoga", Kind: domain.KindPerson, Capacity: 12, Timezone: "Europe/Lisbon", Attributes: map[string]any{"floor": 1}},
			want: domain.ResourceCreated{ResourceID: resourceID, TenantID: tenantID, Name: "Yoga", Kind: domain.KindPerson,
				Capacity: 12, Timezone: "Europe/Lisbon", Attributes: map[string]any{"floor": 1}, CreatedBy: admin.ID, CreatedAt: t0}},
		{name: "every problem at once",
			in:     domain.ResourceInput{Name: "", Kind: "robot", Capacity: -1, Timezone: "Mars/Base", Attributes: map[string]any{"floor": "two"}},
			fields: []string{"name", "kind", "capacity", "timezone", "attributes.floor"}},
		{name: "required attribute missing", in: domain.ResourceInput{Name: "A", Kind: domain.KindSoftware}, fields: []string{"attributes.floor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := domain.NewResource(resourceID, tenantID, tt.in, resourceFields, admin, t0)
			if tt.fields != nil {
				requireErrorIs(t, domain.ErrValidationFailed, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, []domain.Event{tt.want}, r.Changes())
			require.True(t, r.Active())
		})
	}
}

func TestResourceCommands(t *testing.T) {
	t.Parallel()
	later := t0.Add(time.Hour)
	createdEv := domain.ResourceCreated{ResourceID: resourceID, TenantID: tenantID, Name: "Sala", Kind: domain.KindSpace, Capacity: 2,
		Attributes: map[string]any{"floor": 1.0}, CreatedBy: admin.ID, CreatedAt: t0}
	deactivated := domain.ResourceDeactivated{ResourceID: resourceID, Actor: admin.ID, At: later}
	week := domain.Availability{
		Weekly:    domain.WeeklyHours{"mon": {rng("09:00", "12:00"), rng("13:00", "17:00")}},
		Overrides: []domain.Override{{Date: "2026-12-24", Intervals: []domain.TimeRange{}}},
	}
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(r *domain.Resource) error
		then   []domain.Event
		err    error
		fields []string
	}{
		{name: "update carries every field", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error {
				return r.Update(domain.ResourcePatch{Name: ptr("Sala 2"), Capacity: ptr(4), CategoryID: &categoryID, Timezone: ptr("Asia/Tokyo")}, resourceFields, manager, later)
			},
			then: []domain.Event{domain.ResourceUpdated{ResourceID: resourceID, CategoryID: &categoryID, Name: "Sala 2", Kind: domain.KindSpace, Capacity: 4,
				Attributes: map[string]any{"floor": 1.0}, Timezone: "Asia/Tokyo", Actor: manager.ID, At: later}}},
		{name: "clear category and zone", given: []domain.Event{createdEv,
			domain.ResourceUpdated{ResourceID: resourceID, CategoryID: &categoryID, Name: "Sala", Kind: domain.KindSpace, Capacity: 2, Attributes: map[string]any{"floor": 1.0}, Timezone: "Asia/Tokyo"}},
			when: func(r *domain.Resource) error {
				return r.Update(domain.ResourcePatch{CategoryID: &uuid.Nil, Timezone: ptr("")}, resourceFields, manager, later)
			},
			then: []domain.Event{domain.ResourceUpdated{ResourceID: resourceID, Name: "Sala", Kind: domain.KindSpace, Capacity: 2,
				Attributes: map[string]any{"floor": 1.0}, Actor: manager.ID, At: later}}},
		{name: "patch without change records nothing", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error {
				return r.Update(domain.ResourcePatch{Name: ptr("Sala"), Attributes: &map[string]any{"floor": 1.0}}, resourceFields, manager, later)
			}},
		{name: "invalid patch", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error {
				return r.Update(domain.ResourcePatch{Capacity: ptr(0), Kind: ptr(domain.ResourceKind("boat")), Attributes: &map[string]any{}}, resourceFields, manager, later)
			},
			err: domain.ErrValidationFailed, fields: []string{"capacity", "kind", "attributes.floor"}},
		{name: "set availability", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error { return r.SetAvailability(week, manager, later) },
			then: []domain.Event{domain.ResourceAvailabilityChanged{ResourceID: resourceID, Availability: week, Actor: manager.ID, At: later}}},
		{name: "same availability again records nothing", given: []domain.Event{createdEv,
			domain.ResourceAvailabilityChanged{ResourceID: resourceID, Availability: week, Actor: manager.ID, At: later}},
			when: func(r *domain.Resource) error { return r.SetAvailability(week, manager, later) }},
		{name: "clear availability", given: []domain.Event{createdEv,
			domain.ResourceAvailabilityChanged{ResourceID: resourceID, Availability: week, Actor: manager.ID, At: later}},
			when: func(r *domain.Resource) error { return r.SetAvailability(domain.Availability{}, manager, later) },
			then: []domain.Event{domain.ResourceAvailabilityChanged{ResourceID: resourceID, Actor: manager.ID, At: later}}},
		{name: "invalid availability", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error {
				return r.SetAvailability(domain.Availability{
					Weekly: domain.WeeklyHours{"mon": {rng("12:00", "09:00")}, "funday": nil},
					Overrides: []domain.Override{{Date: "24/12/2026"}, {Date: "2026-12-25", Intervals: []domain.TimeRange{rng("10:00", "12:00"), rng("11:00", "13:00")}},
						{Date: "2026-12-25"}},
				}, manager, later)
			},
			err:    domain.ErrValidationFailed,
			fields: []string{"weekly.mon[0].end", "weekly.funday", "overrides[0].date", "overrides[1].intervals[1]", "overrides[2].date"}},
		{name: "deactivate", given: []domain.Event{createdEv},
			when: func(r *domain.Resource) error { return r.Deactivate(admin, later) }, then: []domain.Event{deactivated}},
		{name: "deactivate twice records nothing", given: []domain.Event{createdEv, deactivated},
			when: func(r *domain.Resource) error { return r.Deactivate(admin, later) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &domain.Resource{}
			require.NoError(t, r.Replay(tt.given...))
			err := tt.when(r)
			if tt.err != nil {
				requireErrorIs(t, tt.err, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				require.Empty(t, r.Changes())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.then, nilIfEmpty(r.Changes()))
		})
	}
}

func TestResourceView(t *testing.T) {
	t.Parallel()
	r := MustResource(t, 3, "Europe/Lisbon", domain.Availability{Weekly: domain.WeeklyHours{}})
	require.NoError(t, r.Deactivate(manager, t0.Add(time.Hour)))
	v := r.View()
	require.Equal(t, resourceID, v.ID)
	require.Equal(t, tenantID, v.TenantID)
	require.Equal(t, 3, v.Capacity)
	require.Equal(t, "Europe/Lisbon", v.Timezone)
	require.False(t, v.Active)
	require.Equal(t, int64(3), v.Version)
	require.Equal(t, domain.WeeklyHours{}, v.Availability.Weekly)
	require.Equal(t, manager.ID, v.UpdatedBy)
	require.Nil(t, v.CategoryID)
	require.Equal(t, map[string]any{}, v.Attributes)
}

func TestResourceCategory(t *testing.T) {
	t.Parallel()
	c, err := domain.NewResourceCategory(categoryID, tenantID, domain.ResourceCategoryInput{Name: " Dentists ", Description: "All dentists"}, admin, t0)
	require.NoError(t, err)
	want := domain.ResourceCategoryCreated{CategoryID: categoryID, TenantID: tenantID, Name: "Dentists", Description: "All dentists", CreatedBy: admin.ID, CreatedAt: t0}
	require.Equal(t, []domain.Event{want}, c.Changes())

	replayed := &domain.ResourceCategory{}
	require.NoError(t, replayed.Replay(want))
	require.Equal(t, c.View(), replayed.View())
	require.Equal(t, "Dentists", replayed.View().Name)
	require.Equal(t, categoryID, replayed.ID())

	_, err = domain.NewResourceCategory(uuid.Nil, uuid.Nil, domain.ResourceCategoryInput{}, admin, t0)
	requireErrorIs(t, domain.ErrValidationFailed, err)
	require.ElementsMatch(t, []string{"id", "tenant_id", "name"}, fieldsOf(t, err))
	require.Error(t, replayed.Replay(want), "created twice")
}

package domain_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/domain"
)

var userFields = []domain.CustomField{
	{Entity: domain.EntityUser, Key: "birthday", Label: "Birthday", Type: domain.FieldDate},
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{" Ana@Example.COM ", "ana@example.com", true},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org", true},
		{"", "", false},
		{"ana", "ana", false},
		{"Ana <ana@example.com>", "", false},
		{"ana@", "", false},
		{"@example.com", "", false},
		{"ana@@example.com", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := domain.NormalizeEmail(tt.in)
			if !tt.ok {
				requireErrorIs(t, domain.ErrValidationFailed, err)
				require.Equal(t, []string{"email"}, fieldsOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewUser(t *testing.T) {
	t.Parallel()
	person := uuid.MustParse("00000000-0000-0000-0000-0000000000b9")
	tests := []struct {
		name   string
		in     domain.UserInput
		fields []string
		want   domain.UserCreated
	}{
		{name: "client with normalised email",
			in: domain.UserInput{Email: " Ana@Example.com", Name: " Ana ", Role: domain.RoleClient, Attributes: map[string]any{"birthday": "1990-04-01", "vip": true}},
			want: domain.UserCreated{UserID: clientID, TenantID: tenantID, Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient,
				Attributes: map[string]any{"birthday": "1990-04-01", "vip": true}, CreatedBy: admin.ID, CreatedAt: t0}},
		{name: "professional linked to a person resource",
			in: domain.UserInput{Email: "dr@example.com", Name: "Dr", Role: domain.RoleProfessional, ResourceID: &person},
			want: domain.UserCreated{UserID: clientID, TenantID: tenantID, Email: "dr@example.com", Name: "Dr", Role: domain.RoleProfessional,
				ResourceID: &person, CreatedBy: admin.ID, CreatedAt: t0}},
		{name: "every problem at once",
			in:     domain.UserInput{Email: "nope", Role: domain.RolePlatformAdmin, ResourceID: &person, Attributes: map[string]any{"birthday": "01/04/1990"}},
			fields: []string{"email", "name", "role", "resource_id", "attributes.birthday"}},
		{name: "only professionals link a resource",
			in:     domain.UserInput{Email: "a@example.com", Name: "A", Role: domain.RoleManager, ResourceID: &person},
			fields: []string{"resource_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := domain.NewUser(clientID, tenantID, tt.in, userFields, admin, t0)
			if tt.fields != nil {
				requireErrorIs(t, domain.ErrValidationFailed, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, []domain.Event{tt.want}, u.Changes())
		})
	}
}

func TestUserCommands(t *testing.T) {
	t.Parallel()
	later := t0.Add(time.Hour)
	createdEv := domain.UserCreated{UserID: clientID, TenantID: tenantID, Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient, CreatedBy: admin.ID, CreatedAt: t0}
	tests := []struct {
		name   string
		when   func(u *domain.User) error
		then   []domain.Event
		fields []string
	}{
		{name: "change email and role",
			when: func(u *domain.User) error {
				return u.Update(domain.UserPatch{Email: ptr("ANA@new.example.com"), Role: ptr(domain.RoleManager)}, userFields, admin, later)
			},
			then: []domain.Event{domain.UserUpdated{UserID: clientID, Email: "ana@new.example.com", Name: "Ana", Role: domain.RoleManager, Actor: admin.ID, At: later}}},
		{name: "replace attributes",
			when: func(u *domain.User) error {
				return u.Update(domain.UserPatch{Attributes: &map[string]any{"birthday": "2000-01-31"}}, userFields, admin, later)
			},
			then: []domain.Event{domain.UserUpdated{UserID: clientID, Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient,
				Attributes: map[string]any{"birthday": "2000-01-31"}, Actor: admin.ID, At: later}}},
		{name: "same values record nothing",
			when: func(u *domain.User) error {
				return u.Update(domain.UserPatch{Email: ptr(" ana@example.com"), Name: ptr("Ana")}, userFields, admin, later)
			}},
		{name: "invalid patch",
			when: func(u *domain.User) error {
				return u.Update(domain.UserPatch{Email: ptr("x"), Name: ptr(""), Role: ptr(domain.Role("owner")), Attributes: &map[string]any{"birthday": 3}}, userFields, admin, later)
			},
			fields: []string{"email", "name", "role", "attributes.birthday"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := &domain.User{}
			require.NoError(t, u.Replay(createdEv))
			err := tt.when(u)
			if tt.fields != nil {
				requireErrorIs(t, domain.ErrValidationFailed, err)
				require.ElementsMatch(t, tt.fields, fieldsOf(t, err))
				require.Empty(t, u.Changes())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.then, nilIfEmpty(u.Changes()))
		})
	}
}

func TestUserView(t *testing.T) {
	t.Parallel()
	u, err := domain.NewUser(clientID, tenantID, domain.UserInput{Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient}, nil, admin, t0)
	require.NoError(t, err)
	require.NoError(t, u.Update(domain.UserPatch{Name: ptr("Ana B")}, nil, manager, t0.Add(time.Minute)))
	v := u.View()
	require.Equal(t, "Ana B", v.Name)
	require.Equal(t, "ana@example.com", v.Email)
	require.Equal(t, int64(2), v.Version)
	require.Equal(t, manager.ID, v.UpdatedBy)
	require.Equal(t, map[string]any{}, v.Attributes)
	require.Nil(t, u.ResourceID())
	require.Error(t, (&domain.User{}).Replay(domain.UserUpdated{}))
}

package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, postgres.Config{}.Validate(), "the zero config takes defaults")

	err := postgres.Config{
		MaxConns:   -1,
		AnyRetries: -1,
		MaxReadAll: -5,
		Migrations: []postgres.MigrationSet{{}, {Name: "x"}, {Name: "x"}},
	}.Validate()
	require.Error(t, err)
	for _, want := range []string{"MaxConns is -1", "AnyRetries is -1", "MaxReadAll is -5", "field Migrations[0]: empty name",
		"Migrations[0] \"\": nil FS", "Migrations[2]: name \"x\" used twice", "Migrations[1] \"x\": nil FS"} {
		require.ErrorContains(t, err, want)
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		url  string
		cfg  postgres.Config
		want string
	}{
		{"InvalidConfig", "postgres://127.0.0.1:1/x", postgres.Config{MaxConns: -1}, "invalid config"},
		{"BadURL", "postgres://%zz", postgres.Config{}, "parse database url"},
		{"NoServer", "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", postgres.Config{}, "connect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := postgres.Open(context.Background(), tc.url, tc.cfg)
			require.ErrorContains(t, err, tc.want)
			require.Nil(t, s)
		})
	}
}

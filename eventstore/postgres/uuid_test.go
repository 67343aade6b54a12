package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore/postgres"
)

func TestUUIDParametersRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := mustOpen(t, postgres.Config{})
	ctx := t.Context()
	ids := []uuid.UUID{uuid.New(), uuid.Nil, uuid.MustParse("6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10")}

	var got []uuid.UUID
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT $1::uuid[]`, ids).Scan(&got))
	require.Equal(t, ids, got)

	var text string
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT ($1::uuid)::text`, ids[2]).Scan(&text))
	require.Equal(t, ids[2].String(), text)

	var null *uuid.UUID
	var isNull bool
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT $1::uuid IS NULL`, null).Scan(&isNull))
	require.True(t, isNull)
	p := &ids[0]
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT ($1::uuid)::text`, p).Scan(&text))
	require.Equal(t, ids[0].String(), text)

	// As text, for a text column, the canonical form.
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT $1::text`, ids[2].String()).Scan(&text))
	require.Equal(t, ids[2].String(), text)
}

func TestRegisterTypesEncodesUUIDsAsBytes(t *testing.T) {
	t.Parallel()
	m := pgtype.NewMap()
	postgres.RegisterTypes(m)
	id := uuid.MustParse("6f1c2a9e-3b1d-4c55-9a51-0d6c1e2b7a10")
	buf, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id, nil)
	require.NoError(t, err)
	require.Equal(t, id[:], buf)
	arr, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, []uuid.UUID{id, id}, nil)
	require.NoError(t, err)
	require.Equal(t, id[:], arr[len(arr)-16:])
}

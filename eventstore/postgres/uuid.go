package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RegisterTypes teaches a connection's type map to encode uuid.UUID as
// the 16 bytes it is. Without it pgx goes through uuid.UUID's
// driver.Valuer for every element of a []uuid.UUID parameter: a string,
// then a fresh encode plan for that string, whose failed attempts each
// build an error; a read model writing 10,000 rows spent most of its
// client CPU there. Open registers it on every connection of its pool;
// call it from the AfterConnect of any other pool.
func RegisterTypes(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUID}, m.TryWrapEncodePlanFuncs...)
}

// AfterConnect is a pgx AfterConnect hook that calls RegisterTypes.
func AfterConnect(_ context.Context, c *pgx.Conn) error {
	RegisterTypes(c.TypeMap())
	return nil
}

func tryWrapUUID(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if u, ok := value.(uuid.UUID); ok {
		return &uuidEncodePlan{}, [16]byte(u), true
	}
	return nil, nil, false
}

// uuidEncodePlan hands a uuid.UUID on as [16]byte.
type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode([16]byte(value.(uuid.UUID)), buf)
}

// ConfigurePool sets what every pool on the engine's database needs:
// AfterConnect (RegisterTypes).
func ConfigurePool(pc *pgxpool.Config) {
	pc.AfterConnect = AfterConnect
}

// Planned is the pgx.QueryExecMode of the queries over the tables that
// grow without bound (the event log, the applied versions): planned for
// their arguments on every execution (one round trip once the statement's
// description is cached). A cached statement's generic plan is made after
// five executions, while the tables are small, and keeps scanning them
// whole until the next ANALYZE, which never comes where autovacuum is off
// (seen: LoadStreams at 8 ms after 10,000 bookings, and growing). Pass it
// as the first argument.
const Planned = pgx.QueryExecModeCacheDescribe

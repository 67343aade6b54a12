// Package migrations is the one list of the PostgreSQL migration sets of
// the booking engine, which bookingd applies at start and bookingctl
// migrate applies on demand: a database migrated by either is one the
// other runs on.
package migrations

import (
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/eventstore/postgres/changefeed"
	"github.com/bookingengine/booking/http/pgidempotency"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/subscriber"
	"github.com/bookingengine/booking/webhooks"
)

// Sets returns, in the order they are applied, every migration set that
// bookingd applies after the event store's own (which postgres.Migrate
// always applies first): the idempotency keys, the triggers of the relay
// and of the cache's change feed, the subscribers' tables, every read
// model (readside.Migrations, the list the read side itself migrates) and
// the webhooks' tables, after the subscribers' that they write. Pass the
// result to postgres.Migrate or postgres.Config.Migrations.
//
// A new migration set must be added here (a read model's, to
// readside.Migrations, which this includes); a test fails for an
// embedded migrations directory that no set here names. Sets whose
// packages also migrate when they open (readside.Open, webhooks.Open) are
// applied once: Migrate records every file and skips it afterwards.
func Sets() []postgres.MigrationSet {
	sets := []postgres.MigrationSet{
		pgidempotency.Migrations(),
		relay.Migrations(),
		changefeed.Migrations(),
		subscriber.Migrations(),
	}
	sets = append(sets, readside.Migrations()...)
	return append(sets, webhooks.Migrations())
}

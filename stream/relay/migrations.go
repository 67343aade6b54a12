package relay

import (
	"embed"
	"io/fs"

	"github.com/bookingengine/booking/eventstore/postgres"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationSetName names the relay's migrations in schema_migrations. It
// is permanent: renaming it makes Migrate apply the files again.
const MigrationSetName = "relay"

// NotifyChannel is the PostgreSQL LISTEN channel on which the trigger of
// Migrations announces committed appends.
const NotifyChannel = "booking_events"

// Migrations returns the relay's migration set: the trigger that
// announces committed appends on NotifyChannel. Pass it to
// postgres.Config.Migrations (or postgres.Migrate) so it is applied with
// the event store's own migrations, under the same advisory lock. Without
// it the relay still publishes everything, only later: it falls back to
// polling every Config.PollInterval.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: MigrationSetName, FS: sub}
}

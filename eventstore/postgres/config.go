package postgres

import (
	"errors"
	"fmt"

	"github.com/bookingengine/booking/eventstore"
)

// Config tunes a Store. The zero value is usable: Open fills the defaults.
type Config struct {
	// MaxConns caps the pool Open creates (0: pgxpool's default, the
	// larger of 4 and the number of CPUs, or pool_max_conns in the URL).
	// Ignored by New, which uses the caller's pool.
	MaxConns int32
	// SkipMigrations stops Open and New from running Migrate. Set it when
	// an operator migrates separately (bookingctl migrate).
	SkipMigrations bool
	// Migrations are extra sets applied after the event store's own, in
	// order, by the same Migrate call (see MigrationSet).
	Migrations []MigrationSet
	// AnyRetries is how often an append whose streams expect Any is retried
	// after losing a race for a version to a concurrent writer before it
	// gives up with a *eventstore.VersionConflictError. Default 10.
	AnyRetries int
	// MaxReadAll caps the limit of one ReadAll call, so a careless caller
	// cannot pull the whole table into memory. Default 10,000.
	MaxReadAll int
	// Upcasters is the registry applied on Load and ReadAll; nil gives a new,
	// empty one (reachable through Store.Upcasters).
	Upcasters *eventstore.Upcasters
}

// Defaults used for zero Config fields.
const (
	DefaultAnyRetries = 10
	DefaultMaxReadAll = 10_000
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.AnyRetries == 0 {
		c.AnyRetries = DefaultAnyRetries
	}
	if c.MaxReadAll == 0 {
		c.MaxReadAll = DefaultMaxReadAll
	}
	if c.Upcasters == nil {
		c.Upcasters = eventstore.NewUpcasters()
	}
	return c
}

// Validate reports every problem of c at once, joined, so that an operator
// fixes a configuration in one pass. Zero fields are valid (they take
// defaults).
func (c Config) Validate() error {
	var errs []error
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("field MaxConns is %d, want >= 0", c.MaxConns))
	}
	if c.AnyRetries < 0 {
		errs = append(errs, fmt.Errorf("field AnyRetries is %d, want >= 0", c.AnyRetries))
	}
	if c.MaxReadAll < 0 {
		errs = append(errs, fmt.Errorf("field MaxReadAll is %d, want >= 0", c.MaxReadAll))
	}
	names := map[string]bool{eventStoreSet: true}
	for i, m := range c.Migrations {
		switch {
		case m.Name == "":
			errs = append(errs, fmt.Errorf("field Migrations[%d]: empty name", i))
		case names[m.Name]:
			errs = append(errs, fmt.Errorf("field Migrations[%d]: name %q used twice (or reserved)", i, m.Name))
		}
		names[m.Name] = true
		if m.FS == nil {
			errs = append(errs, fmt.Errorf("field Migrations[%d] %q: nil FS", i, m.Name))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("postgres: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

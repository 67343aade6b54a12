package webhooks

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/subscriber"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationSetName names PostgresStore's migrations in schema_migrations.
// It is permanent: renaming it makes Migrate apply the files again.
const MigrationSetName = "webhooks"

// Migrations returns the tables of PostgresStore (webhook_endpoints,
// webhook_deliveries, webhook_attempts). Pass them to postgres.Migrate or
// postgres.Config.Migrations, together with subscriber.Migrations(),
// whose tables Enqueue writes.
func Migrations() postgres.MigrationSet {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return postgres.MigrationSet{Name: MigrationSetName, FS: sub}
}

// PostgresStore is the Store on PostgreSQL (tables of Migrations and of
// subscriber.Migrations). Claims are leases taken with FOR UPDATE SKIP
// LOCKED in a short transaction; no transaction stays open while a
// request is in flight. Delivered rows are kept until Prune removes them.
// Safe for concurrent use, from many processes.
type PostgresStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*PostgresStore)(nil)

// NewPostgresStore returns a store on pool; run Migrations first.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore { return &PostgresStore{pool: pool} }

// endpointRow is a row of webhook_endpoints.
type endpointRow struct {
	ID                  uuid.UUID  `db:"id"`
	TenantID            uuid.UUID  `db:"tenant_id"`
	URL                 string     `db:"url"`
	EventTypes          []string   `db:"event_types"`
	Description         string     `db:"description"`
	Secret              string     `db:"secret"`
	Enabled             bool       `db:"enabled"`
	DisabledReason      string     `db:"disabled_reason"`
	DisabledAt          *time.Time `db:"disabled_at"`
	ConsecutiveFailures int        `db:"consecutive_failures"`
	FailingSince        *time.Time `db:"failing_since"`
	Version             int64      `db:"version"`
	CreatedAt           time.Time  `db:"created_at"`
	UpdatedAt           time.Time  `db:"updated_at"`
	CreatedBy           string     `db:"created_by"`
	UpdatedBy           string     `db:"updated_by"`
}

const endpointColumns = `id, tenant_id, url, event_types, description, secret, enabled, disabled_reason, disabled_at,
	consecutive_failures, failing_since, version, created_at, updated_at, created_by, updated_by`

func (r endpointRow) endpoint() Endpoint {
	return Endpoint{
		ID: r.ID, TenantID: r.TenantID, URL: r.URL, EventTypes: r.EventTypes, Description: r.Description,
		Secret: r.Secret, Enabled: r.Enabled, DisabledReason: r.DisabledReason, DisabledAt: deref(r.DisabledAt),
		ConsecutiveFailures: r.ConsecutiveFailures, FailingSince: deref(r.FailingSince), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), CreatedBy: r.CreatedBy, UpdatedBy: r.UpdatedBy,
	}
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullable(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// CreateEndpoint implements Store.
func (s *PostgresStore) CreateEndpoint(ctx context.Context, ep Endpoint) error {
	const q = `INSERT INTO webhook_endpoints (` + endpointColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`
	_, err := s.pool.Exec(ctx, q, ep.ID, ep.TenantID, ep.URL, ep.EventTypes, ep.Description, ep.Secret, ep.Enabled,
		ep.DisabledReason, nullable(ep.DisabledAt), ep.ConsecutiveFailures, nullable(ep.FailingSince), ep.Version,
		ep.CreatedAt, ep.UpdatedAt, ep.CreatedBy, ep.UpdatedBy)
	if err != nil {
		return fmt.Errorf("webhooks: create endpoint %s: %w", ep.ID, err)
	}
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func queryEndpoints(ctx context.Context, db querier, q string, args ...any) ([]Endpoint, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByName[endpointRow])
	if err != nil {
		return nil, err
	}
	out := make([]Endpoint, len(recs))
	for i, r := range recs {
		out[i] = r.endpoint()
	}
	return out, nil
}

func oneEndpoint(ctx context.Context, db querier, q string, args ...any) (Endpoint, error) {
	eps, err := queryEndpoints(ctx, db, q, args...)
	if err != nil {
		return Endpoint{}, err
	}
	if len(eps) == 0 {
		return Endpoint{}, ErrNotFound
	}
	return eps[0], nil
}

// Endpoint implements Store.
func (s *PostgresStore) Endpoint(ctx context.Context, tenant, id uuid.UUID) (Endpoint, error) {
	const q = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2`
	ep, err := oneEndpoint(ctx, s.pool, q, id, tenant)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Endpoint{}, fmt.Errorf("webhooks: read endpoint %s: %w", id, err)
	}
	return ep, err
}

// ListEndpoints implements Store.
func (s *PostgresStore) ListEndpoints(ctx context.Context, tenant uuid.UUID, after *EndpointCursor, limit int) ([]Endpoint, error) {
	var (
		eps []Endpoint
		err error
	)
	if after == nil {
		const q = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE tenant_id = $1
			ORDER BY created_at, id LIMIT $2`
		eps, err = queryEndpoints(ctx, s.pool, q, tenant, limit)
	} else {
		const q = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE tenant_id = $1
			AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`
		eps, err = queryEndpoints(ctx, s.pool, q, tenant, limit, after.CreatedAt, after.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	return eps, nil
}

// EnableEndpoint implements Store.
func (s *PostgresStore) EnableEndpoint(ctx context.Context, tenant, id uuid.UUID, expected *int64, actor string, now time.Time) (Endpoint, error) {
	var ep Endpoint
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		const lock = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2 FOR NO KEY UPDATE`
		var err error
		if ep, err = oneEndpoint(ctx, tx, lock, id, tenant); err != nil {
			return err
		}
		if expected != nil && *expected != ep.Version {
			return ErrVersionMismatch
		}
		if !enable(&ep, actor, now) {
			return nil
		}
		if err := updateEndpoint(ctx, tx, ep); err != nil {
			return err
		}
		const resume = `UPDATE webhook_deliveries SET next_attempt_at = $2, tries = 0, window_start = NULL, updated_at = $2
			WHERE endpoint_id = $1 AND status IN ('pending', 'failed')`
		_, err = tx.Exec(ctx, resume, id, now)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrVersionMismatch) {
			return Endpoint{}, err
		}
		return Endpoint{}, fmt.Errorf("webhooks: enable endpoint %s: %w", id, err)
	}
	return ep, nil
}

func updateEndpoint(ctx context.Context, tx pgx.Tx, ep Endpoint) error {
	const q = `UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, disabled_at = $4,
		consecutive_failures = $5, failing_since = $6, version = $7, updated_at = $8, updated_by = $9
		WHERE id = $1`
	_, err := tx.Exec(ctx, q, ep.ID, ep.Enabled, ep.DisabledReason, nullable(ep.DisabledAt), ep.ConsecutiveFailures,
		nullable(ep.FailingSince), ep.Version, ep.UpdatedAt, ep.UpdatedBy)
	return err
}

// deliveryRow is a row of webhook_deliveries.
type deliveryRow struct {
	ID            uuid.UUID  `db:"id"`
	QueueID       int64      `db:"queue_id"`
	TenantID      uuid.UUID  `db:"tenant_id"`
	EndpointID    uuid.UUID  `db:"endpoint_id"`
	EventID       uuid.UUID  `db:"event_id"`
	EventType     string     `db:"event_type"`
	Subject       string     `db:"subject"`
	Sequence      int64      `db:"sequence"`
	StreamVersion int64      `db:"stream_version"`
	BatchID       uuid.UUID  `db:"batch_id"`
	Status        string     `db:"status"`
	Tries         int        `db:"tries"`
	WindowStart   *time.Time `db:"window_start"`
	NextAttemptAt time.Time  `db:"next_attempt_at"`
	CreatedAt     time.Time  `db:"created_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

const deliveryColumns = `d.id, d.queue_id, d.tenant_id, d.endpoint_id, d.event_id, d.event_type, d.subject, d.sequence,
	d.stream_version, d.batch_id, d.status, d.tries, d.window_start, d.next_attempt_at, d.created_at, d.updated_at`

func (r deliveryRow) delivery() Delivery {
	return Delivery{
		ID: r.ID, QueueID: r.QueueID, TenantID: r.TenantID, EndpointID: r.EndpointID, EventID: r.EventID,
		EventType: r.EventType, Subject: r.Subject, Sequence: r.Sequence, StreamVersion: r.StreamVersion,
		Redelivery: r.BatchID != uuid.Nil, Status: Status(r.Status), Tries: r.Tries, WindowStart: deref(r.WindowStart),
		NextAttemptAt: r.NextAttemptAt.UTC(), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// Deliveries implements Store.
func (s *PostgresStore) Deliveries(ctx context.Context, tenant, endpoint uuid.UUID, before int64, limit int) ([]Delivery, error) {
	if _, err := s.Endpoint(ctx, tenant, endpoint); err != nil {
		return nil, err
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	const q = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries d
		WHERE d.endpoint_id = $1 AND d.tenant_id = $2 AND d.queue_id < $3 ORDER BY d.queue_id DESC LIMIT $4`
	rows, err := s.pool.Query(ctx, q, endpoint, tenant, before, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByName[deliveryRow])
	if err != nil {
		return nil, fmt.Errorf("webhooks: list deliveries: %w", err)
	}
	out := make([]Delivery, len(recs))
	ids := make([]uuid.UUID, len(recs))
	index := make(map[uuid.UUID]int, len(recs))
	for i, r := range recs {
		out[i], ids[i], index[r.ID] = r.delivery(), r.ID, i
	}
	if len(ids) == 0 {
		return out, nil
	}
	const qa = `SELECT delivery_id, attempted_at, status_code, duration_us, error FROM webhook_attempts
		WHERE delivery_id = ANY($1) ORDER BY id`
	arows, err := s.pool.Query(ctx, qa, ids)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list attempts: %w", err)
	}
	var (
		id     uuid.UUID
		at     time.Time
		code   *int
		micros int64
		msg    string
	)
	_, err = pgx.ForEachRow(arows, []any{&id, &at, &code, &micros, &msg}, func() error {
		a := Attempt{At: at.UTC(), Duration: time.Duration(micros) * time.Microsecond, Error: msg}
		if code != nil {
			a.StatusCode = *code
		}
		i := index[id]
		out[i].Attempts = append(out[i].Attempts, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: list attempts: %w", err)
	}
	return out, nil
}

const insertDelivery = `INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, subject,
		sequence, stream_version, batch_id, payload, status, next_attempt_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $11, $11)
	ON CONFLICT (endpoint_id, event_id, batch_id) DO NOTHING`

// Enqueue implements Store: the deliveries and subscriber.MarkDoneTx(group,
// e) commit in one transaction. When no endpoint matches it writes
// nothing and leaves the done-mark to the subscriber, so that events no
// webhook wants cost one read.
func (s *PostgresStore) Enqueue(ctx context.Context, group string, e stream.Event, now time.Time) (int, error) {
	const q = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE tenant_id = $1 AND enabled ORDER BY id`
	eps, err := queryEndpoints(ctx, s.pool, q, e.TenantID)
	if err != nil {
		return 0, fmt.Errorf("webhooks: enqueue event %s: %w", e.ID, err)
	}
	var targets []uuid.UUID
	for _, ep := range eps {
		if Match(ep.EventTypes, e.Type) {
			targets = append(targets, ep.ID)
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	payload, err := e.Encode()
	if err != nil {
		return 0, err
	}
	n := 0
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		n = 0
		batch := &pgx.Batch{}
		for _, id := range targets {
			batch.Queue(insertDelivery, uuid.New(), e.TenantID, id, e.ID, e.Type, e.StreamID, e.Sequence,
				e.StreamVersion, uuid.Nil, payload, now)
		}
		res := tx.SendBatch(ctx, batch)
		for range batch.Len() {
			tag, err := res.Exec()
			if err != nil {
				_ = res.Close()
				return err
			}
			n += int(tag.RowsAffected())
		}
		if err := res.Close(); err != nil {
			return err
		}
		if group == "" {
			return nil
		}
		return subscriber.MarkDoneTx(ctx, tx, group, e)
	})
	if err != nil {
		return 0, fmt.Errorf("webhooks: enqueue event %s: %w", e.ID, err)
	}
	return n, nil
}

// Redeliver implements Store.
func (s *PostgresStore) Redeliver(ctx context.Context, tenant, endpoint uuid.UUID, events []stream.Event, now time.Time) (int, error) {
	payloads := make([][]byte, len(events))
	for i, e := range events {
		if e.TenantID != tenant {
			return 0, fmt.Errorf("webhooks: redeliver event %s of another tenant", e.ID)
		}
		p, err := e.Encode()
		if err != nil {
			return 0, err
		}
		payloads[i] = p
	}
	if _, err := s.Endpoint(ctx, tenant, endpoint); err != nil {
		return 0, err
	}
	batchID := uuid.New()
	const chunk = 500
	for start := 0; start < len(events); start += chunk {
		b := &pgx.Batch{}
		for i := start; i < min(start+chunk, len(events)); i++ {
			e := events[i]
			b.Queue(insertDelivery, uuid.New(), tenant, endpoint, e.ID, e.Type, e.StreamID, e.Sequence,
				e.StreamVersion, batchID, payloads[i], now)
		}
		// Each chunk commits on its own: a redelivery of a long history
		// must not hold one transaction (and the event store's read
		// watermark) for its whole length. Chunks go in order, so each
		// stream's order holds.
		if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
			return start, fmt.Errorf("webhooks: redeliver: %w", err)
		}
	}
	return len(events), nil
}

// Claim implements Store.
func (s *PostgresStore) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Claim, error) {
	const q = `WITH due AS (
			SELECT d.id FROM webhook_deliveries d
			JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
			WHERE d.status IN ('pending', 'failed') AND d.next_attempt_at <= $1
				AND (d.lease_until IS NULL OR d.lease_until <= $1)
				AND NOT EXISTS (
					SELECT 1 FROM webhook_deliveries p
					WHERE p.endpoint_id = d.endpoint_id AND p.subject = d.subject
						AND p.status IN ('pending', 'failed') AND p.queue_id < d.queue_id)
			ORDER BY d.next_attempt_at, d.queue_id
			LIMIT $3
			FOR UPDATE OF d SKIP LOCKED)
		UPDATE webhook_deliveries d SET claim_token = $4, lease_until = $2
		FROM due, webhook_endpoints e
		WHERE d.id = due.id AND e.id = d.endpoint_id
		RETURNING ` + deliveryColumns + `, d.payload, e.url, e.secret`
	token := newToken()
	rows, err := s.pool.Query(ctx, q, now, now.Add(lease), limit, token)
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	type claimRow struct {
		deliveryRow
		Payload []byte `db:"payload"`
		URL     string `db:"url"`
		Secret  string `db:"secret"`
	}
	recs, err := pgx.CollectRows(rows, pgx.RowToStructByName[claimRow])
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	out := make([]Claim, len(recs))
	for i, r := range recs {
		d := r.delivery()
		d.Payload = r.Payload
		out[i] = Claim{Delivery: d, URL: r.URL, Secret: r.Secret, Token: token}
	}
	return out, nil
}

// Record implements Store. It locks the endpoint row before the delivery
// row, the order EnableEndpoint takes them in.
func (s *PostgresStore) Record(ctx context.Context, c Claim, o Outcome, policy DisablePolicy, now time.Time) (bool, error) {
	var disabled, lost bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		disabled, lost = false, false
		const lock = `SELECT ` + endpointColumns + ` FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE`
		ep, err := oneEndpoint(ctx, tx, lock, c.EndpointID)
		if err != nil {
			return err
		}
		var code *int
		if o.Attempt.StatusCode != 0 {
			code = &o.Attempt.StatusCode
		}
		const attempt = `INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, duration_us, error)
			VALUES ($1, $2, $3, $4, $5)`
		if _, err := tx.Exec(ctx, attempt, c.ID, o.Attempt.At, code, o.Attempt.Duration.Microseconds(), o.Attempt.Error); err != nil {
			return err
		}
		const update = `UPDATE webhook_deliveries SET status = $3, tries = $4, window_start = $5, next_attempt_at = $6,
				claim_token = NULL, lease_until = NULL, updated_at = $7
			WHERE id = $1 AND claim_token = $2`
		tag, err := tx.Exec(ctx, update, c.ID, c.Token, string(o.Status), o.Tries, nullable(o.WindowStart), o.NextAttemptAt, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			lost = true
			return nil
		}
		var changed bool
		if changed, disabled = policy.apply(&ep, o.Result, now); changed {
			return updateEndpoint(ctx, tx, ep)
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("webhooks: record attempt of %s: %w", c.ID, err)
	}
	if lost {
		return false, ErrClaimLost
	}
	return disabled, nil
}

// Prune implements Store.
func (s *PostgresStore) Prune(ctx context.Context, olderThan time.Time) (int64, error) {
	const q = `DELETE FROM webhook_deliveries WHERE status IN ('succeeded', 'dead') AND updated_at < $1`
	tag, err := s.pool.Exec(ctx, q, olderThan)
	if err != nil {
		return 0, fmt.Errorf("webhooks: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

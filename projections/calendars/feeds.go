package calendars

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/queries"
)

// MemoryFeeds keeps calendar feeds in memory (the embedded mode: they are
// lost with the process, like everything else there). It implements
// queries.CalendarFeedStore and is safe for concurrent use.
type MemoryFeeds struct {
	mu    sync.RWMutex
	feeds []queries.CalendarFeed
}

var _ queries.CalendarFeedStore = (*MemoryFeeds)(nil)

// NewMemoryFeeds returns an empty store.
func NewMemoryFeeds() *MemoryFeeds { return &MemoryFeeds{} }

// PutCalendarFeed stores f as the only feed of its calendar.
func (m *MemoryFeeds) PutCalendarFeed(_ context.Context, f queries.CalendarFeed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoke(f.TenantID, f.Kind, f.CalendarID)
	f.TokenHash = bytes.Clone(f.TokenHash)
	m.feeds = append(m.feeds, f)
	return nil
}

// RevokeCalendarFeed deletes the calendar's feed and reports whether there
// was one.
func (m *MemoryFeeds) RevokeCalendarFeed(_ context.Context, tenantID uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.revoke(tenantID, kind, id), nil
}

func (m *MemoryFeeds) revoke(tenantID uuid.UUID, kind queries.CalendarKind, id uuid.UUID) bool {
	n := len(m.feeds)
	m.feeds = slices.DeleteFunc(m.feeds, func(f queries.CalendarFeed) bool {
		return f.TenantID == tenantID && f.Kind == kind && f.CalendarID == id
	})
	return len(m.feeds) < n
}

// CalendarFeedByHash returns the feed whose token has this SHA-256, or
// domain.ErrNotFound.
func (m *MemoryFeeds) CalendarFeedByHash(_ context.Context, hash []byte) (queries.CalendarFeed, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, f := range m.feeds {
		if bytes.Equal(f.TokenHash, hash) {
			f.TokenHash = bytes.Clone(f.TokenHash)
			return f, nil
		}
	}
	return queries.CalendarFeed{}, fmt.Errorf("calendar feed: %w", domain.ErrNotFound)
}

// PostgresFeeds keeps calendar feeds in table calendar_feeds (migrated
// with Migrations). It implements queries.CalendarFeedStore and is safe
// for concurrent use.
type PostgresFeeds struct {
	pool *pgxpool.Pool
}

var _ queries.CalendarFeedStore = (*PostgresFeeds)(nil)

// NewPostgresFeeds returns the store on pool.
func NewPostgresFeeds(pool *pgxpool.Pool) *PostgresFeeds { return &PostgresFeeds{pool: pool} }

// PutCalendarFeed stores f as the only feed of its calendar: one upsert on
// the calendar's unique key, so two concurrent calls leave exactly one
// feed (the later one's).
func (p *PostgresFeeds) PutCalendarFeed(ctx context.Context, f queries.CalendarFeed) error {
	_, err := p.pool.Exec(ctx, `INSERT INTO calendar_feeds (token_hash, tenant_id, kind, calendar_id, detail, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, kind, calendar_id) DO UPDATE SET
			token_hash = excluded.token_hash, detail = excluded.detail,
			created_by = excluded.created_by, created_at = excluded.created_at`,
		f.TokenHash, f.TenantID, string(f.Kind), f.CalendarID, string(f.Detail), f.CreatedBy, f.CreatedAt)
	if err != nil {
		return fmt.Errorf("store calendar feed: %w", err)
	}
	return nil
}

// RevokeCalendarFeed deletes the calendar's feed and reports whether there
// was one.
func (p *PostgresFeeds) RevokeCalendarFeed(ctx context.Context, tenantID uuid.UUID, kind queries.CalendarKind, id uuid.UUID) (bool, error) {
	tag, err := p.pool.Exec(ctx, `DELETE FROM calendar_feeds WHERE tenant_id = $1 AND kind = $2 AND calendar_id = $3`,
		tenantID, string(kind), id)
	if err != nil {
		return false, fmt.Errorf("revoke calendar feed: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// CalendarFeedByHash returns the feed whose token has this SHA-256, or
// domain.ErrNotFound.
func (p *PostgresFeeds) CalendarFeedByHash(ctx context.Context, hash []byte) (queries.CalendarFeed, error) {
	var (
		f            queries.CalendarFeed
		kind, detail string
	)
	err := p.pool.QueryRow(ctx, `SELECT token_hash, tenant_id, kind, calendar_id, detail, created_by, created_at
		FROM calendar_feeds WHERE token_hash = $1`, hash).
		Scan(&f.TokenHash, &f.TenantID, &kind, &f.CalendarID, &detail, &f.CreatedBy, &f.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.CalendarFeed{}, fmt.Errorf("calendar feed: %w", domain.ErrNotFound)
	}
	if err != nil {
		return queries.CalendarFeed{}, fmt.Errorf("calendar feed: %w", err)
	}
	f.Kind, f.Detail, f.CreatedAt = queries.CalendarKind(kind), queries.CalendarDetail(detail), f.CreatedAt.UTC()
	return f, nil
}

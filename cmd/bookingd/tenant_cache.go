package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/eventstore/postgres/changefeed"
)

// tenantCache is the command side's cache of tenants and domains as
// bookingd runs it: on PostgreSQL its invalidations come from the other
// processes through package changefeed (LISTEN/NOTIFY); on the embedded
// store the process is alone and its own appends invalidate.
type tenantCache struct {
	feed *changefeed.Feed
	stop context.CancelFunc
	done chan struct{}
}

// cacheOption returns the commands option of the cache, preparing (not
// starting) the change feed on PostgreSQL.
func (m *Main) cacheOption() (commands.Option, error) {
	cfg := commands.CacheConfig{MaxAge: m.Config.TenantCacheMaxAge}
	if pg, ok := m.store.(*postgres.Store); ok {
		f, err := changefeed.New(changefeed.Config{ConnConfig: pg.Pool().Config().ConnConfig, Logger: m.Logger})
		if err != nil {
			return nil, fmt.Errorf("tenant cache: %w", err)
		}
		m.cache.feed = f
		cfg.Invalidations = f
	}
	return commands.WithCache(cfg), nil
}

// startCacheFeed runs the change feed into cmd's cache until Close.
func (m *Main) startCacheFeed(ctx context.Context, cmd *commands.Handlers) {
	if m.cache.feed == nil {
		return
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.cache.stop, m.cache.done = stop, make(chan struct{})
	go func() {
		defer close(m.cache.done)
		if err := m.cache.feed.Run(runCtx, cmd); err != nil {
			m.Logger.Error("tenant cache feed stopped", slog.Any("error", err))
		}
	}()
}

// stopCacheFeed stops the change feed and waits for it. Idempotent.
func (m *Main) stopCacheFeed() {
	if m.cache.stop != nil {
		m.cache.stop()
		<-m.cache.done
		m.cache.stop = nil
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/streamtest"
)

var (
	clock    = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	platform = domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}
	saoPaulo = time.FixedZone("-03", -3*3600)
)

// clinic creates the contract's example tenant, a resource, a client and
// a booking on 2026-12-01 09:00 in São Paulo, then cancels it.
type clinic struct {
	h       *commands.Handlers
	admin   commands.Meta
	booking uuid.UUID
}

func newClinic(t *testing.T, store eventstore.Store) clinic {
	t.Helper()
	ctx := context.Background()
	h := commands.New(store, commands.WithClock(func() time.Time { return clock }))
	day := []domain.TimeRange{{Start: "08:00", End: "18:00"}}
	hours := domain.WeeklyHours{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}
	tz := "America/Sao_Paulo"
	res, err := h.CreateTenant(ctx, commands.Meta{Actor: platform}, commands.CreateTenant{Input: domain.TenantInput{
		Name: "Clínica Sorriso", Domain: uuid.NewString()[:8] + ".example.com",
		Labels:   map[string]string{"resource": "Dentista", "booking": "Consulta", "client": "Paciente"},
		Settings: &domain.SettingsInput{Timezone: &tz, BusinessHours: &hours},
	}})
	require.NoError(t, err)
	admin := commands.Meta{TenantID: res.ID, Actor: domain.Actor{ID: uuid.NewString(), Role: domain.RoleAdmin}}
	r, err := h.CreateResource(ctx, admin, commands.CreateResource{Input: domain.ResourceInput{Name: "Sala 1", Kind: domain.KindSpace, Capacity: 1}})
	require.NoError(t, err)
	u, err := h.CreateUser(ctx, admin, commands.CreateUser{Input: domain.UserInput{Email: "ana@example.com", Name: "Ana", Role: domain.RoleClient}})
	require.NoError(t, err)
	b, err := h.CreateBooking(ctx, admin, commands.CreateBooking{Request: domain.BookingRequest{
		ResourceID: r.ID, ClientID: u.ID, Seats: 1, Title: "Limpeza",
		Start: time.Date(2026, 12, 1, 9, 0, 0, 0, saoPaulo), End: time.Date(2026, 12, 1, 10, 0, 0, 0, saoPaulo),
	}})
	require.NoError(t, err)
	_, err = h.ChangeBookingStatus(ctx, admin, commands.ChangeBookingStatus{BookingID: b.ID, To: domain.StatusCancelled, Reason: "ill"})
	require.NoError(t, err)
	return clinic{h: h, admin: admin, booking: b.ID}
}

func readLines(t *testing.T, b []byte) []Notification {
	t.Helper()
	var out []Notification
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var n Notification
		require.NoError(t, json.Unmarshal(sc.Bytes(), &n), sc.Text())
		out = append(out, n)
	}
	return out
}

func TestNotificationsSpeakTheTenantsLanguage(t *testing.T) {
	t.Parallel()
	store := memory.New()
	t.Cleanup(store.Close)
	c := newClinic(t, store)
	var out bytes.Buffer
	n := NewNotifier(store, &out)
	ctx := context.Background()
	all, err := store.ReadAll(ctx, eventstore.Cursor{}, eventstore.Filter{}, 1000)
	require.NoError(t, err)
	for _, e := range all {
		if _, published := (stream.Topics{}).ForStream(e.StreamID); published {
			require.NoError(t, n.Handle(ctx, stream.FromRecorded(e, "")))
		}
	}
	lines := readLines(t, out.Bytes())
	require.Len(t, lines, 2, "one message per booking event that calls for one")
	require.Equal(t, "Ana, your Consulta with Dentista Sala 1 on 2026-12-01 09:00 (America/Sao_Paulo) is confirmed", lines[0].Message)
	require.Equal(t, "Ana, your Consulta with Dentista Sala 1 on 2026-12-01 09:00 (America/Sao_Paulo) was cancelled", lines[1].Message)
	require.Equal(t, "ana@example.com", lines[0].To)
	require.Equal(t, c.booking, lines[0].BookingID)
	require.Equal(t, domain.EventBookingCreated, lines[0].Type)
	require.Equal(t, int64(2), lines[1].StreamVersion)
}

func TestConfigFromArgsReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := ConfigFromArgs(nil, func(k string) string {
		return map[string]string{"BOOKING_PARTITIONS": "x", "LOG_FORMAT": "xml"}[k]
	})
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "BOOKING_PARTITIONS", "log format"} {
		require.ErrorContains(t, err, want)
	}
	cfg, err := ConfigFromArgs([]string{"--partitions", "4"}, func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://x", "REDIS_URL": "redis://y"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, 4, cfg.Partitions)
	require.Equal(t, DefaultGroup, cfg.Group)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// TestRunEndToEnd drives the whole path: commands on PostgreSQL, the
// relay to Redis, the notifier's consumer group, JSON lines out.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	store, url := streamtest.MustPostgres(t)
	rc, prefix := streamtest.MustRedis(t)
	streamtest.Cleanup(t, rc, prefix)
	naming := stream.Topics{Prefix: prefix, Partitions: 2}
	pub, err := stream.NewRedisPublisher(rc, nil)
	require.NoError(t, err)
	r, err := relay.New(relay.Config{Store: store, Pool: store.Pool(), Publisher: pub, Topics: naming})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	var out syncBuffer
	wg.Go(func() {
		err := Run(ctx, Config{DatabaseURL: url, RedisURL: testenv.RedisURL(t), Partitions: 2, Group: prefix + DefaultGroup,
			Consumer: "n1", TopicPrefix: prefix}, &out, nil)
		require.NoError(t, err)
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})

	newClinic(t, store)
	streamtest.Eventually(t, 20*time.Second, func() bool { return len(readLines(t, out.Bytes())) == 2 }, "two notifications")
	lines := readLines(t, out.Bytes())
	require.True(t, strings.HasSuffix(lines[0].Message, "is confirmed"), lines[0].Message)
	require.True(t, strings.HasSuffix(lines[1].Message, "was cancelled"), lines[1].Message)
}

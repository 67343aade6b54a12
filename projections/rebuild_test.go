package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/commands"
	"github.com/bookingengine/booking/domain"
	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/memory"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/projections"
	"github.com/bookingengine/booking/projections/readside"
	"github.com/bookingengine/booking/queries"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/subscriber"
)

func ptr[T any](v T) *T { return &v }

// world is what a workload created: tenants, and per tenant its
// resources, categories and clients.
type world struct {
	tenants    []uuid.UUID
	resources  map[uuid.UUID][]uuid.UUID
	categories map[uuid.UUID][]uuid.UUID
	clients    map[uuid.UUID][]uuid.UUID
	base       time.Time // bookings start in the 3 days after base
	mu         sync.Mutex
	bookings   map[uuid.UUID][]uuid.UUID
}

var platform = domain.Actor{ID: "platform", Role: domain.RolePlatformAdmin}

func adminOf(tenant uuid.UUID) commands.Meta {
	return commands.Meta{TenantID: tenant, Actor: domain.Actor{ID: "admin-" + tenant.String()[:8], Role: domain.RoleAdmin}}
}

// setup creates two tenants with categories, resources (one with its own
// zone and hours), a professional linked to a resource and clients.
func setup(t *testing.T, cmd *commands.Handlers) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{resources: map[uuid.UUID][]uuid.UUID{}, categories: map[uuid.UUID][]uuid.UUID{},
		clients: map[uuid.UUID][]uuid.UUID{}, bookings: map[uuid.UUID][]uuid.UUID{},
		base: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 7)}
	allDay := []domain.TimeRange{{Start: "06:00", End: "22:00"}}
	week := domain.WeeklyHours{}
	for _, d := range domain.Weekdays {
		week[d] = allDay
	}
	for i, zone := range []string{"America/Sao_Paulo", "Europe/Lisbon"} {
		res, err := cmd.CreateTenant(ctx, commands.Meta{Actor: platform}, commands.CreateTenant{Input: domain.TenantInput{
			Name: "Tenant", Domain: uuid.NewString()[:8] + ".example.com",
			Settings: &domain.SettingsInput{Timezone: ptr(zone), BusinessHours: &week, SlotGranularityMinutes: ptr(15),
				BufferAfterMinutes: ptr(i * 15), RequiresApproval: ptr(i == 1), MaxAdvanceDays: ptr(0)},
		}})
		require.NoError(t, err)
		tn := res.ID
		w.tenants = append(w.tenants, tn)
		meta := adminOf(tn)
		cat, err := cmd.CreateResourceCategory(ctx, meta, commands.CreateResourceCategory{Input: domain.ResourceCategoryInput{Name: "Rooms"}})
		require.NoError(t, err)
		w.categories[tn] = append(w.categories[tn], cat.ID)
		for j := range 3 {
			in := domain.ResourceInput{CategoryID: ptr(cat.ID), Name: "Room", Kind: domain.KindPerson, Capacity: 1 + j%2}
			if j == 2 {
				in.Timezone = "Asia/Kolkata"
			}
			r, err := cmd.CreateResource(ctx, meta, commands.CreateResource{Input: in})
			require.NoError(t, err)
			w.resources[tn] = append(w.resources[tn], r.ID)
		}
		_, err = cmd.SetResourceAvailability(ctx, meta, commands.SetResourceAvailability{ResourceID: w.resources[tn][1],
			Availability: domain.Availability{Weekly: domain.WeeklyHours{"mon": allDay, "wed": allDay, "fri": allDay}}})
		require.NoError(t, err)
		_, err = cmd.CreateUser(ctx, meta, commands.CreateUser{Input: domain.UserInput{Email: "pro@example.com", Name: "Pro",
			Role: domain.RoleProfessional, ResourceID: ptr(w.resources[tn][0])}})
		require.NoError(t, err)
		for k := range 3 {
			u, err := cmd.CreateUser(ctx, meta, commands.CreateUser{Input: domain.UserInput{
				Email: "client" + string(rune('a'+k)) + "@example.com", Name: "Client", Role: domain.RoleClient}})
			require.NoError(t, err)
			w.clients[tn] = append(w.clients[tn], u.ID)
		}
	}
	return w
}

// workload runs ops random commands from each of workers goroutines:
// bookings (often colliding), confirmations, check-ins, cancellations,
// reschedules, and now and then a settings or resource change. Refusals
// are part of the game and ignored.
func workload(t *testing.T, cmd *commands.Handlers, w *world, workers, ops int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	base := w.base
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for range ops {
				tn := w.tenants[rng.IntN(len(w.tenants))]
				meta := adminOf(tn)
				w.mu.Lock()
				ids := append([]uuid.UUID(nil), w.bookings[tn]...)
				w.mu.Unlock()
				pick := func() uuid.UUID { return ids[rng.IntN(len(ids))] }
				switch op := rng.IntN(20); {
				case op < 10 || len(ids) == 0:
					start := base.Add(time.Duration(rng.IntN(3*24*4)) * 15 * time.Minute)
					res, err := cmd.CreateBooking(ctx, meta, commands.CreateBooking{Request: domain.BookingRequest{
						ResourceID: w.resources[tn][rng.IntN(3)], ClientID: w.clients[tn][rng.IntN(3)],
						Start: start, End: start.Add(time.Duration(1+rng.IntN(4)) * 15 * time.Minute), Seats: 1,
						Title: "t", Attributes: map[string]any{"n": float64(rng.IntN(5))},
					}})
					if err == nil {
						w.mu.Lock()
						w.bookings[tn] = append(w.bookings[tn], res.ID)
						w.mu.Unlock()
					}
				case op < 12:
					_, _ = cmd.ChangeBookingStatus(ctx, meta, commands.ChangeBookingStatus{BookingID: pick(), To: domain.StatusConfirmed})
				case op < 13:
					_, _ = cmd.ChangeBookingStatus(ctx, meta, commands.ChangeBookingStatus{BookingID: pick(), To: domain.StatusCheckedIn})
				case op < 15:
					_, _ = cmd.ChangeBookingStatus(ctx, meta, commands.ChangeBookingStatus{BookingID: pick(), To: domain.StatusCancelled, Reason: "r"})
				case op < 16:
					_, _ = cmd.ChangeBookingStatus(ctx, meta, commands.ChangeBookingStatus{BookingID: pick(), To: domain.StatusRejected})
				case op < 19:
					start := base.Add(time.Duration(rng.IntN(3*24*4)) * 15 * time.Minute)
					_, _ = cmd.RescheduleBooking(ctx, meta, commands.RescheduleBooking{BookingID: pick(), Start: start, End: start.Add(30 * time.Minute)})
				default:
					if rng.IntN(2) == 0 {
						_, _ = cmd.UpdateResource(ctx, meta, commands.UpdateResource{ResourceID: w.resources[tn][rng.IntN(3)],
							Patch: domain.ResourcePatch{Capacity: ptr(1 + rng.IntN(3))}})
					} else {
						_, _ = cmd.ChangeTenantSettings(ctx, meta, commands.ChangeTenantSettings{TenantID: tn,
							Settings: domain.SettingsInput{BufferBeforeMinutes: ptr(rng.IntN(3) * 5), MaxAdvanceDays: ptr(0),
								BusinessHours: ptr(domain.WeeklyHours{"mon": {{Start: "06:00", End: "22:00"}}, "tue": {{Start: "06:00", End: "22:00"}}})}})
					}
				}
			}
		})
	}
	wg.Wait()
}

// readModelState is everything the read models answer about the world,
// through the query interfaces, so the memory and the PostgreSQL
// implementations are compared the same way.
func readModelState(t *testing.T, rs *readside.ReadSide, w *world) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	cat := rs.Projections[0].(interface {
		queries.PolicyReadModel
		queries.UserLinks
	})
	bm := rs.Projections[1].(queries.ListBookingsReadModel)
	am := rs.Projections[2].(queries.OccupancyReadModel)
	for _, tn := range w.tenants {
		all, err := bm.ListBookings(ctx, queries.BookingFilter{TenantID: tn, Visible: queries.Visibility{All: true}})
		require.NoError(t, err)
		out["bookings "+tn.String()] = all
		occ, err := am.Occupied(ctx, tn, w.resources[tn], time.Time{}, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		out["occupied "+tn.String()] = occ
		for _, r := range w.resources[tn] {
			p, err := cat.ResourcePolicy(ctx, tn, r)
			require.NoError(t, err, "tenant %s", tn)
			out["policy "+r.String()] = []any{p.Capacity(), p.Active(), p.Location().String(), p.PolicyVersion(), p.Settings(),
				p.Windows(w.base, w.base.AddDate(0, 0, 9))}
		}
		ps, err := cat.CategoryPolicies(ctx, tn, w.categories[tn][0])
		require.NoError(t, err)
		out["category "+tn.String()] = len(ps)
	}
	for _, p := range rs.Projections {
		cp, err := p.Checkpoint(ctx)
		require.NoError(t, err)
		out["checkpoint "+p.Name()] = cp
	}
	return out
}

// dumpTables returns every row of the PostgreSQL read models as JSON, and
// the applied version of every stream of each projection's categories
// (AppliedVersions: what the bus recorded ahead of the checkpoint and what
// the checkpoint covers, which a rebuild records differently but must
// equal).
func dumpTables(t *testing.T, pool *pgxpool.Pool, projs []projections.Projection) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	rows, err := pool.Query(context.Background(), `SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'read\_%' ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out["indexes"] = append(out["indexes"], s)
	}
	require.NoError(t, rows.Err())
	for _, table := range []string{"read_bookings", "read_availability", "read_catalog_tenants", "read_catalog_categories",
		"read_catalog_resources", "read_catalog_users"} {
		rows, err := pool.Query(context.Background(), `SELECT row_to_json(t)::text FROM `+table+` t ORDER BY 1`)
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out[table] = append(out[table], s)
		}
		require.NoError(t, rows.Err())
		sort.Strings(out[table])
	}
	for _, p := range projs {
		var ids []string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(DISTINCT stream_id), '{}') FROM booking_events WHERE category = ANY($1)`,
			p.Categories()).Scan(&ids))
		applied, err := p.AppliedVersions(context.Background(), ids)
		require.NoError(t, err)
		key := "applied " + p.Name()
		for _, id := range ids {
			out[key] = append(out[key], fmt.Sprintf("%s %d", id, applied[id]))
		}
		sort.Strings(out[key])
	}
	return out
}

// TestRebuildEqualsLive: after a random concurrent workload through the
// commands, with the projectors running live (tailing the store, or fed
// by the embedded bus through the relay), rebuilding every projection
// from the store yields the very same read models; and every booking the
// read model shows equals the command side's view of it.
func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	openMemory := func(*testing.T) eventstore.Store { return memory.New() }
	openPG := func(t *testing.T) eventstore.Store {
		s, err := postgres.Open(context.Background(), testenv.NewDatabase(t), postgres.Config{})
		require.NoError(t, err)
		return s
	}
	for _, tc := range []struct {
		name string
		open func(t *testing.T) eventstore.Store
		bus  bool
	}{
		{"Memory", openMemory, false},
		{"Postgres", openPG, false},
		{"MemoryBus", openMemory, true},
		{"PostgresBus", func(t *testing.T) eventstore.Store { return openPostgres(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := tc.open(t)
			t.Cleanup(store.Close)
			cmd := commands.New(store)
			// Small batches, so that batches split streams and the live
			// projectors interleave with the commands.
			cfg := readside.Config{BatchSize: 7, PollInterval: time.Millisecond}
			if tc.bus {
				cfg.Feed, cfg.Grace = readside.FeedBus, time.Hour
			}
			rs, err := readside.Open(ctx, store, cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = rs.Close() })
			stopRelay := func() {}
			if tc.bus {
				bus := stream.NewGoChannel(nil)
				t.Cleanup(func() { _ = bus.Close() })
				require.NoError(t, rs.StartBus(ctx, subscriber.Config{Subscriber: bus, DeadLetter: bus}))
				stopRelay = startRelay(t, store, bus, stream.Topics{})
			}

			w := setup(t, cmd)
			workload(t, cmd, w, 4, 60, 42)
			if tc.bus {
				waitApplied(t, rs, store, 60*time.Second)
				applied, _ := busApplied(rs)
				require.Positive(t, applied)
				require.Zero(t, healed(rs), "the bus applied everything")
			} else {
				_, err = rs.CatchUp(ctx)
				require.NoError(t, err)
			}
			live := readModelState(t, rs, w)
			var liveTables map[string][]string
			pg, isPG := store.(*postgres.Store)
			if isPG {
				liveTables = dumpTables(t, pg.Pool(), rs.Projections)
				require.NotEmpty(t, liveTables["read_bookings"])
			}

			// The read model shows each booking as the command side does.
			get := queries.NewGetBookingHandler(rs.Projections[1].(queries.GetBookingReadModel), nil, nil)
			n := 0
			for _, tn := range w.tenants {
				for _, id := range w.bookings[tn] {
					b, err := cmd.Booking(ctx, adminOf(tn), id)
					require.NoError(t, err)
					want, err := json.Marshal(b.View())
					require.NoError(t, err)
					got, err := get.Handle(ctx, queries.GetBooking{Viewer: queries.Viewer{TenantID: tn, UserID: "admin", Role: domain.RoleAdmin}, BookingID: id})
					require.NoError(t, err)
					gotJSON, err := json.Marshal(got)
					require.NoError(t, err)
					require.JSONEq(t, string(want), string(gotJSON))
					n++
				}
			}
			require.Greater(t, n, 20, "the workload booked something")

			stopRelay()
			require.NoError(t, rs.Close())
			stats, err := rs.Rebuild(ctx, 50)
			require.NoError(t, err)
			require.Len(t, stats, len(rs.Projections))
			require.Equal(t, live, readModelState(t, rs, w))
			if isPG {
				require.Equal(t, liveTables, dumpTables(t, pg.Pool(), rs.Projections))
			}
		})
	}
}

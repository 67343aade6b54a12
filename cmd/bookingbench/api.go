package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	bhttp "github.com/bookingengine/booking/http"
)

// api calls the bookingd under test.
type api struct {
	base   string
	hc     *http.Client
	minter *bhttp.Minter
	// platform is a platform admin's token, for creating tenants.
	platform string
	// seeded is the highest position the seeding's commands returned.
	seeded atomic.Int64
}

func newAPI(cfg Config) (*api, error) {
	minter, err := bhttp.NewMinter(cfg.JWTSecret)
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 1024
	a := &api{base: cfg.Target, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}, minter: minter}
	a.platform, err = a.token("bookingbench-platform", uuid.Nil, bhttp.RolePlatformAdmin)
	return a, err
}

// token mints a token with every scope, valid long enough for any run.
func (a *api) token(subject string, tenant uuid.UUID, role string) (string, error) {
	return a.minter.Mint(time.Now(), bhttp.TokenRequest{
		Subject: subject, TenantID: tenant, Role: role, Scopes: bhttp.AllScopes(), TTL: 24 * time.Hour,
	})
}

// answer is a whole response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// problemCode returns the code of a problem+json answer, "" otherwise.
func (r answer) problemCode() string {
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(r.body, &p) != nil {
		return ""
	}
	return p.Code
}

// position returns the X-Position of a command's answer, 0 without one.
func (r answer) position() int64 {
	n, _ := strconv.ParseInt(r.header.Get("X-Position"), 10, 64)
	return n
}

// call sends one request as token in tenant (uuid.Nil: none) with a JSON
// body (nil: none) and extra headers.
func (a *api) call(ctx context.Context, method, path, token string, tenant uuid.UUID, body any, header map[string]string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if tenant != uuid.Nil {
		req.Header.Set(bhttp.HeaderTenantID, tenant.String())
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}, nil
}

// mustCreate posts a command that must answer 201 and returns the id it
// created; it remembers the highest X-Position it saw.
func (a *api) mustCreate(ctx context.Context, path, token string, tenant uuid.UUID, body any) (uuid.UUID, error) {
	res, err := a.call(ctx, http.MethodPost, path, token, tenant, body, map[string]string{bhttp.HeaderIdempotencyKey: uuid.NewString()})
	if err != nil {
		return uuid.Nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if res.status != http.StatusCreated {
		return uuid.Nil, fmt.Errorf("POST %s: %d %s", path, res.status, bytes.TrimSpace(res.body))
	}
	var out struct {
		ID uuid.UUID `json:"id"`
	}
	if err := json.Unmarshal(res.body, &out); err != nil || out.ID == uuid.Nil {
		return uuid.Nil, fmt.Errorf("POST %s: no id in %s", path, res.body)
	}
	for p := res.position(); ; {
		seen := a.seeded.Load()
		if p <= seen || a.seeded.CompareAndSwap(seen, p) {
			break
		}
	}
	return out.ID, nil
}

// tenant is a seeded tenant.
type tenant struct {
	ID        uuid.UUID
	Zone      *time.Location
	Admin     string // token of the tenant's admin
	Resources []resource
	Clients   []uuid.UUID
}

type resource struct {
	ID       uuid.UUID
	Capacity int
}

// world is what the seeding created.
type world struct {
	Tenants []*tenant
	// Calendars reports whether GET /calendars/resources/{id} answered
	// 200 (the API may not have calendars); CalendarProbe says what it
	// answered.
	Calendars     bool
	CalendarProbe string
}

// Business hours of the seeded tenants, in their zones: every day,
// 07:00–21:00, a 15-minute grid, bookings of 15 minutes to 4 hours, 5
// minutes of buffer after each.
const (
	openMinute  = 7 * 60
	closeMinute = 21 * 60
	gridMinutes = 15
)

// benchZones are the seeded tenants' zones, in turn.
var benchZones = []string{"America/Sao_Paulo", "Europe/Lisbon", "America/New_York", "Asia/Kolkata"}

func tenantSettings(zone string) map[string]any {
	day := []map[string]string{{"start": "07:00", "end": "21:00"}}
	hours := map[string]any{}
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		hours[d] = day
	}
	return map[string]any{
		"timezone": zone, "business_hours": hours,
		"slot_granularity_minutes": gridMinutes, "min_duration_minutes": 15, "max_duration_minutes": 240,
		"buffer_after_minutes": 5, "min_notice_minutes": 0, "max_advance_days": 0,
	}
}

// seed creates the tenants, their resources and clients, eight requests
// at a time.
func seed(ctx context.Context, a *api, cfg Config) (*world, error) {
	w := &world{}
	run := uuid.NewString()[:8]
	for i := range cfg.Tenants {
		zone := benchZones[i%len(benchZones)]
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, err
		}
		id, err := a.mustCreate(ctx, "/tenants", a.platform, uuid.Nil, map[string]any{
			"name": fmt.Sprintf("Bench %s %d", run, i), "domain": fmt.Sprintf("bench-%s-%d.example.com", run, i),
			"settings": tenantSettings(zone),
		})
		if err != nil {
			return nil, err
		}
		tok, err := a.token(uuid.NewString(), id, bhttp.RoleAdmin)
		if err != nil {
			return nil, err
		}
		t := &tenant{ID: id, Zone: loc, Admin: tok, Resources: make([]resource, cfg.Resources), Clients: make([]uuid.UUID, cfg.Users)}
		w.Tenants = append(w.Tenants, t)
		var jobs []func() error
		for j := range cfg.Resources {
			capacity := 1
			if j%5 == 4 {
				capacity = 3
			}
			jobs = append(jobs, func() error {
				rid, err := a.mustCreate(ctx, "/resources", tok, id, map[string]any{
					"name": fmt.Sprintf("Room %d", j), "kind": "space", "capacity": capacity,
				})
				t.Resources[j] = resource{ID: rid, Capacity: capacity}
				return err
			})
		}
		for j := range cfg.Users {
			jobs = append(jobs, func() error {
				uid, err := a.mustCreate(ctx, "/users", tok, id, map[string]any{
					"email": fmt.Sprintf("client-%s-%d-%d@example.com", run, i, j), "name": fmt.Sprintf("Client %d", j), "role": "client",
				})
				t.Clients[j] = uid
				return err
			})
		}
		if err := parallel(ctx, 8, jobs); err != nil {
			return nil, err
		}
	}
	// The queries read models that the projectors fill behind the
	// commands: wait until they know every seeded resource, as a client
	// that reads its writes would (X-Min-Position).
	for _, t := range w.Tenants {
		if err := a.awaitReadSide(ctx, t, t.Resources[0].ID, a.seeded.Load()); err != nil {
			return nil, err
		}
	}
	// Resource calendars may not exist in this build of the API.
	t := w.Tenants[0]
	from := time.Now().UTC().Truncate(24 * time.Hour)
	res, err := a.call(ctx, http.MethodGet, fmt.Sprintf("/calendars/resources/%s?from=%s&to=%s", t.Resources[0].ID,
		from.Format(time.RFC3339), from.Add(24*time.Hour).Format(time.RFC3339)), t.Admin, t.ID, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("probe calendars: %w", err)
	}
	w.Calendars = res.status == http.StatusOK
	w.CalendarProbe = fmt.Sprintf("GET /calendars/resources/{id} answered %d", res.status)
	return w, nil
}

// awaitReadSide waits (up to a minute) until a free-slot query of
// resource has applied position.
func (a *api) awaitReadSide(ctx context.Context, t *tenant, resource uuid.UUID, position int64) error {
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	path := fmt.Sprintf("/availability?resource_id=%s&from=%s&to=%s&duration=60", resource,
		from.Format(time.RFC3339), from.AddDate(0, 0, 1).Format(time.RFC3339))
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := a.call(ctx, http.MethodGet, path, t.Admin, t.ID, nil, map[string]string{"X-Min-Position": strconv.FormatInt(position, 10)})
		switch {
		case err != nil:
			return fmt.Errorf("wait for the read side: %w", err)
		case res.status == http.StatusOK:
			return nil
		case res.status != http.StatusGatewayTimeout || time.Now().After(deadline):
			return fmt.Errorf("wait for the read side: GET /availability: %d %s", res.status, bytes.TrimSpace(res.body))
		}
	}
}

// parallel runs jobs, n at a time, and returns the first error.
func parallel(ctx context.Context, n int, jobs []func() error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for range n {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(jobs) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				errs[i] = jobs[i]()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

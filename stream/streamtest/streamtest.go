// Package streamtest holds what the tests of the stream packages share:
// a migrated PostgreSQL store, a Redis client with a private key prefix,
// a TCP proxy that can cut Redis off, readers of published topics and a
// concurrent writer of booking events.
package streamtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bookingengine/booking/eventstore"
	"github.com/bookingengine/booking/eventstore/postgres"
	"github.com/bookingengine/booking/internal/testenv"
	"github.com/bookingengine/booking/stream"
	"github.com/bookingengine/booking/stream/relay"
	"github.com/bookingengine/booking/stream/subscriber"
)

// MustPostgres opens a store on a database of its own with the relay's
// and the subscriber's migrations, closed when the test ends.
func MustPostgres(tb testing.TB) (*postgres.Store, string) {
	tb.Helper()
	url := testenv.NewDatabase(tb)
	s, err := postgres.Open(context.Background(), url, postgres.Config{
		MaxConns:   16,
		Migrations: []postgres.MigrationSet{relay.Migrations(), subscriber.Migrations()},
	})
	require.NoError(tb, err)
	tb.Cleanup(s.Close)
	return s, url
}

// MustRedis returns a client of the test Redis server and a key prefix of
// this test's own; the keys under the prefix are deleted when the test
// ends.
func MustRedis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	return MustRedisAt(tb, testenv.RedisURL(tb)), testenv.KeyPrefix(tb)
}

// MustRedisAt returns a client for url (e.g. through a Proxy), closed when
// the test ends.
func MustRedisAt(tb testing.TB, url string) redis.UniversalClient {
	tb.Helper()
	c, err := stream.NewRedisClient(url)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// ProxiedRedis is the test Redis server reached two ways: Direct, and
// ViaProxy through Proxy, which the test cuts off and restores. Prefix is
// the test's own key prefix, whose keys are deleted when the test ends.
type ProxiedRedis struct {
	Direct, ViaProxy redis.UniversalClient
	Proxy            *Proxy
	Prefix           string
}

// MustProxiedRedis returns the test Redis server behind a proxy of this
// test's own.
func MustProxiedRedis(tb testing.TB) ProxiedRedis {
	tb.Helper()
	direct, prefix := MustRedis(tb)
	Cleanup(tb, direct, prefix)
	target, err := redis.ParseURL(testenv.RedisURL(tb))
	require.NoError(tb, err)
	proxy := StartProxy(tb, target.Addr)
	return ProxiedRedis{Direct: direct, ViaProxy: MustRedisAt(tb, proxy.RedisURL(testenv.RedisURL(tb))), Proxy: proxy, Prefix: prefix}
}

// Cleanup deletes every key under prefix when the test ends.
func Cleanup(tb testing.TB, c redis.UniversalClient, prefix string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			c.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	})
}

// Proxy forwards TCP connections to a target until Down cuts it off
// (closing the listener and every connection); Up listens again on the
// same address. Safe for concurrent use.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

// StartProxy starts a proxy to target (host:port), stopped when the test
// ends.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &Proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	tb.Cleanup(p.Down)
	return p
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.addr }

// RedisURL returns the URL of a Redis server at target reached through
// the proxy: rawURL with its host replaced.
func (p *Proxy) RedisURL(rawURL string) string {
	rest := strings.TrimPrefix(rawURL, "redis://")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return "redis://" + p.addr + rest[i:]
	}
	return "redis://" + p.addr
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln {
				p.mu.Unlock()
				_ = c.Close()
				_ = up.Close()
				return
			}
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
}

// Down stops accepting and closes every open connection. Idempotent.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Up listens again on the proxy's address.
func (p *Proxy) Up(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(tb, err)
	p.serve(ln)
}

// Delivered is one entry of a topic, decoded.
type Delivered struct {
	EntryID string            // Redis entry id
	Topic   string            // the topic it was read from
	Event   stream.Event      // the decoded envelope
	Meta    map[string]string // the Watermill metadata
}

// ReadTopics returns every entry of the topics (XRANGE, no consumer
// group), each topic in entry order, the topics one after another.
func ReadTopics(tb testing.TB, c redis.UniversalClient, topics ...string) []Delivered {
	tb.Helper()
	ctx := context.Background()
	var out []Delivered
	for _, topic := range topics {
		start := "-"
		for {
			xs, err := c.XRangeN(ctx, topic, start, "+", 5000).Result()
			require.NoError(tb, err)
			for _, x := range xs {
				msg := stream.MessageFromRedisEntry(x.Values)
				require.Empty(tb, msg.Metadata.Get(stream.UnmarshalErrorKey), "entry %s of %s", x.ID, topic)
				e, err := stream.Decode(msg.Payload)
				require.NoError(tb, err)
				require.Equal(tb, e.ID.String(), msg.UUID, "message UUID is the event id")
				out = append(out, Delivered{EntryID: x.ID, Topic: topic, Event: e, Meta: msg.Metadata})
			}
			if len(xs) < 5000 {
				break
			}
			start = "(" + xs[len(xs)-1].ID
		}
	}
	return out
}

// Writer appends well-formed booking events concurrently: each event goes
// to one of its streams, with expectation Any.
type Writer struct {
	Store   eventstore.Store // where events are appended
	Tenant  uuid.UUID        // the tenant of every stream
	Streams []string         // the booking stream ids written to

	appended atomic.Int64
	failed   atomic.Int64
}

// NewWriter returns a writer over n new booking streams of one tenant.
func NewWriter(store eventstore.Store, n int) *Writer {
	w := &Writer{Store: store, Tenant: uuid.New()}
	for range n {
		w.Streams = append(w.Streams, "booking-"+uuid.NewString())
	}
	return w
}

// Append appends one event to stream i % len(Streams) and reports the
// append's error. Safe for concurrent use.
func (w *Writer) Append(ctx context.Context, i int) error {
	sid := w.Streams[i%len(w.Streams)]
	id := uuid.New()
	data := json.RawMessage(fmt.Sprintf(`{"booking_id":%q,"n":%d}`, strings.TrimPrefix(sid, "booking-"), i))
	_, err := w.Store.Append(ctx, eventstore.StreamAppend{
		StreamID: sid, TenantID: w.Tenant, Expected: eventstore.Any,
		Events: []eventstore.EventData{{ID: id, Type: "booking.status_changed", Version: 1, Data: data,
			Metadata: eventstore.Metadata{CorrelationID: "c-" + id.String()}}},
	})
	if err != nil {
		w.failed.Add(1)
		return err
	}
	w.appended.Add(1)
	return nil
}

// Run appends n events from workers goroutines and returns the first
// error.
func (w *Writer) Run(ctx context.Context, n, workers int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := w.Append(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Appended and Failed count the appends that succeeded and failed.
func (w *Writer) Appended() int64 { return w.appended.Load() }

// Failed counts failed appends.
func (w *Writer) Failed() int64 { return w.failed.Load() }

// Committed loads every event of the writer's streams from the store,
// stream by stream in version order.
func (w *Writer) Committed(tb testing.TB) map[string][]eventstore.RecordedEvent {
	tb.Helper()
	out := map[string][]eventstore.RecordedEvent{}
	for _, sid := range w.Streams {
		evs, err := w.Store.Load(context.Background(), sid, 0)
		require.NoError(tb, err)
		out[sid] = evs
	}
	return out
}

// RequireInOrder checks that the deliveries contain every committed event
// at least once, nothing else of these streams, and that within each
// stream the first delivery of each version comes in version order. It
// returns the number of duplicate deliveries.
func RequireInOrder(tb testing.TB, committed map[string][]eventstore.RecordedEvent, got []Delivered) int {
	tb.Helper()
	want := map[uuid.UUID]eventstore.RecordedEvent{}
	for _, evs := range committed {
		for _, e := range evs {
			want[e.ID] = e
		}
	}
	seen := map[uuid.UUID]bool{}
	last := map[string]int64{}
	dups := 0
	for _, d := range got {
		e, ok := want[d.Event.ID]
		if !ok {
			if _, mine := committed[d.Event.StreamID]; mine {
				tb.Fatalf("delivered event %s of stream %s was never committed", d.Event.ID, d.Event.StreamID)
			}
			continue
		}
		if seen[e.ID] {
			dups++
			continue
		}
		seen[e.ID] = true
		require.Equal(tb, e.StreamVersion, d.Event.StreamVersion)
		require.Equal(tb, last[e.StreamID]+1, e.StreamVersion,
			"stream %s: version %d delivered after %d", e.StreamID, e.StreamVersion, last[e.StreamID])
		last[e.StreamID] = e.StreamVersion
	}
	for id, e := range want {
		if !seen[id] {
			tb.Fatalf("committed event %s (stream %s v%d, position %d) was never delivered", id, e.StreamID, e.StreamVersion, e.Position)
		}
	}
	return dups
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitDistinct waits until the topics hold at least n distinct event ids
// (duplicates do not count) and returns their entries.
func WaitDistinct(tb testing.TB, c redis.UniversalClient, timeout time.Duration, n int, topics ...string) []Delivered {
	tb.Helper()
	var got []Delivered
	distinct := 0
	Eventually(tb, timeout, func() bool {
		if CountEntries(tb, c, topics...) < int64(n) {
			return false
		}
		got = ReadTopics(tb, c, topics...)
		ids := make(map[uuid.UUID]bool, len(got))
		for _, d := range got {
			ids[d.Event.ID] = true
		}
		distinct = len(ids)
		return distinct >= n
	}, "%d distinct events published (have %d)", n, distinct)
	return got
}

// CountEntries returns the total number of entries of the topics.
func CountEntries(tb testing.TB, c redis.UniversalClient, topics ...string) int64 {
	tb.Helper()
	var n int64
	for _, t := range topics {
		l, err := c.XLen(context.Background(), t).Result()
		require.NoError(tb, err)
		n += l
	}
	return n
}

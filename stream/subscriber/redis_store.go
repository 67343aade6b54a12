package subscriber

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore is the DedupeStore of Redis mode. Per consumer group it
// keeps
//
//	<prefix>dedupe:{<group>}:id:<event id>   processed event ids, expiring after IDTTL
//	<prefix>dedupe:{<group>}:v:<stream id>   last processed version, no expiry unless VersionTTL
//	<prefix>dedupe:{<group>}:l:<stream id>   the lease, expiring after the lease TTL
//
// The {group} hash tag keeps a group's keys in one cluster slot, so each
// step is one Lua script: Begin (lease and progress) and MarkDone (id,
// version and release) each cost one round trip and are atomic. Memory is
// about 100 bytes per event id within IDTTL and per stream. Safe for
// concurrent use.
type RedisStore struct {
	client     redis.UniversalClient
	prefix     string
	idTTL      time.Duration
	versionTTL time.Duration
}

// RedisStoreOptions tunes NewRedisStore.
type RedisStoreOptions struct {
	// Prefix is prepended to every key.
	Prefix string
	// IDTTL is how long a processed event id is remembered
	// (DefaultDedupeTTL when zero).
	IDTTL time.Duration
	// VersionTTL, when positive, lets a stream's version expire that long
	// after its last processed event. The stream is then unknown again,
	// and its next event waits GapWait unless it is version 1, so keep it
	// far above the time between a stream's events. Zero keeps versions.
	VersionTTL time.Duration
}

// NewRedisStore returns a RedisStore on client, which it does not own.
func NewRedisStore(client redis.UniversalClient, opts RedisStoreOptions) *RedisStore {
	if opts.IDTTL <= 0 {
		opts.IDTTL = DefaultDedupeTTL
	}
	return &RedisStore{client: client, prefix: opts.Prefix, idTTL: opts.IDTTL, versionTTL: max(opts.VersionTTL, 0)}
}

func (s *RedisStore) keys(group string, e Event) []string {
	base := s.prefix + "dedupe:{" + group + "}:"
	return []string{base + "id:" + e.ID.String(), base + "v:" + e.StreamID, base + "l:" + e.StreamID}
}

var beginScript = redis.NewScript(`
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, 0, -1}
end
local v = redis.call('GET', KEYS[2])
if not v then v = -1 end
return {1, redis.call('EXISTS', KEYS[1]), tonumber(v)}`)

// Begin implements DedupeStore with one Lua script. It returns
// ErrLeaseHeld, or the client's error (wrapped) when Redis does not
// answer.
func (s *RedisStore) Begin(ctx context.Context, group string, e Event, leaseTTL time.Duration) (Progress, error) {
	token := newToken()
	res, err := beginScript.Run(ctx, s.client, s.keys(group, e), token, max(leaseTTL.Milliseconds(), 1)).Int64Slice()
	if err != nil {
		return Progress{}, fmt.Errorf("dedupe begin %s: %w", e.ID, err)
	}
	if len(res) != 3 {
		return Progress{}, fmt.Errorf("dedupe begin %s: unexpected reply %v", e.ID, res)
	}
	if res[0] == 0 {
		return Progress{}, ErrLeaseHeld
	}
	p := Progress{Seen: res[1] == 1, Token: token}
	if res[2] >= 0 {
		p.Known, p.LastVersion = true, res[2]
	}
	return p, nil
}

var doneScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local vttl = tonumber(ARGV[3])
if tonumber(ARGV[1]) > cur then
  if vttl > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', vttl) else redis.call('SET', KEYS[2], ARGV[1]) end
elseif vttl > 0 then
  redis.call('PEXPIRE', KEYS[2], vttl)
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return 1`)

// MarkDone implements DedupeStore with one Lua script: atomic and
// idempotent. It returns the client's error (wrapped) when Redis does not
// answer; then nothing or everything was written.
func (s *RedisStore) MarkDone(ctx context.Context, group string, e Event, token string) error {
	err := doneScript.Run(ctx, s.client, s.keys(group, e), e.StreamVersion, s.idTTL.Milliseconds(),
		s.versionTTL.Milliseconds(), token).Err()
	if err != nil {
		return fmt.Errorf("dedupe mark done %s: %w", e.ID, err)
	}
	return nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1`)

// Release implements DedupeStore with one Lua script. Idempotent.
func (s *RedisStore) Release(ctx context.Context, group string, e Event, token string) error {
	if err := releaseScript.Run(ctx, s.client, s.keys(group, e), token).Err(); err != nil {
		return fmt.Errorf("dedupe release %s: %w", e.StreamID, err)
	}
	return nil
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

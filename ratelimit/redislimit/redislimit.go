package redislimit

import (
	"context"
	"fmt"
	"math"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/ratelimit"
)

// DefaultPrefix is the key prefix used when [Config.Prefix] is empty.
const DefaultPrefix = "saaskit:ratelimit:"

// Config configures [New]. The zero value is ready to use.
type Config struct {
	// Prefix is prepended to every key, so that several applications or
	// environments can share one Redis. Empty means [DefaultPrefix].
	// (redis_rate adds its own "rate:" in front of it.)
	Prefix string
}

// Limiter is a [ratelimit.Limiter] whose state lives in Redis, shared by
// every replica that uses the same Redis and prefix. Each Allow is one
// round trip running the GCRA script of redis_rate atomically, timed by the
// Redis server's clock, so replicas need no synchronised clocks.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter that keeps its state in client (a *redis.Client,
// *redis.ClusterClient or *redis.Ring). The client's timeouts bound how
// long Allow waits for Redis.
func New(client redis.UniversalClient, c Config) *Limiter {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return &Limiter{rl: redis_rate.NewLimiter(client), prefix: c.Prefix}
}

// Allow implements [ratelimit.Limiter]. It returns an error wrapping
// [ratelimit.ErrInvalidLimit] for a limit or cost it cannot apply, and one
// wrapping the Redis error when Redis cannot be reached or fails.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit, cost int) (ratelimit.Result, error) {
	if err := limit.Validate(cost); err != nil {
		return ratelimit.Result{}, err
	}
	res, err := l.rl.AllowN(ctx, l.prefix+key, toRedis(limit), cost)
	if err != nil {
		return ratelimit.Result{}, fmt.Errorf("redislimit: allow %q: %w", key, err)
	}
	out := ratelimit.Result{
		Allowed:    res.Allowed > 0 || cost == 0,
		Limit:      limit,
		Remaining:  max(res.Remaining, 0),
		ResetAfter: max(res.ResetAfter, 0),
	}
	if !out.Allowed {
		out.RetryAfter = max(res.RetryAfter, 0)
		// redis_rate reports 0 remaining on a refusal; a request cheaper
		// than this one may still fit. ResetAfter is the time to refill
		// what is spent, so what is left is the burst minus that.
		left := float64(limit.BurstOrCount()) - out.ResetAfter.Seconds()*limit.Rate()
		out.Remaining = max(int(math.Floor(left+1e-6)), 0)
	}
	return out, nil
}

// Reset forgets the state of key, giving it a full bucket.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.rl.Reset(ctx, l.prefix+key); err != nil {
		return fmt.Errorf("redislimit: reset %q: %w", key, err)
	}
	return nil
}

func toRedis(l ratelimit.Limit) redis_rate.Limit {
	return redis_rate.Limit{Rate: l.Count, Period: l.Period, Burst: l.BurstOrCount()}
}

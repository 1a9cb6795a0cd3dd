package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Errors returned by this package and by [Limiter] implementations. They are
// wrapped with detail; test with errors.Is.
var (
	// ErrLimited means a request was refused because its key is over its
	// limit. The error returned by [Check] is an [*Error] that matches it.
	ErrLimited = errors.New("ratelimit: rate limit exceeded")
	// ErrInvalidLimit means a limit or a cost cannot be applied: a Count or
	// Period that is not positive, a negative cost, or a cost larger than
	// the burst (such a request could never be allowed).
	ErrInvalidLimit = errors.New("ratelimit: invalid limit")
)

// Limit is a quota: Count events per Period, with bursts of up to Burst
// events. It is a token bucket (or, in Redis, the equivalent GCRA): the
// bucket holds Burst tokens and refills at Count/Period tokens per second.
//
// The zero Limit means "no limit": [Middleware] lets such requests through
// without asking the limiter, and limiters refuse it with [ErrInvalidLimit].
type Limit struct {
	// Count is the number of events allowed per Period.
	Count int
	// Period is the window that Count applies to.
	Period time.Duration
	// Burst is the largest number of events allowed at once. Zero or less
	// means Count.
	Burst int
}

// PerSecond returns a limit of n events per second with bursts of up to
// burst events (n when burst is zero or less).
func PerSecond(n, burst int) Limit { return Every(n, time.Second, burst) }

// PerMinute returns a limit of n events per minute with bursts of up to
// burst events (n when burst is zero or less).
func PerMinute(n, burst int) Limit { return Every(n, time.Minute, burst) }

// PerHour returns a limit of n events per hour with bursts of up to burst
// events (n when burst is zero or less).
func PerHour(n, burst int) Limit { return Every(n, time.Hour, burst) }

// Every returns a limit of n events per period with bursts of up to burst
// events (n when burst is zero or less).
func Every(n int, period time.Duration, burst int) Limit {
	if burst <= 0 {
		burst = n
	}
	return Limit{Count: n, Period: period, Burst: burst}
}

// IsZero reports whether l is the zero Limit, which means "no limit".
func (l Limit) IsZero() bool { return l == Limit{} }

// Rate returns the refill rate in events per second.
func (l Limit) Rate() float64 {
	if l.Count <= 0 || l.Period <= 0 {
		return 0
	}
	return float64(l.Count) / l.Period.Seconds()
}

// BurstOrCount returns Burst, or Count when Burst is zero or less.
func (l Limit) BurstOrCount() int {
	if l.Burst <= 0 {
		return l.Count
	}
	return l.Burst
}

// Validate reports whether l can be applied to a request of the given cost.
// The error wraps [ErrInvalidLimit].
func (l Limit) Validate(cost int) error {
	switch {
	case l.Count <= 0 || l.Period <= 0:
		return fmt.Errorf("%w: %d per %s", ErrInvalidLimit, l.Count, l.Period)
	case cost < 0:
		return fmt.Errorf("%w: negative cost %d", ErrInvalidLimit, cost)
	case cost > l.BurstOrCount():
		return fmt.Errorf("%w: cost %d exceeds burst %d", ErrInvalidLimit, cost, l.BurstOrCount())
	}
	return nil
}

// Window returns the quota and window, in whole seconds, that describe l in
// the RateLimit-Policy header: Count per Period, scaled to a whole number
// of seconds when Period is not one (500 per 500ms is q=1000;w=1).
func (l Limit) Window() (quota int, seconds int) {
	if l.Count <= 0 || l.Period <= 0 {
		return 0, 0
	}
	seconds = int(ceilSeconds(l.Period))
	if time.Duration(seconds)*time.Second == l.Period {
		return l.Count, seconds
	}
	return int(math.Floor(l.Rate()*float64(seconds) + 1e-9)), seconds
}

// String returns the limit in the parameter syntax of the RateLimit-Policy
// header, "q=<quota>;w=<window seconds>", as in `"api";q=100;w=60`.
func (l Limit) String() string {
	q, w := l.Window()
	return "q=" + strconv.Itoa(q) + ";w=" + strconv.Itoa(w)
}

// Result is the outcome of one [Limiter.Allow] call.
type Result struct {
	// Allowed reports whether the request may proceed. When it is true its
	// cost has been taken from the bucket.
	Allowed bool
	// Limit is the limit the request was checked against.
	Limit Limit
	// Remaining is the number of events (of cost 1) that would be allowed
	// right now, after this one.
	Remaining int
	// ResetAfter is the time until the bucket is full again, that is until
	// Remaining equals the burst.
	ResetAfter time.Duration
	// RetryAfter is the time to wait before the same request can be
	// allowed; zero when Allowed is true.
	RetryAfter time.Duration
}

// Limiter decides whether an event of a given cost may happen now for a key.
//
// The limit travels with each call instead of being fixed when the limiter
// is built, as in redis_rate: one limiter (one map, one Redis connection)
// then serves every scope and every plan, and a tenant whose plan changes
// gets its new quota on its next request. Callers keep one limit per key;
// a key checked against a different limit than before is moved to the new
// limit with the tokens it had.
//
// Implementations are safe for concurrent use. Allow returns an error
// wrapping [ErrInvalidLimit] for a limit or cost it cannot apply, and an
// implementation-specific error when its store fails; it does not return
// [ErrLimited]: a refusal is a Result with Allowed false.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit, cost int) (Result, error)
}

// LimiterFunc adapts a function to the [Limiter] interface.
type LimiterFunc func(ctx context.Context, key string, limit Limit, cost int) (Result, error)

// Allow calls f.
func (f LimiterFunc) Allow(ctx context.Context, key string, limit Limit, cost int) (Result, error) {
	return f(ctx, key, limit, cost)
}

// Error is the error [Check] returns when a request is refused. It matches
// [ErrLimited] with errors.Is.
type Error struct {
	// RetryAfter is the time to wait before retrying.
	RetryAfter time.Duration
	// Result is the limiter's full answer.
	Result Result
}

// Error implements error.
func (e *Error) Error() string {
	return "ratelimit: rate limit exceeded, retry after " + e.RetryAfter.String()
}

// Is reports whether target is [ErrLimited].
func (e *Error) Is(target error) bool { return target == ErrLimited }

// Check asks l whether an event of the given cost may happen now for key. It
// returns nil when it may, an [*Error] matching [ErrLimited] when it may not,
// and the limiter's error (for example one wrapping [ErrInvalidLimit]) when
// the limiter cannot answer.
//
// Check is the function form for handlers that learn the key only after
// reading the request, such as a login handler keyed by email.
func Check(ctx context.Context, l Limiter, key string, limit Limit, cost int) error {
	res, err := l.Allow(ctx, key, limit, cost)
	if err != nil {
		return err
	}
	if !res.Allowed {
		return &Error{RetryAfter: res.RetryAfter, Result: res}
	}
	return nil
}

// ceilSeconds rounds d up to whole seconds. Durations computed from float
// rates carry nanosecond noise, so d is first rounded to the microsecond.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	d = d.Round(time.Microsecond)
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

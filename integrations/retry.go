package integrations

import (
	"context"
	"crypto/tls"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// CheckRetryFunc decides whether an attempt should be retried. resp is nil
// when err is not. Returning a non-nil error stops at once and makes
// [Client.Do] return that error. It is consulted only for requests that may
// be sent again (see [Idempotent]) and never decides the wait: backoff and
// Retry-After do.
type CheckRetryFunc func(ctx context.Context, resp *http.Response, err error) (bool, error)

// DefaultCheckRetry is the default [CheckRetryFunc]. It stops when ctx is
// done, retries network errors and attempt timeouts (but not TLS certificate
// errors, which another attempt will not fix), 429 Too Many Requests and
// every 5xx status except 501 Not Implemented.
func DefaultCheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, context.Cause(ctx)
	}
	if err != nil {
		var certErr *tls.CertificateVerificationError
		return !errors.As(err, &certErr), nil
	}
	return retryableStatus(resp.StatusCode), nil
}

// retryableStatus reports the statuses that are retried by default and count
// as breaker failures.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code <= 599 && code != http.StatusNotImplemented)
}

// IdempotencyKeyHeader is the header that makes a request of any method safe
// to retry: the client sends it unchanged on every attempt.
const IdempotencyKeyHeader = "Idempotency-Key"

// Idempotent reports whether req may be sent more than once: its method is
// GET, HEAD, OPTIONS, PUT, DELETE or TRACE, or it carries a non-empty
// Idempotency-Key header.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
		return true
	}
	return req.Header.Get(IdempotencyKeyHeader) != ""
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date,
// relative to now. A date in the past means no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return math.MaxInt64, true
			}
			return 0, false
		}
		if secs > uint64(math.MaxInt64/int64(time.Second)) {
			return math.MaxInt64, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryAfter returns the Retry-After wait of resp, if any.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	return parseRetryAfter(v, time.Now())
}

// newBackoff returns the exponential schedule (doubling from initial up to
// maxInterval, no randomisation: [fullJitter] adds it).
func newBackoff(initial, maxInterval time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     initial,
		RandomizationFactor: 0,
		Multiplier:          2,
		MaxInterval:         maxInterval,
		MaxElapsedTime:      0, // bounded by attempts and deadlines instead
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b
}

// fullJitter returns a uniformly random wait in [0, d].
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

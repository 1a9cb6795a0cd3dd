package integrations

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultMinRequests         = 10
	DefaultFailureRatio        = 0.5
	DefaultWindow              = 60 * time.Second
	DefaultOpenTimeout         = 30 * time.Second
	DefaultHalfOpenMaxRequests = 1
	DefaultMaxAttempts         = 3
	DefaultInitialInterval     = 100 * time.Millisecond
	DefaultMaxInterval         = 5 * time.Second
	DefaultMaxRetryAfter       = 30 * time.Second
	DefaultAttemptTimeout      = 10 * time.Second
	DefaultMaxBodyBytes        = 10 << 20
)

// windowBuckets is the number of buckets of the breaker's rolling window.
const windowBuckets = 10

// Config configures a [Client]. The zero value is usable: every zero field
// takes the default named in its comment.
type Config struct {
	// HTTPClient sends the attempts. Its Timeout should be zero: the client
	// bounds each attempt with AttemptTimeout. Default: a client with a clone
	// of http.DefaultTransport keeping up to 64 idle connections per host.
	HTTPClient *http.Client

	// KeyFunc names the upstream a request goes to; each key has its own
	// breaker and rate limit. A key set on the request context with
	// [WithKey] takes precedence. Default: the request URL's host (with
	// port). Keys are kept for the life of the client, so they should come
	// from a bounded set (hosts or provider names you configure).
	KeyFunc func(*http.Request) string

	// MinRequests is the number of finished attempts in the window below
	// which the breaker never trips. Default 10.
	MinRequests uint32
	// FailureRatio trips the breaker when failures/finished attempts in the
	// window reach it (and MinRequests is met). Default 0.5; a value above
	// 1 never trips.
	FailureRatio float64
	// Window is the length of the rolling window over which a closed breaker
	// counts outcomes, in ten buckets. Default 60s.
	Window time.Duration
	// OpenTimeout is how long an open breaker refuses requests before going
	// half-open. Default 30s.
	OpenTimeout time.Duration
	// HalfOpenMaxRequests is the probe budget of a half-open breaker: that
	// many requests are let through, and as many successes in a row close
	// it. Default 1.
	HalfOpenMaxRequests uint32

	// MaxAttempts bounds the attempts per request, the first included; 1
	// disables retries. Default 3.
	MaxAttempts int
	// InitialInterval is the base wait before the first retry; it doubles on
	// each retry up to MaxInterval, and the actual wait is drawn uniformly
	// between zero and that value (full jitter). Defaults 100ms and 5s.
	InitialInterval, MaxInterval time.Duration
	// MaxRetryAfter caps the wait a response may ask for with Retry-After
	// (seconds or HTTP-date). A longer Retry-After stops retrying with
	// [ErrRetryAfterTooLong]. When present and within the cap, Retry-After
	// replaces the backoff wait. Default 30s.
	MaxRetryAfter time.Duration
	// CheckRetry decides which failed attempts are retried. Default
	// [DefaultCheckRetry].
	CheckRetry CheckRetryFunc

	// AttemptTimeout bounds each attempt, including the reading of the
	// returned response's body, inside the caller's context deadline.
	// Default 10s; negative means no per-attempt bound.
	AttemptTimeout time.Duration

	// RateLimit is the client-side rate per key, in requests per second
	// (every attempt counts). Default 0: unlimited.
	RateLimit rate.Limit
	// Burst is the bucket size of the rate limit. Default 1.
	Burst int

	// MaxBodyBytes bounds the request body the client buffers to replay it
	// on retries when req.GetBody is nil (a larger body is sent once,
	// without retries), and the response body the JSON helpers decode.
	// Default 10 MiB.
	MaxBodyBytes int64

	// Observer, when set, receives every attempt and breaker state change.
	Observer Observer
}

// Client is a resilient outbound HTTP client: per-key circuit breakers,
// retries with backoff and Retry-After, per-attempt timeouts and a
// client-side rate limit around an *http.Client. It is safe for concurrent
// use; create one per process (or per set of settings) and share it.
type Client struct {
	cfg       Config
	hc        *http.Client
	endpoints sync.Map // key → *endpoint
}

// New returns a Client with cfg's zero fields set to their defaults.
func New(cfg Config) *Client {
	if cfg.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	if cfg.KeyFunc == nil {
		cfg.KeyFunc = hostKey
	}
	if cfg.MinRequests == 0 {
		cfg.MinRequests = DefaultMinRequests
	}
	if cfg.FailureRatio == 0 {
		cfg.FailureRatio = DefaultFailureRatio
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.HalfOpenMaxRequests == 0 {
		cfg.HalfOpenMaxRequests = DefaultHalfOpenMaxRequests
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.InitialInterval <= 0 {
		cfg.InitialInterval = DefaultInitialInterval
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = DefaultMaxInterval
	}
	cfg.MaxInterval = max(cfg.MaxInterval, cfg.InitialInterval)
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if cfg.CheckRetry == nil {
		cfg.CheckRetry = DefaultCheckRetry
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return &Client{cfg: cfg, hc: cfg.HTTPClient}
}

func hostKey(req *http.Request) string {
	if req.URL != nil && req.URL.Host != "" {
		return req.URL.Host
	}
	return req.Host
}

type keyContextKey struct{}

// WithKey returns a context that makes the client use key (typically a
// provider name such as "payment-service") instead of Config.KeyFunc for
// requests made with it.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyContextKey{}, key)
}

// KeyFromContext returns the key set with [WithKey], if any.
func KeyFromContext(ctx context.Context) (string, bool) {
	key, ok := ctx.Value(keyContextKey{}).(string)
	return key, ok
}

// Key returns the breaker and rate-limit key the client uses for req.
func (c *Client) Key(req *http.Request) string {
	if key, ok := KeyFromContext(req.Context()); ok {
		return key
	}
	return c.cfg.KeyFunc(req)
}

// Do sends req with the client's breaker, rate limit, timeouts and retries,
// and returns the final response; the caller closes its body. Bodies of
// responses that were retried are drained and closed.
//
// Do returns a response with a nil error whenever it stops on a response it
// does not retry: a success, a 4xx, a 501, or any status of a request that
// may not be sent twice (a POST without Idempotency-Key is sent exactly
// once). It returns an error wrapping [ErrCircuitOpen] at once while the
// key's breaker is open, a [*StatusError] when it gives up on a retryable
// status, and a [*TransportError] when the last attempt got no response.
// A context that ends stops Do at once, waiting or not.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	resp, _, err := c.do(req)
	return resp, err
}

func (c *Client) do(req *http.Request) (resp *http.Response, attempt int, err error) {
	ctx := req.Context()
	key := c.Key(req)
	ep := c.endpoint(key)

	maxAttempts := c.cfg.MaxAttempts
	replayable := Idempotent(req)
	if !replayable {
		maxAttempts = 1
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	getBody := req.GetBody
	var firstBody io.ReadCloser
	if hasBody && maxAttempts > 1 && getBody == nil {
		buf, err := io.ReadAll(io.LimitReader(req.Body, c.cfg.MaxBodyBytes+1))
		if err != nil {
			req.Body.Close()
			return nil, 0, fmt.Errorf("integrations: read request body: %w", err)
		}
		if int64(len(buf)) > c.cfg.MaxBodyBytes {
			// Too large to keep: stream it once.
			firstBody = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
			maxAttempts, replayable = 1, false
		} else {
			req.Body.Close()
			getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		}
	}

	var bo interface{ NextBackOff() time.Duration }
	for attempt = 1; ; attempt++ {
		if ep.limiter != nil {
			if err := ep.limiter.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil, attempt - 1, &TransportError{Key: key, Attempts: attempt - 1, Err: context.Cause(ctx)}
				}
				return nil, attempt - 1, fmt.Errorf("%w: %s: %w", ErrRateLimited, key, err)
			}
		}
		done, berr := ep.cb.Allow()
		if berr != nil {
			err := fmt.Errorf("%w: %s", ErrCircuitOpen, key)
			c.observe(req, key, attempt, nil, err, 0, false, 0)
			return nil, attempt - 1, err
		}

		actx, cancel := ctx, context.CancelFunc(nop)
		if c.cfg.AttemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		}
		areq := req.WithContext(actx)
		switch {
		case firstBody != nil:
			areq.Body, firstBody = firstBody, nil
		case hasBody && (attempt > 1 || req.GetBody == nil) && getBody != nil:
			b, err := getBody()
			if err != nil {
				done(errExcluded)
				cancel()
				return nil, attempt - 1, fmt.Errorf("integrations: replay request body: %w", err)
			}
			areq.Body, areq.GetBody = b, getBody
		}

		start := time.Now()
		resp, err := c.hc.Do(areq)
		elapsed := time.Since(start)

		switch {
		case err != nil && errors.Is(ctx.Err(), context.Canceled):
			done(errExcluded)
		case err != nil, retryableStatus(resp.StatusCode):
			done(errFailure)
		default:
			done(nil)
		}
		if err != nil && ctx.Err() != nil {
			cancel()
			c.observe(req, key, attempt, nil, err, elapsed, false, 0)
			return nil, attempt, &TransportError{Key: key, Attempts: attempt, Err: err}
		}

		retry := false
		if replayable {
			var cerr error
			retry, cerr = c.cfg.CheckRetry(ctx, resp, err)
			if cerr != nil {
				c.observe(req, key, attempt, resp, err, elapsed, false, 0)
				discard(resp)
				cancel()
				return nil, attempt, cerr
			}
		}
		if !retry {
			c.observe(req, key, attempt, resp, err, elapsed, false, 0)
			if err != nil {
				cancel()
				return nil, attempt, &TransportError{Key: key, Attempts: attempt, Err: err}
			}
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, attempt, nil
		}

		// The attempt failed in a retryable way: decide the wait, or stop.
		var reason error
		var wait time.Duration
		ra, hasRA := retryAfter(resp)
		switch {
		case attempt >= maxAttempts:
			reason = ErrRetriesExhausted
		case hasRA && ra > c.cfg.MaxRetryAfter:
			reason = ErrRetryAfterTooLong
		default:
			if hasRA {
				wait = ra
			} else {
				if bo == nil {
					bo = newBackoff(c.cfg.InitialInterval, c.cfg.MaxInterval)
				}
				wait = fullJitter(bo.NextBackOff())
			}
			if dl, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(dl) {
				reason = ErrRetryPastDeadline
			}
		}
		c.observe(req, key, attempt, resp, err, elapsed, reason == nil, wait)
		if reason != nil {
			defer cancel()
			if err != nil {
				return nil, attempt, &TransportError{Key: key, Attempts: attempt, Err: err, Reason: reason}
			}
			return nil, attempt, newStatusError(key, attempt, resp, ra, reason)
		}
		discard(resp)
		cancel()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, attempt, &TransportError{Key: key, Attempts: attempt, Err: context.Cause(ctx)}
			case <-t.C:
			}
		}
	}
}

func (c *Client) observe(req *http.Request, key string, attempt int, resp *http.Response, err error, d time.Duration, retried bool, wait time.Duration) {
	if c.cfg.Observer == nil {
		return
	}
	info := AttemptInfo{
		Key:      key,
		Method:   req.Method,
		Attempt:  attempt,
		Err:      err,
		Duration: d,
		Retried:  retried,
		Wait:     wait,
	}
	if req.URL != nil {
		info.Host, info.Path = req.URL.Host, req.URL.Path
	}
	if resp != nil {
		info.StatusCode = resp.StatusCode
	}
	c.cfg.Observer.OnAttempt(info)
}

// newStatusError keeps a snippet of resp's body and closes it.
func newStatusError(key string, attempts int, resp *http.Response, ra time.Duration, reason error) *StatusError {
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, bodySnippetLen))
	discard(resp)
	return &StatusError{Key: key, StatusCode: resp.StatusCode, Attempts: attempts, RetryAfter: ra, Body: snippet, Reason: reason}
}

// discardLimit bounds how much of a discarded body is read so that its
// connection can be reused.
const discardLimit = 64 << 10

// discard drains and closes resp's body, if any.
func discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, discardLimit))
	resp.Body.Close()
}

func nop() {}

type readCloser struct {
	io.Reader
	io.Closer
}

// cancelOnClose releases an attempt's context when the caller closes the
// response body.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

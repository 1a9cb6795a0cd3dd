// Package integrations is the outbound side of talking to external
// services: a resilient HTTP [Client] that wraps an *http.Client with, per
// upstream, a circuit breaker, retries with backoff that honour Retry-After,
// per-attempt timeouts and a client-side rate limit.
//
// The shortest real use:
//
//	c := integrations.New(integrations.Config{}) // every default
//	var user User
//	err := c.GetJSON(ctx, "https://users.example.com/v1/users/42", &user)
//
// # Keys
//
// Breakers and rate limits are kept per key: the request's host by default,
// Config.KeyFunc when set, or a provider name put on the context with
// [WithKey]. [Client.State] and [Client.Counts] report a key's breaker for
// health checks.
//
// # Circuit breaker
//
// Each key has a breaker (sony/gobreaker) that counts attempts over a
// rolling window (Config.Window, ten buckets). An attempt fails when it gets
// a network error, times out, or gets 429 or a 5xx other than 501; any other
// status, 4xx included, is a success for the breaker; an attempt the caller
// cancelled is not counted. Once the window holds at least MinRequests
// finished attempts and failures make up FailureRatio of them, the breaker
// opens: requests fail at once with [ErrCircuitOpen] and never reach the
// upstream. After OpenTimeout it lets HalfOpenMaxRequests probes through;
// they close it when they succeed, a failure opens it again.
//
// # Retries
//
// Only requests that may be sent twice are retried: GET, HEAD, OPTIONS,
// PUT, DELETE and TRACE, and any request carrying an Idempotency-Key header,
// which is sent unchanged on every attempt ([Idempotent]). A POST without
// one is sent exactly once. Config.CheckRetry ([DefaultCheckRetry] by
// default) picks the failures worth retrying: network errors, timeouts, 429
// and 5xx except 501. The wait doubles from InitialInterval up to
// MaxInterval with full jitter (uniform between zero and the doubled value,
// on cenkalti/backoff's exponential schedule), unless the response says
// Retry-After (seconds or HTTP-date), which is followed when at most
// MaxRetryAfter and stops the retries ([ErrRetryAfterTooLong]) when longer.
// No wait is started that would outlive the caller's context deadline
// ([ErrRetryPastDeadline]). Bodies are replayed from req.GetBody, or
// buffered up to MaxBodyBytes before the first attempt; a larger body
// without GetBody is sent once.
//
// When it gives up on a retryable status, [Client.Do] returns a
// [*StatusError] (status, attempts, Retry-After, the start of the body);
// on a network error, a [*TransportError]. Both wrap the reason
// ([ErrRetriesExhausted], ...). Any other response is returned as is, for
// the caller to read and close.
//
// # Timeouts and limits
//
// Each attempt runs under its own AttemptTimeout inside the caller's
// context, so a slow upstream costs one attempt and not the whole call.
// Config.RateLimit and Burst (golang.org/x/time/rate) space the attempts
// sent to each key; a wait that cannot end before the context deadline
// fails with [ErrRateLimited].
//
// # Observing
//
// An [Observer] (or [ObserverFuncs]) sees every attempt ([AttemptInfo]:
// key, method, host, path, status, error, duration, whether it is retried)
// and every breaker state change; health checks and metrics build on it.
//
// The client reads time only through the time package, so tests drive it
// with testing/synctest.
package integrations

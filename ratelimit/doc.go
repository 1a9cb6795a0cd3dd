// Package ratelimit limits how often a key (a user, an API client, a client
// IP, a tenant, or a combination under a named scope) may do something, and
// applies such limits to HTTP requests.
//
// A [Limiter] answers one question: may an event of this cost happen now for
// this key under this [Limit]? The limit is an argument of every call rather
// than a property of the limiter, so one limiter serves every scope and every
// plan, and a tenant that changes plan gets its new quota on its next request.
// Two limiters are provided:
//
//   - [Memory], in this package: one golang.org/x/time/rate token bucket per
//     key in a sharded map, idle keys evicted so that memory stays bounded.
//     It suits one process; it needs nothing beyond the standard library and
//     x/time.
//   - ratelimit/redislimit: GCRA in Redis (github.com/go-redis/redis_rate),
//     one limit shared by every replica. Only that package imports go-redis.
//
// The shortest real use limits an API to 100 requests a minute per client IP,
// with bursts of 20:
//
//	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
//	defer lim.Close()
//	api := ratelimit.Middleware(lim, ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(100, 20)})
//	http.ListenAndServe(":8080", api(mux))
//
// # HTTP middleware
//
// [Middleware] and [MiddlewareWithOptions] key each request by
// "<scope>|<principal>|<tenant>": the principal is the authenticated user or
// API client when [MiddlewareOptions.PrincipalFunc] finds one, else the
// client IP ([ClientIP], which believes X-Forwarded-For and X-Real-IP only
// from [MiddlewareOptions.TrustedProxies]); the tenant comes from
// [MiddlewareOptions.TenantFunc]. [MiddlewareOptions.LimitFunc] picks the
// limit per request, typically from the tenant's plan; the zero [Limit]
// means unlimited. Every limited response carries the fields of
// draft-ietf-httpapi-ratelimit-headers:
//
//	RateLimit-Policy: "api";q=100;w=60
//	RateLimit: "api";r=57;t=26
//
// where r is the requests left now and t the seconds until the bucket is
// full. A refused request gets 429 application/problem+json with
// Retry-After (seconds, rounded up), a detail naming the scope and a
// "retry_after" member. Middlewares for several scopes stack; each adds its
// own member to both fields.
//
// When the limiter fails (Redis down), FailOpen decides: the default answers
// 503 problem+json with Retry-After; FailOpen lets the request through.
// Either way the error goes to the Logger and the OnError hook.
//
// # Login and token endpoints
//
// The strict scope for login is two limits. The middleware keys the login
// route by client IP, which caps password spraying from one address. The
// login handler, once it has read the email from the body, also calls
// [Check] with a key such as "login-email|" + the normalised email, which
// caps guessing against one account from many addresses; on an [*Error] it
// answers with [WriteLimited]. Checking the two keys separately (rather than
// in one call) lets each have its own limit and lets the handler skip the
// email check for malformed bodies. Both checks count every attempt,
// successful or not.
//
// # Function form
//
// [Check] returns nil, an [*Error] (matching [ErrLimited], carrying
// RetryAfter and the [Result]), or the limiter's error. [SetHeaders] and
// [WriteLimited] write the same headers and answers as the middleware.
package ratelimit

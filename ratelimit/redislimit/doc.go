// Package redislimit is a [ratelimit.Limiter] backed by Redis, for services
// that run several replicas: every replica using the same Redis and
// [Config.Prefix] enforces one shared limit per key.
//
// It runs the generic cell rate algorithm (GCRA) of
// github.com/go-redis/redis_rate/v10 on github.com/redis/go-redis/v9: one
// key per rate-limited subject holding its theoretical arrival time, updated
// by a Lua script in one round trip, atomically, against the Redis server's
// clock. A [ratelimit.Limit] of Count per Period with Burst maps to
// redis_rate's Rate, Period and Burst; the results match those of
// [ratelimit.Memory] (a token bucket), so the middleware's headers mean the
// same with either.
//
// The shortest real use:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	lim := redislimit.New(rdb, redislimit.Config{Prefix: "myapp:"})
//	api := ratelimit.Middleware(lim, ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(100, 20)})
//
// When Redis is unreachable [Limiter.Allow] returns the error (wrapped,
// prefixed "redislimit:") after the client's own timeouts; the middleware's
// FailOpen option then decides whether requests pass. Keep the client's
// DialTimeout and ReadTimeout short for a limiter on the request path.
//
// This is the only saaskit package that imports go-redis; package ratelimit
// stays free of it.
package redislimit

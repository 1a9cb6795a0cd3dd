package redislimit_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

// This example needs a Redis server, so it is compiled but not run.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr: "localhost:6379",
		// A limiter sits on the request path: fail fast.
		DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond,
	})
	defer rdb.Close()
	lim := redislimit.New(rdb, redislimit.Config{Prefix: "myapp:"})

	res, err := lim.Allow(context.Background(), "user:42", ratelimit.PerMinute(100, 20), 1)
	if err != nil {
		fmt.Println("redis unavailable:", err)
		return
	}
	fmt.Println(res.Allowed, res.Remaining)

	mux := http.NewServeMux()
	api := ratelimit.MiddlewareWithOptions(lim, ratelimit.MiddlewareOptions{
		Policy:   ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(100, 20)},
		FailOpen: true, // keep serving if Redis goes away
	})
	http.ListenAndServe(":8080", api(mux))
}

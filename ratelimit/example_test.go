package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/saaskit/saaskit/ratelimit"
)

func ExampleMemory() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: func() time.Time { return now }})
	defer lim.Close()

	limit := ratelimit.PerMinute(2, 2) // a token every 30s, two at once
	for range 3 {
		res, _ := lim.Allow(context.Background(), "user:42", limit, 1)
		fmt.Println(res.Allowed, res.Remaining, res.ResetAfter, res.RetryAfter)
	}
	// Output:
	// true 1 30s 0s
	// true 0 1m0s 0s
	// false 0 1m0s 30s
}

func ExampleCheck() {
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	defer lim.Close()
	ctx := context.Background()
	limit := ratelimit.PerHour(1, 1)

	fmt.Println(ratelimit.Check(ctx, lim, "login-email|ada@example.com", limit, 1))
	err := ratelimit.Check(ctx, lim, "login-email|ada@example.com", limit, 1)
	var le *ratelimit.Error
	fmt.Println(errors.Is(err, ratelimit.ErrLimited), errors.As(err, &le) && le.RetryAfter > 59*time.Minute)
	// Output:
	// <nil>
	// true true
}

func ExampleMiddleware() {
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	defer lim.Close()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	h := ratelimit.Middleware(lim, ratelimit.Policy{Scope: "api", Limit: ratelimit.PerHour(1, 1)})(hello)

	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Printf("%d %s Retry-After=%q\n", w.Code, w.Header().Get("RateLimit"), w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 "api";r=0;t=3600 Retry-After=""
	// 429 "api";r=0;t=3600 Retry-After="3600"
}

func ExampleMiddlewareWithOptions() {
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	defer lim.Close()
	plans := map[string]ratelimit.Limit{
		"free": ratelimit.PerMinute(60, 10),
		"pro":  ratelimit.PerMinute(600, 100),
	}
	mw := ratelimit.MiddlewareWithOptions(lim, ratelimit.MiddlewareOptions{
		Policy: ratelimit.Policy{Scope: "api"},
		// In the server these read the verified principal and tenant from
		// the request context.
		PrincipalFunc: func(r *http.Request) (string, bool) {
			id := r.Header.Get("X-Demo-User")
			return "user:" + id, id != ""
		},
		TenantFunc: func(r *http.Request) (string, bool) {
			t := r.Header.Get("X-Demo-Tenant")
			return t, t != ""
		},
		LimitFunc: func(r *http.Request) ratelimit.Limit { return plans[r.Header.Get("X-Demo-Plan")] },
	})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Demo-User", "42")
	r.Header.Set("X-Demo-Tenant", "acme")
	r.Header.Set("X-Demo-Plan", "pro")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Header().Get("RateLimit-Policy"))
	fmt.Println(w.Header().Get("RateLimit"))
	// Output:
	// "api";q=600;w=60
	// "api";r=99;t=1
}

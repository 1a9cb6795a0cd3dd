// Command rate-limited-api puts per-client rate limits in front of an HTTP
// API, with package ratelimit alone (and ratelimit/redislimit for several
// replicas).
//
// It shows ratelimit.NewMemory behind ratelimit.MiddlewareWithOptions with a
// small quota (3 requests a minute per API key, more on the "pro" plan): the
// RateLimit-Policy and RateLimit headers on every answer, then 429
// problem+json with Retry-After once the quota is spent, the request allowed
// again after that wait, and other clients counted apart. The limiter reads
// an injected clock here so that the demo can skip the wait; a service
// leaves MemoryConfig.Now nil.
//
// When SAASKIT_REDIS_URL is set (for example redis://127.0.0.1:6379/0) it
// also runs two "replicas" on ratelimit/redislimit that share one limit.
//
// Run it with:
//
//	go run ./examples/rate-limited-api
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	return runWith(w, os.Getenv("SAASKIT_REDIS_URL"))
}

// clock is a clock the demo moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// plans are the quotas per plan; API keys belong to plans.
var (
	plans    = map[string]ratelimit.Limit{"free": ratelimit.PerMinute(3, 3), "pro": ratelimit.PerMinute(60, 10)}
	keyPlans = map[string]string{"key-free-1": "free", "key-free-2": "free", "key-pro": "pro"}
)

// limited wraps h with the "api" scope: keyed by API key (or client IP
// without one), quota by the key's plan.
func limited(lim ratelimit.Limiter, h http.Handler) http.Handler {
	return ratelimit.MiddlewareWithOptions(lim, ratelimit.MiddlewareOptions{
		Policy: ratelimit.Policy{Scope: "api", Limit: plans["free"]},
		// In a real service, the authenticated client from the context.
		PrincipalFunc: func(r *http.Request) (string, bool) {
			k := r.Header.Get("X-API-Key")
			return "key:" + k, keyPlans[k] != ""
		},
		LimitFunc: func(r *http.Request) ratelimit.Limit {
			if p, ok := keyPlans[r.Header.Get("X-API-Key")]; ok {
				return plans[p]
			}
			return plans["free"]
		},
	})(h)
}

func hello() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
}

func runWith(w io.Writer, redisURL string) error {
	ctx := context.Background()
	clk := &clock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: clk.Now})
	defer lim.Close()
	srv := httptest.NewServer(limited(lim, hello()))
	defer srv.Close()

	fmt.Fprintln(w, "== key-free-1, 3 requests a minute")
	for i := 1; i <= 4; i++ {
		if err := get(ctx, w, srv.URL, "key-free-1", fmt.Sprintf("request %d", i)); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "== 20 seconds later, one request's worth has come back")
	clk.Advance(20 * time.Second)
	for i := 5; i <= 6; i++ {
		if err := get(ctx, w, srv.URL, "key-free-1", fmt.Sprintf("request %d", i)); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "== other clients have their own buckets")
	if err := get(ctx, w, srv.URL, "key-free-2", "key-free-2"); err != nil {
		return err
	}
	if err := get(ctx, w, srv.URL, "key-pro", "key-pro"); err != nil {
		return err
	}

	if redisURL == "" {
		fmt.Fprintln(w, "(set SAASKIT_REDIS_URL to share the limit between replicas through Redis)")
		return nil
	}
	return sharedLimit(ctx, w, redisURL)
}

// sharedLimit runs two replicas of the API on one Redis: a client's quota is
// spent across both.
func sharedLimit(ctx context.Context, w io.Writer, redisURL string) error {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	// A limiter sits on the request path: fail fast.
	opts.DialTimeout, opts.ReadTimeout = 200*time.Millisecond, 200*time.Millisecond
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	// A fresh prefix, so that earlier runs do not count.
	prefix := "saaskit-example:" + uuid.NewString() + ":"
	var urls []string
	for range 2 {
		srv := httptest.NewServer(limited(redislimit.New(rdb, redislimit.Config{Prefix: prefix}), hello()))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	fmt.Fprintln(w, "== two replicas sharing one limit in Redis")
	for i, replica := range []int{0, 1, 0, 1} {
		if err := get(ctx, w, urls[replica], "key-free-1", fmt.Sprintf("request %d to replica %c", i+1, 'A'+replica)); err != nil {
			return err
		}
	}
	return nil
}

// get sends one request and prints its status and rate-limit headers.
func get(ctx context.Context, w io.Writer, url, apiKey, label string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%-24s %d  RateLimit-Policy: %s  RateLimit: %s\n", label, resp.StatusCode,
		resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	if resp.StatusCode == http.StatusTooManyRequests {
		var p struct {
			Title      string `json:"title"`
			Detail     string `json:"detail"`
			RetryAfter int    `json:"retry_after"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return err
		}
		fmt.Fprintf(w, "%-24s Retry-After: %s  %s: %s  %s\n", "", resp.Header.Get("Retry-After"),
			resp.Header.Get("Content-Type"), p.Title, p.Detail)
	}
	return nil
}

package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/ratelimit"
)

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]ratelimit.Limit{
		"600/1m":    ratelimit.Every(600, time.Minute, 0),
		"10/1m,5":   ratelimit.Every(10, time.Minute, 5),
		" 5 / s ":   ratelimit.Every(5, time.Second, 0),
		"100/500ms": ratelimit.Every(100, 500*time.Millisecond, 0),
		"0":         {},
	} {
		got, err := parseLimit(in)
		if err != nil || got != want {
			t.Errorf("parseLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "600", "x/1m", "-1/1m", "0/1m", "10/0s", "10/soon", "10/1m,", "10/1m,0", "10/1m,x"} {
		if l, err := parseLimit(in); err == nil {
			t.Errorf("parseLimit(%q) = %+v, want an error", in, l)
		}
	}
	for env, v := range map[string]string{
		"SAASKIT_RATE_LIMIT_API":   "lots",
		"SAASKIT_RATE_LIMIT_AUTH":  "10 per minute",
		"SAASKIT_RATE_LIMIT_ANON":  "1/1y",
		"SAASKIT_RATE_LIMIT_PLANS": "free=10/1m,pro",
		"SAASKIT_TRUSTED_PROXIES":  "10.0.0.0/33",
	} {
		c := Config{}
		c.Defaults()
		switch env {
		case "SAASKIT_RATE_LIMIT_API":
			c.RateLimitAPI = v
		case "SAASKIT_RATE_LIMIT_AUTH":
			c.RateLimitAuth = v
		case "SAASKIT_RATE_LIMIT_ANON":
			c.RateLimitAnon = v
		case "SAASKIT_RATE_LIMIT_PLANS":
			c.RateLimitPlans = v
		case "SAASKIT_TRUSTED_PROXIES":
			c.TrustedProxies = v
		}
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%q: %v, want a config error naming the variable", env, v, err)
		}
	}
	c := Config{RateLimitPlans: "free=600/1m, pro=6000/1m,enterprise=0"}
	c.Defaults()
	rl, err := c.rateLimits()
	if err != nil {
		t.Fatal(err)
	}
	if rl.plans["pro"] != ratelimit.PerMinute(6000, 0) || !rl.plans["enterprise"].IsZero() || rl.auth != ratelimit.PerMinute(10, 0) {
		t.Errorf("limits = %+v", rl)
	}
}

// rateHeaders returns the rate-limit fields of r.
func rateHeaders(r *response) string {
	return fmt.Sprintf("policy=%s limit=%s retry=%s",
		strings.Join(r.Header.Values("RateLimit-Policy"), ", "), strings.Join(r.Header.Values("RateLimit"), ", "), r.Header.Get("Retry-After"))
}

func TestRateLimitBurstThenRefusal(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		at := time.Now()
		s := newTestServerOpts(t, db, Options{Now: func() time.Time { return at }}, func(c *Config) {
			c.RateLimitAPI = "3/1m"
			c.RateLimitAnon = "2/1m"
			c.RateLimitPlans = "pro=1/1m,enterprise=0"
		})
		owner := s.register("owner@rl.example.com", "Limits")
		// Each step: the request and the exact fields of its answer.
		for i, want := range []string{
			`policy="api";q=3;w=60 limit="api";r=2;t=20 retry=`,
			`policy="api";q=3;w=60 limit="api";r=1;t=40 retry=`,
			`policy="api";q=3;w=60 limit="api";r=0;t=60 retry=`,
		} {
			r := s.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil)
			if got := rateHeaders(r); got != want {
				t.Errorf("request %d: %s, want %s", i+1, got, want)
			}
		}
		r := s.do("GET", "/api/users/", owner.Access, nil)
		p := problemOf(t, r, http.StatusTooManyRequests)
		if got, want := rateHeaders(r), `policy="api";q=3;w=60 limit="api";r=0;t=60 retry=20`; got != want {
			t.Errorf("refused: %s, want %s", got, want)
		}
		if !strings.Contains(fmt.Sprint(p["detail"]), `"api"`) || p["retry_after"] != float64(20) {
			t.Errorf("problem = %v", p)
		}

		// Anonymous requests (and ones whose token does not verify) count
		// per client IP.
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": "nope"}), http.StatusUnauthorized)
		r = s.do("GET", "/api/users/", "not-a-token", nil)
		problemOf(t, r, http.StatusUnauthorized)
		if got := rateHeaders(r); got != `policy="anon";q=2;w=60 limit="anon";r=0;t=60 retry=` {
			t.Errorf("bad token: %s", got)
		}
		problemOf(t, s.do("POST", "/api/auth/logout/", "", map[string]any{"refresh": "nope"}), http.StatusTooManyRequests)

		// A tenant on a plan with its own quota gets it; an unlimited plan
		// is not limited and carries no fields.
		if _, err := s.srv.CreateSuperuser(t.Context(), "root@rl.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		root := s.login("root@rl.example.com", "")
		pro := s.register("pro@rl.example.com", "Pro")
		s.must(http.StatusOK, "PATCH", "/api/tenants/"+pro.TenantID+"/", root.Access, map[string]any{"plan": "pro"})
		r = s.must(http.StatusOK, "GET", "/api/users/", pro.Access, nil)
		if got := rateHeaders(r); got != `policy="api";q=1;w=60 limit="api";r=0;t=60 retry=` {
			t.Errorf("pro plan: %s", got)
		}
		problemOf(t, s.do("GET", "/api/users/", pro.Access, nil), http.StatusTooManyRequests)
		s.must(http.StatusOK, "PATCH", "/api/tenants/"+pro.TenantID+"/", root.Access, map[string]any{"plan": "enterprise"})
		for range 5 {
			r = s.must(http.StatusOK, "GET", "/api/users/", pro.Access, nil)
		}
		if got := rateHeaders(r); got != "policy= limit= retry=" {
			t.Errorf("enterprise plan: %s", got)
		}

		// Refusals are counted by scope.
		m := s.must(http.StatusOK, "GET", "/metrics", "", nil)
		for _, line := range []string{`saaskit_ratelimit_refused_total{scope="api"} 2`, `saaskit_ratelimit_refused_total{scope="anon"} 1`} {
			if !strings.Contains(string(m.Body), line) {
				t.Errorf("metrics lack %s", line)
			}
		}
	})
}

func TestRateLimitLoginPerEmailAndIP(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		s.register("victim@rl.example.com", "Victim")
		// A stopped clock: the exact header values below do not depend on
		// how long the password checks take.
		at := time.Now()
		limited := newTestServerOpts(t, db, Options{Now: func() time.Time { return at }}, func(c *Config) {
			c.RateLimitAuth = "3/1m"
			c.TrustedProxies = "127.0.0.1/32"
		})
		from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
		// One email from many addresses: refused after 3 attempts.
		for i := range 3 {
			r := limited.doH("POST", "/api/auth/login/", "", map[string]any{"email": "Victim@rl.example.com", "password": "guess-" + fmt.Sprint(i)}, from(fmt.Sprintf("198.51.100.%d", i+1)))
			problemOf(t, r, http.StatusUnauthorized)
		}
		r := limited.doH("POST", "/api/auth/token/", "", map[string]any{"email": "victim@rl.example.com", "password": testPassword}, from("198.51.100.99"))
		problemOf(t, r, http.StatusTooManyRequests)
		if got, want := rateHeaders(r), `policy="auth";q=3;w=60, "auth-email";q=3;w=60 limit="auth";r=2;t=20, "auth-email";r=0;t=60 retry=20`; got != want {
			t.Errorf("per-email refusal: %s\nwant %s", got, want)
		}
		// One address trying many emails: refused after 3 attempts too.
		for i := range 3 {
			problemOf(t, limited.doH("POST", "/api/auth/login/", "", map[string]any{"email": fmt.Sprintf("u%d@rl.example.com", i), "password": "x-password"}, from("203.0.113.7")), http.StatusUnauthorized)
		}
		r = limited.doH("POST", "/api/auth/register/", "", map[string]any{"email": "new@rl.example.com", "password": testPassword, "tenant_name": "New"}, from("203.0.113.7"))
		problemOf(t, r, http.StatusTooManyRequests)
		if got := r.Header.Get("RateLimit-Policy"); got != `"auth";q=3;w=60` {
			t.Errorf("per-IP refusal policy %q", got)
		}
		// Without a trusted proxy the header is not believed: every request
		// is the peer's.
		if ip := limited.srv.clientIP(&http.Request{RemoteAddr: "192.0.2.1:5", Header: from("198.51.100.1")}); ip.String() != "192.0.2.1" {
			t.Errorf("client IP from an untrusted peer = %s", ip)
		}
	})
}

// redisURL returns the test Redis, or skips.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SAASKIT_TEST_REDIS_URL")
	if u == "" {
		t.Skip("SAASKIT_TEST_REDIS_URL not set")
	}
	return u
}

func TestRateLimitSharedByReplicasOnRedis(t *testing.T) {
	url := redisURL(t)
	db := dbtest.SQLite(t)
	prefix := "saaskit-test:" + uuid.NewString() + ":"
	shared := func(c *Config) {
		c.RedisURL, c.RedisPrefix = url, prefix
		c.RateLimitAPI = "5/1m"
	}
	a := newTestServer(t, db, shared)
	b := newTestServer(t, db, shared)
	owner := a.register("owner@redis.example.com", "Redis")
	allowed, refused := 0, 0
	for i := range 12 {
		s := a
		if i%2 == 1 {
			s = b
		}
		switch r := s.do("GET", "/api/users/", owner.Access, nil); r.Status {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if allowed != 5 || refused != 7 {
		t.Errorf("two replicas allowed %d and refused %d, want one shared limit of 5", allowed, refused)
	}
}

func TestRateLimitRedisDown(t *testing.T) {
	db := dbtest.SQLite(t)
	up := newTestServer(t, db)
	owner := up.register("owner@down.example.com", "Down")
	down := newTestServer(t, db, func(c *Config) {
		c.RedisURL = "redis://127.0.0.1:1/0?max_retries=-1" // nothing listens there; no retries, to keep the test short
		c.RateLimitAPI, c.RateLimitAuth = "5/1m", "5/1m"
	})
	// The api scope fails open.
	for range 7 {
		down.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil)
	}
	// The auth scope fails closed.
	r := down.do("POST", "/api/auth/login/", "", map[string]any{"email": "owner@down.example.com", "password": testPassword})
	problemOf(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	m := down.must(http.StatusOK, "GET", "/metrics", "", nil)
	for _, line := range []string{`saaskit_ratelimit_errors_total{scope="api"} 7`, `saaskit_ratelimit_errors_total{scope="auth"} 1`} {
		if !strings.Contains(string(m.Body), line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

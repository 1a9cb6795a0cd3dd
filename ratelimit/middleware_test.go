package ratelimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/ratelimit"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.WriteString(w, "ok")
})

type problemDoc struct {
	Status     int    `json:"status"`
	Title      string `json:"title"`
	Detail     string `json:"detail"`
	RetryAfter int    `json:"retry_after"`
}

func serve(t *testing.T, h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddlewareBurstThenRefusal(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newMemory(t, ratelimit.MemoryConfig{Now: c.Now})
	h := ratelimit.Middleware(m, ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(3, 3)})(okHandler)

	steps := []struct {
		advance    time.Duration
		status     int
		rateLimit  string
		retryAfter string
	}{
		{0, 200, `"api";r=2;t=20`, ""},
		{0, 200, `"api";r=1;t=40`, ""},
		{0, 200, `"api";r=0;t=60`, ""},
		{0, 429, `"api";r=0;t=60`, "20"},
		{15 * time.Second, 429, `"api";r=0;t=45`, "5"},
		{4*time.Second + 500*time.Millisecond, 429, `"api";r=0;t=41`, "1"},
		{500 * time.Millisecond, 200, `"api";r=0;t=60`, ""},
		{time.Hour, 200, `"api";r=2;t=20`, ""},
	}
	for i, s := range steps {
		c.Advance(s.advance)
		r := httptest.NewRequest("GET", "/things", nil)
		r.RemoteAddr = "192.0.2.7:41000"
		w := serve(t, h, r)
		if w.Code != s.status {
			t.Fatalf("step %d: status %d, want %d", i, w.Code, s.status)
		}
		if got := w.Header().Get("RateLimit-Policy"); got != `"api";q=3;w=60` {
			t.Errorf("step %d: RateLimit-Policy %q", i, got)
		}
		if got := w.Header().Get("RateLimit"); got != s.rateLimit {
			t.Errorf("step %d: RateLimit %q, want %q", i, got, s.rateLimit)
		}
		if got := w.Header().Get("Retry-After"); got != s.retryAfter {
			t.Errorf("step %d: Retry-After %q, want %q", i, got, s.retryAfter)
		}
		if s.status != 429 {
			if w.Body.String() != "ok" {
				t.Errorf("step %d: body %q, want the handler's", i, w.Body)
			}
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("step %d: Content-Type %q", i, ct)
		}
		var p problemDoc
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("step %d: body %q: %v", i, w.Body, err)
		}
		if p.Status != 429 || p.Title != "Too Many Requests" || !strings.Contains(p.Detail, `"api"`) || strconv.Itoa(p.RetryAfter) != s.retryAfter {
			t.Errorf("step %d: problem %+v", i, p)
		}
	}

	// Another client has its own bucket.
	r := httptest.NewRequest("GET", "/things", nil)
	r.RemoteAddr = "192.0.2.8:41000"
	if w := serve(t, h, r); w.Code != 200 || w.Header().Get("RateLimit") != `"api";r=2;t=20` {
		t.Fatalf("second client: %d %q", w.Code, w.Header().Get("RateLimit"))
	}
}

func TestMiddlewareStackedScopes(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	h := ratelimit.Middleware(m, ratelimit.Policy{Scope: "global", Limit: ratelimit.PerMinute(100, 0)})(
		ratelimit.Middleware(m, ratelimit.Policy{Scope: "write", Limit: ratelimit.PerMinute(10, 0), Cost: 5})(okHandler))
	w := serve(t, h, httptest.NewRequest("POST", "/", nil))
	if got := w.Header().Values("RateLimit"); len(got) != 2 || got[0] != `"global";r=99;t=1` || got[1] != `"write";r=5;t=30` {
		t.Fatalf("RateLimit = %q", got)
	}
	if got := w.Header().Values("RateLimit-Policy"); len(got) != 2 || got[0] != `"global";q=100;w=60` || got[1] != `"write";q=10;w=60` {
		t.Fatalf("RateLimit-Policy = %q", got)
	}
}

func TestMiddlewareKeysByPrincipalAndTenant(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	var keys []string
	spy := ratelimit.LimiterFunc(func(ctx context.Context, key string, l ratelimit.Limit, cost int) (ratelimit.Result, error) {
		keys = append(keys, key)
		return m.Allow(ctx, key, l, cost)
	})
	h := ratelimit.MiddlewareWithOptions(spy, ratelimit.MiddlewareOptions{
		Policy: ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(1, 1)},
		PrincipalFunc: func(r *http.Request) (string, bool) {
			u := r.Header.Get("X-User")
			return "user:" + u, u != ""
		},
		TenantFunc: func(r *http.Request) (string, bool) {
			t := r.Header.Get("X-Tenant")
			return t, t != ""
		},
	})(okHandler)

	req := func(user, tenant string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "[2001:db8::1]:5000"
		if user != "" {
			r.Header.Set("X-User", user)
		}
		if tenant != "" {
			r.Header.Set("X-Tenant", tenant)
		}
		return serve(t, h, r).Code
	}
	codes := []int{
		req("alice", "t1"), req("alice", "t1"), // same user, same tenant: second refused
		req("alice", "t2"), // same user in another tenant: own bucket
		req("bob", "t1"),   // another user
		req("", ""),        // anonymous: keyed by IP
		req("", ""),
	}
	want := []int{200, 429, 200, 200, 200, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes = %v, want %v", codes, want)
		}
	}
	wantKeys := []string{"api|user:alice|t1", "api|user:alice|t1", "api|user:alice|t2", "api|user:bob|t1", "api|ip:2001:db8::1|", "api|ip:2001:db8::1|"}
	if strings.Join(keys, " ") != strings.Join(wantKeys, " ") {
		t.Fatalf("keys = %q, want %q", keys, wantKeys)
	}
}

func TestMiddlewarePerPlanLimit(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	plans := map[string]ratelimit.Limit{
		"free": ratelimit.PerMinute(1, 1),
		"pro":  ratelimit.PerMinute(3, 3),
		// "unlimited" has no entry: the zero Limit.
	}
	h := ratelimit.MiddlewareWithOptions(m, ratelimit.MiddlewareOptions{
		Policy:    ratelimit.Policy{Scope: "api"},
		LimitFunc: func(r *http.Request) ratelimit.Limit { return plans[r.Header.Get("X-Plan")] },
		Key:       func(r *http.Request) (string, error) { return "api|" + r.Header.Get("X-Plan"), nil },
	})(okHandler)
	count := func(plan string) (n int) {
		for range 5 {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("X-Plan", plan)
			w := serve(t, h, r)
			if w.Code == 200 {
				n++
			}
			if plan == "unlimited" && w.Header().Get("RateLimit") != "" {
				t.Errorf("unlimited plan got RateLimit %q", w.Header().Get("RateLimit"))
			}
		}
		return n
	}
	for plan, want := range map[string]int{"free": 1, "pro": 3, "unlimited": 5} {
		if got := count(plan); got != want {
			t.Errorf("plan %s: %d of 5 allowed, want %d", plan, got, want)
		}
	}
}

func TestMiddlewareSkipAndKeyErrors(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	errBadKey := errors.New("no key")
	var onError []error
	mw := func(failOpen bool) http.Handler {
		return ratelimit.MiddlewareWithOptions(m, ratelimit.MiddlewareOptions{
			Policy: ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(1, 1)},
			Key: func(r *http.Request) (string, error) {
				switch r.URL.Path {
				case "/healthz":
					return "", ratelimit.ErrSkip
				case "/broken":
					return "", errBadKey
				}
				return "api", nil
			},
			FailOpen: failOpen,
			OnError:  func(r *http.Request, scope string, err error) { onError = append(onError, err) },
		})(okHandler)
	}
	h := mw(false)
	for range 3 {
		if w := serve(t, h, httptest.NewRequest("GET", "/healthz", nil)); w.Code != 200 || w.Header().Get("RateLimit") != "" {
			t.Fatalf("skipped request: %d %v", w.Code, w.Header())
		}
	}
	if w := serve(t, h, httptest.NewRequest("GET", "/broken", nil)); w.Code != 503 {
		t.Fatalf("fail-closed key error: %d", w.Code)
	}
	if w := serve(t, mw(true), httptest.NewRequest("GET", "/broken", nil)); w.Code != 200 {
		t.Fatalf("fail-open key error: %d", w.Code)
	}
	if len(onError) != 2 || !errors.Is(onError[0], errBadKey) {
		t.Fatalf("OnError saw %v", onError)
	}
}

// TestMiddlewareInvalidLimitFailsClosed uses a real limiter error: a cost the
// limit can never allow.
func TestMiddlewareInvalidLimitFailsClosed(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{})
	var logs bytes.Buffer
	var limited int
	h := ratelimit.MiddlewareWithOptions(m, ratelimit.MiddlewareOptions{
		Policy:    ratelimit.Policy{Scope: "export", Limit: ratelimit.PerHour(2, 2), Cost: 3},
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		OnLimited: func(*http.Request, string) { limited++ },
	})(okHandler)
	w := serve(t, h, httptest.NewRequest("GET", "/", nil))
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %v", w.Code, w.Header())
	}
	if !strings.Contains(logs.String(), "exceeds burst") || !strings.Contains(logs.String(), "scope=export") {
		t.Fatalf("log = %q", logs.String())
	}
	if limited != 0 {
		t.Fatalf("OnLimited called %d times for an error", limited)
	}
}

func TestMiddlewareOnLimited(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	var scopes []string
	h := ratelimit.MiddlewareWithOptions(m, ratelimit.MiddlewareOptions{
		Policy:    ratelimit.Policy{Scope: "login", Limit: ratelimit.PerMinute(1, 1)},
		OnLimited: func(r *http.Request, scope string) { scopes = append(scopes, scope) },
	})(okHandler)
	for range 3 {
		serve(t, h, httptest.NewRequest("POST", "/login", nil))
	}
	if strings.Join(scopes, ",") != "login,login" {
		t.Fatalf("OnLimited scopes = %q", scopes)
	}
}

func TestMiddlewareTrustedProxies(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	h := ratelimit.MiddlewareWithOptions(m, ratelimit.MiddlewareOptions{
		Policy:         ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(1, 1)},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})(okHandler)
	req := func(peer, xff string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		return serve(t, h, r).Code
	}
	// Two clients behind the proxy get separate buckets.
	if a, b := req("10.0.0.1:1", "198.51.100.1"), req("10.0.0.1:1", "198.51.100.2"); a != 200 || b != 200 {
		t.Fatalf("clients behind the trusted proxy: %d %d", a, b)
	}
	// A client that forges X-Forwarded-For directly is keyed by its own IP.
	if a, b := req("203.0.113.9:1", "198.51.100.3"), req("203.0.113.9:1", "198.51.100.4"); a != 200 || b != 429 {
		t.Fatalf("forged X-Forwarded-For: %d %d", a, b)
	}
}

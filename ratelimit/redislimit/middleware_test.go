package redislimit_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// TestMiddlewareRedisDown runs the middleware on a Redis limiter whose
// server is a closed port, failing open and failing closed.
func TestMiddlewareRedisDown(t *testing.T) {
	t.Parallel()
	lim := deadRedis(t)
	policy := ratelimit.Policy{Scope: "api", Limit: ratelimit.PerMinute(10, 10)}

	for _, failOpen := range []bool{true, false} {
		var logs bytes.Buffer
		var hookErrs []string
		limited := 0
		h := ratelimit.MiddlewareWithOptions(lim, ratelimit.MiddlewareOptions{
			Policy:    policy,
			FailOpen:  failOpen,
			Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
			OnError:   func(r *http.Request, scope string, err error) { hookErrs = append(hookErrs, scope+": "+err.Error()) },
			OnLimited: func(*http.Request, string) { limited++ },
		})(okHandler)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))

		if len(hookErrs) != 1 || !strings.HasPrefix(hookErrs[0], "api: redislimit:") {
			t.Errorf("failOpen=%v: OnError saw %q", failOpen, hookErrs)
		}
		if !strings.Contains(logs.String(), "redislimit:") || !strings.Contains(logs.String(), "scope=api") {
			t.Errorf("failOpen=%v: log %q", failOpen, logs.String())
		}
		if limited != 0 {
			t.Errorf("failOpen=%v: OnLimited called for an error", failOpen)
		}
		if w.Header().Get("RateLimit") != "" {
			t.Errorf("failOpen=%v: RateLimit header %q without a limiter answer", failOpen, w.Header().Get("RateLimit"))
		}
		if failOpen {
			if w.Code != 200 || w.Body.String() != "ok" {
				t.Errorf("fail open: %d %q, want the handler's answer", w.Code, w.Body)
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("fail open logged %q, want a warning", logs.String())
			}
			continue
		}
		var p struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != 503 || w.Header().Get("Retry-After") != "1" ||
			w.Header().Get("Content-Type") != "application/problem+json" || p.Status != 503 || p.Detail == "" {
			t.Errorf("fail closed: %d %v %s", w.Code, w.Header(), w.Body)
		}
		if strings.Contains(w.Body.String(), "127.0.0.1") {
			t.Errorf("fail closed leaks the Redis address: %s", w.Body)
		}
	}
}

// TestMiddlewareSharedLimit runs two server instances, each with its own
// Redis client and limiter, on one Redis: together they allow exactly the
// limit.
func TestMiddlewareSharedLimit(t *testing.T) {
	t.Parallel()
	rdb1, prefix := testRedis(t)
	rdb2, _ := testRedis(t)
	policy := ratelimit.Policy{Scope: "api", Limit: ratelimit.PerHour(10, 10)}
	newServer := func(lim ratelimit.Limiter) *httptest.Server {
		srv := httptest.NewServer(ratelimit.MiddlewareWithOptions(lim, ratelimit.MiddlewareOptions{
			Policy: policy,
			// Both servers see the client from a different peer address in
			// a real deployment; key on a header here.
			Key: func(r *http.Request) (string, error) { return "api|" + r.Header.Get("X-Client"), nil },
		})(okHandler))
		t.Cleanup(srv.Close)
		return srv
	}
	servers := []*httptest.Server{
		newServer(redislimit.New(rdb1, redislimit.Config{Prefix: prefix})),
		newServer(redislimit.New(rdb2, redislimit.Config{Prefix: prefix})),
	}

	const requests = 40
	var mu sync.Mutex
	codes := map[int]int{}
	perServer := map[int]int{}
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			srv := servers[i%2]
			req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL, nil)
			req.Header.Set("X-Client", "c1")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 429 && (resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Policy") != `"api";q=10;w=3600`) {
				t.Errorf("429 without headers: %v", resp.Header)
			}
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 200 {
				perServer[i%2]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[200] != 10 || codes[429] != requests-10 {
		t.Fatalf("status counts %v, want 10 allowed and %d refused in total", codes, requests-10)
	}
	t.Logf("allowed per server: %v", perServer)
}

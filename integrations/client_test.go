package integrations_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

const svc = "http://svc.test/v1/things"

func TestRetryThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(func(n int, w http.ResponseWriter, _ *http.Request) {
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "busy")
				return
			}
			io.WriteString(w, "ok")
		})
		rec := &recorder{}
		c := memClient(u, integrations.Config{Observer: rec})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, svc+"?token=secret", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if u.Hits() != 3 {
			t.Errorf("hits = %d, want 3", u.Hits())
		}
		got := rec.Attempts()
		if len(got) != 3 {
			t.Fatalf("observer saw %d attempts, want 3", len(got))
		}
		for i, a := range got {
			wantStatus, wantRetried := 503, true
			if i == 2 {
				wantStatus, wantRetried = 200, false
			}
			if a.Attempt != i+1 || a.StatusCode != wantStatus || a.Retried != wantRetried || a.Key != "svc.test" ||
				a.Method != "GET" || a.Host != "svc.test" || a.Path != "/v1/things" {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
		}
		if n := c.Counts("svc.test"); n.Failures != 2 || n.Successes != 1 {
			t.Errorf("counts = %+v", n)
		}
	})
}

func TestRetriesExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, strings.Repeat("boom", 1000))
		})
		c := memClient(u, integrations.Config{MaxAttempts: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 400 * time.Millisecond})
		start := time.Now()
		_, err := get(t, c, svc)
		elapsed := time.Since(start)
		var se *integrations.StatusError
		if !errors.As(err, &se) || !errors.Is(err, integrations.ErrRetriesExhausted) {
			t.Fatalf("err = %v, want *StatusError wrapping ErrRetriesExhausted", err)
		}
		if se.StatusCode != 500 || se.Attempts != 5 || len(se.Body) != 1024 || !strings.HasPrefix(string(se.Body), "boomboom") {
			t.Errorf("StatusError = %d after %d, body %d bytes", se.StatusCode, se.Attempts, len(se.Body))
		}
		if u.Hits() != 5 {
			t.Errorf("hits = %d, want 5", u.Hits())
		}
		// Full jitter: each wait is at most 100, 200, 400, 400ms.
		if elapsed > 1100*time.Millisecond {
			t.Errorf("waited %v in fake time, more than the backoff caps allow", elapsed)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header func(now time.Time) string
		want   time.Duration
	}{
		{"seconds", http.StatusTooManyRequests, func(time.Time) string { return "7" }, 7 * time.Second},
		{"http-date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(12 * time.Second).UTC().Format(http.TimeFormat)
		}, 12 * time.Second},
		{"date in the past", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(-time.Hour).UTC().Format(http.TimeFormat)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := newUpstream(func(n int, w http.ResponseWriter, _ *http.Request) {
					if n == 1 {
						w.Header().Set("Retry-After", tc.header(time.Now()))
						w.WriteHeader(tc.status)
						return
					}
					w.WriteHeader(http.StatusOK)
				})
				rec := &recorder{}
				c := memClient(u, integrations.Config{Observer: rec})
				start := time.Now()
				resp, err := get(t, c, svc)
				if err != nil {
					t.Fatal(err)
				}
				if elapsed := time.Since(start); resp.StatusCode != 200 || elapsed != tc.want {
					t.Errorf("status %d after %v of fake time, want 200 after %v", resp.StatusCode, elapsed, tc.want)
				}
				if a := rec.Attempts(); a[0].Wait != tc.want {
					t.Errorf("observer wait = %v, want %v", a[0].Wait, tc.want)
				}
			})
		})
	}
}

func TestRetryAfterBeyondCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		})
		c := memClient(u, integrations.Config{MaxRetryAfter: 30 * time.Second})
		start := time.Now()
		_, err := get(t, c, svc)
		var se *integrations.StatusError
		if !errors.As(err, &se) || !errors.Is(err, integrations.ErrRetryAfterTooLong) {
			t.Fatalf("err = %v, want *StatusError wrapping ErrRetryAfterTooLong", err)
		}
		if se.StatusCode != 429 || se.Attempts != 1 || se.RetryAfter != 120*time.Second {
			t.Errorf("StatusError = %+v", se)
		}
		if u.Hits() != 1 || time.Since(start) != 0 {
			t.Errorf("hits = %d after %v, want 1 at once", u.Hits(), time.Since(start))
		}
	})
}

func TestNoRetryPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		c := memClient(u, integrations.Config{})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
		start := time.Now()
		_, err := c.Do(req)
		if !errors.Is(err, integrations.ErrRetryPastDeadline) {
			t.Fatalf("err = %v, want ErrRetryPastDeadline", err)
		}
		if u.Hits() != 1 || time.Since(start) != 0 {
			t.Errorf("hits = %d after %v, want 1 at once", u.Hits(), time.Since(start))
		}
	})
}

// slow answers after d unless the request ends first.
func slow(d time.Duration) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	}
}

func TestAttemptTimeout(t *testing.T) {
	t.Run("every attempt slow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(slow(time.Minute))
			c := memClient(u, integrations.Config{AttemptTimeout: 2 * time.Second})
			_, err := get(t, c, svc)
			var te *integrations.TransportError
			if !errors.As(err, &te) || !errors.Is(err, integrations.ErrRetriesExhausted) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want *TransportError wrapping ErrRetriesExhausted and DeadlineExceeded", err)
			}
			if te.Attempts != 3 || u.Hits() != 3 {
				t.Errorf("attempts = %d, hits = %d, want 3", te.Attempts, u.Hits())
			}
			if n := c.Counts("svc.test"); n.Failures != 3 {
				t.Errorf("timeouts counted as %d failures, want 3", n.Failures)
			}
		})
	})
	t.Run("first attempt slow", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 1 {
					slow(time.Minute)(n, w, r)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			c := memClient(u, integrations.Config{AttemptTimeout: 2 * time.Second})
			resp, err := get(t, c, svc)
			if err != nil || resp.StatusCode != 200 || u.Hits() != 2 {
				t.Fatalf("got %v, %v after %d hits", resp, err, u.Hits())
			}
		})
	})
	t.Run("inside the caller's deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(slow(time.Minute))
			c := memClient(u, integrations.Config{AttemptTimeout: 10 * time.Second})
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
			start := time.Now()
			_, err := c.Do(req)
			if !errors.Is(err, context.DeadlineExceeded) || u.Hits() != 1 || time.Since(start) != 3*time.Second {
				t.Fatalf("err = %v after %d hits and %v, want DeadlineExceeded after 1 hit and 3s", err, u.Hits(), time.Since(start))
			}
		})
	})
	t.Run("body readable until closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(func(int, http.ResponseWriter, *http.Request) {})
			c := memClient(u, integrations.Config{AttemptTimeout: 2 * time.Second})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, svc, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Errorf("read body: %v", err)
			}
			resp.Body.Close()
		})
	})
}

func TestContextCancel(t *testing.T) {
	t.Run("while waiting to retry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "10")
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			c := memClient(u, integrations.Config{})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
			start := time.Now()
			_, err := c.Do(req)
			if !errors.Is(err, context.Canceled) || time.Since(start) != time.Second || u.Hits() != 1 {
				t.Fatalf("err = %v after %v and %d hits, want Canceled after 1s and 1 hit", err, time.Since(start), u.Hits())
			}
		})
	})
	t.Run("during an attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(slow(time.Minute))
			c := memClient(u, integrations.Config{})
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
			start := time.Now()
			_, err := c.Do(req)
			if !errors.Is(err, context.Canceled) || time.Since(start) != time.Second || u.Hits() != 1 {
				t.Fatalf("err = %v after %v and %d hits, want Canceled after 1s and 1 hit", err, time.Since(start), u.Hits())
			}
			if n := c.Counts("svc.test"); n.Failures != 0 || n.Excluded != 1 {
				t.Errorf("a cancelled attempt counted as %+v, want excluded", n)
			}
		})
	})
	t.Run("already cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(status(200))
			c := memClient(u, integrations.Config{})
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
			if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want Canceled", err)
			}
			if u.Hits() > 1 {
				t.Errorf("hits = %d", u.Hits())
			}
		})
	})
}

func TestPostWithoutIdempotencyKeyNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(http.StatusServiceUnavailable))
		c := memClient(u, integrations.Config{MaxAttempts: 5})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, svc, strings.NewReader(`{"a":1}`))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || u.Hits() != 1 {
			t.Errorf("status %d after %d hits, want 503 after exactly 1", resp.StatusCode, u.Hits())
		}
		// A network-level failure is not retried either.
		u2 := newUpstream(slow(time.Minute))
		c2 := memClient(u2, integrations.Config{MaxAttempts: 5, AttemptTimeout: time.Second})
		req, _ = http.NewRequestWithContext(t.Context(), http.MethodPatch, svc, strings.NewReader(`{}`))
		_, err = c2.Do(req)
		var te *integrations.TransportError
		if !errors.As(err, &te) || te.Attempts != 1 || te.Reason != nil || u2.Hits() != 1 {
			t.Errorf("err = %v, hits = %d, want one attempt", err, u2.Hits())
		}
	})
}

func TestIdempotencyKeyRetriedWithSameKeyAndBody(t *testing.T) {
	const payload = `{"amount":1200,"currency":"EUR"}`
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"buffered", func() io.Reader { return io.NopCloser(strings.NewReader(payload)) }}, // no GetBody
		{"GetBody", func() io.Reader { return strings.NewReader(payload) }},                // http.NewRequest sets GetBody
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := newUpstream(func(n int, w http.ResponseWriter, _ *http.Request) {
					if n < 3 {
						w.WriteHeader(http.StatusBadGateway)
						return
					}
					w.WriteHeader(http.StatusCreated)
				})
				c := memClient(u, integrations.Config{})
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, svc, tc.body())
				req.Header.Set("Idempotency-Key", "pay-7f3a")
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 201 || u.Hits() != 3 {
					t.Fatalf("status %d after %d hits, want 201 after 3", resp.StatusCode, u.Hits())
				}
				for i := range 3 {
					if u.keys[i] != "pay-7f3a" || u.bodies[i] != payload {
						t.Errorf("attempt %d: key %q body %q", i+1, u.keys[i], u.bodies[i])
					}
				}
			})
		})
	}
}

func TestBodyTooLargeToBufferSentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(http.StatusServiceUnavailable))
		c := memClient(u, integrations.Config{MaxBodyBytes: 8})
		body := strings.Repeat("x", 32)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, svc, io.NopCloser(strings.NewReader(body)))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || u.Hits() != 1 || u.bodies[0] != body {
			t.Errorf("status %d after %d hits, body %q", resp.StatusCode, u.Hits(), u.bodies[0])
		}
	})
}

func TestResponsesReturnedAsIs(t *testing.T) {
	for _, code := range []int{200, 204, 400, 404, 409, 501} {
		synctest.Test(t, func(t *testing.T) {
			u := newUpstream(status(code))
			c := memClient(u, integrations.Config{})
			resp, err := get(t, c, svc)
			if err != nil || resp.StatusCode != code || u.Hits() != 1 {
				t.Fatalf("%d: got %v, %v after %d hits", code, resp, err, u.Hits())
			}
			if n := c.Counts("svc.test"); n.Successes != 1 || n.Failures != 0 {
				t.Errorf("%d counted as %+v, want a breaker success", code, n)
			}
		})
	}
}

func TestCheckRetryPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(http.StatusConflict))
		stop := errors.New("stop")
		c := memClient(u, integrations.Config{CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if resp != nil && resp.StatusCode == http.StatusConflict && resp.Header.Get("X-Final") != "" {
				return false, stop
			}
			if resp != nil && resp.StatusCode == http.StatusConflict {
				return true, nil
			}
			return integrations.DefaultCheckRetry(ctx, resp, err)
		}})
		_, err := get(t, c, svc)
		if !errors.Is(err, integrations.ErrRetriesExhausted) || u.Hits() != 3 {
			t.Fatalf("err = %v after %d hits, want exhausted after 3", err, u.Hits())
		}
	})
}

func TestDefaultCheckRetry(t *testing.T) {
	ctx := t.Context()
	for code, want := range map[int]bool{200: false, 301: false, 400: false, 404: false, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true} {
		got, err := integrations.DefaultCheckRetry(ctx, &http.Response{StatusCode: code}, nil)
		if got != want || err != nil {
			t.Errorf("%d: got %v, %v, want %v", code, got, err, want)
		}
	}
	if got, _ := integrations.DefaultCheckRetry(ctx, nil, io.ErrUnexpectedEOF); !got {
		t.Error("network error not retried")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got, err := integrations.DefaultCheckRetry(cctx, nil, io.ErrUnexpectedEOF); got || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, %v", got, err)
	}
}

func TestIdempotent(t *testing.T) {
	for _, tc := range []struct {
		method, key string
		want        bool
	}{
		{"GET", "", true}, {"HEAD", "", true}, {"OPTIONS", "", true}, {"PUT", "", true},
		{"DELETE", "", true}, {"TRACE", "", true}, {"POST", "", false}, {"PATCH", "", false},
		{"POST", "k", true}, {"PATCH", "k", true},
	} {
		req, _ := http.NewRequest(tc.method, svc, nil)
		if tc.key != "" {
			req.Header.Set("Idempotency-Key", tc.key)
		}
		if got := integrations.Idempotent(req); got != tc.want {
			t.Errorf("%s key=%q: %v, want %v", tc.method, tc.key, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 3 ", 3 * time.Second, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute, true},
		{"Sat Mar  1 12:00:05 2025", 5 * time.Second, true},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"99999999999999999999", 1<<63 - 1, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	} {
		got, ok := integrations.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "Sat, 01 Mar 2025 12:00:30 GMT", "-1", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := integrations.ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("%q: %v %v", s, d, ok)
		}
	})
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(200))
		c := memClient(u, integrations.Config{RateLimit: 2, Burst: 1})
		start := time.Now()
		for range 5 {
			if _, err := get(t, c, svc); err != nil {
				t.Fatal(err)
			}
		}
		if elapsed := time.Since(start); elapsed != 2*time.Second {
			t.Errorf("5 requests at 2/s took %v of fake time, want 2s", elapsed)
		}
		// Another key has its own bucket.
		start = time.Now()
		if _, err := get(t, c, "http://other.test/"); err != nil || time.Since(start) != 0 {
			t.Errorf("other key: %v after %v", err, time.Since(start))
		}
		// A wait that cannot end before the deadline fails at once.
		get(t, c, svc) // spend the token
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc, nil)
		if _, err := c.Do(req); !errors.Is(err, integrations.ErrRateLimited) {
			t.Errorf("err = %v, want ErrRateLimited", err)
		}
	})
}

func TestKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(200))
		c := memClient(u, integrations.Config{})
		req, _ := http.NewRequestWithContext(integrations.WithKey(t.Context(), "payment-service"), http.MethodGet, svc, nil)
		if got := c.Key(req); got != "payment-service" {
			t.Errorf("Key = %q", got)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := c.Counts("payment-service"); n.Successes != 1 {
			t.Errorf("payment-service counts = %+v", n)
		}
		if n := c.Counts("svc.test"); n != (integrations.Counts{}) {
			t.Errorf("host key counted %+v", n)
		}
		c2 := memClient(u, integrations.Config{KeyFunc: func(r *http.Request) string { return "fixed" }})
		get(t, c2, svc)
		if n := c2.Counts("fixed"); n.Successes != 1 {
			t.Errorf("KeyFunc key counts = %+v", n)
		}
		if c2.State("never-seen") != integrations.StateClosed {
			t.Error("unknown key not closed")
		}
	})
}

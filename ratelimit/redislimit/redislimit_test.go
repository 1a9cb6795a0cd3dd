package redislimit_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

func TestAllowBurstThenRefusal(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	lim := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	ctx := t.Context()
	limit := ratelimit.PerHour(3, 3) // one token every 20 minutes

	for i := range 3 {
		res, err := lim.Allow(ctx, "k", limit, 1)
		if err != nil {
			t.Fatal(err)
		}
		wantReset := time.Duration(i+1) * 20 * time.Minute
		if !res.Allowed || res.Remaining != 2-i || res.RetryAfter != 0 || res.Limit != limit ||
			res.ResetAfter > wantReset || res.ResetAfter < wantReset-time.Minute {
			t.Fatalf("request %d: %+v", i+1, res)
		}
	}
	res, err := lim.Allow(ctx, "k", limit, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 19*time.Minute || res.RetryAfter > 20*time.Minute {
		t.Fatalf("fourth request: %+v", res)
	}
	// Another key is independent; cost 0 reads without spending.
	if res, err := lim.Allow(ctx, "other", limit, 0); err != nil || !res.Allowed || res.Remaining != 3 {
		t.Fatalf("other key, cost 0: %+v, %v", res, err)
	}
	if err := lim.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if res, err := lim.Allow(ctx, "k", limit, 3); err != nil || !res.Allowed {
		t.Fatalf("after Reset: %+v, %v", res, err)
	}
}

func TestAllowSharedAcrossClients(t *testing.T) {
	t.Parallel()
	rdb1, prefix := testRedis(t)
	rdb2, _ := testRedis(t)
	a := redislimit.New(rdb1, redislimit.Config{Prefix: prefix})
	b := redislimit.New(rdb2, redislimit.Config{Prefix: prefix})
	other := redislimit.New(rdb2, redislimit.Config{Prefix: prefix + "other:"})
	limit := ratelimit.PerHour(4, 4)
	allowed := 0
	for i := range 10 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		res, err := lim.Allow(t.Context(), "k", limit, 1)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			allowed++
		}
	}
	if allowed != 4 {
		t.Fatalf("two limiters on one Redis allowed %d, want 4", allowed)
	}
	if res, _ := other.Allow(t.Context(), "k", limit, 1); !res.Allowed {
		t.Fatal("another prefix shares the key")
	}
}

func TestAllowInvalidLimit(t *testing.T) {
	t.Parallel()
	lim := deadRedis(t) // validation happens before any round trip
	for _, tc := range []struct {
		limit ratelimit.Limit
		cost  int
	}{{ratelimit.Limit{}, 1}, {ratelimit.PerSecond(1, 2), 3}, {ratelimit.PerSecond(1, 2), -1}} {
		if _, err := lim.Allow(t.Context(), "k", tc.limit, tc.cost); !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("Allow(%+v, %d) = %v, want ErrInvalidLimit", tc.limit, tc.cost, err)
		}
	}
}

func TestAllowRedisDown(t *testing.T) {
	t.Parallel()
	lim := deadRedis(t)
	_, err := lim.Allow(t.Context(), "k", ratelimit.PerSecond(1, 1), 1)
	if err == nil {
		t.Fatal("Allow against a closed port succeeded")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v does not wrap the connection error", err)
	}
	if got := err.Error(); len(got) < 11 || got[:11] != "redislimit:" {
		t.Errorf("error %q is not prefixed with the package name", got)
	}
	if err := lim.Reset(t.Context(), "k"); err == nil {
		t.Fatal("Reset against a closed port succeeded")
	}
}

// TestMatchesMemory runs one sequence of requests on the Redis limiter and
// on ratelimit.Memory, with a burst smaller than the count: both answer
// alike.
func TestMatchesMemory(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	rl := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	mem := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	defer mem.Close()
	limit := ratelimit.PerHour(60, 5) // a token a minute, five at once
	near := func(a, b time.Duration) bool { return (a - b).Abs() < 2*time.Second }
	for i, cost := range []int{1, 2, 0, 1, 2, 1, 5, 1} {
		got, err := rl.Allow(t.Context(), "k", limit, cost)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := mem.Allow(t.Context(), "k", limit, cost)
		if got.Allowed != want.Allowed || got.Remaining != want.Remaining ||
			!near(got.RetryAfter, want.RetryAfter) || !near(got.ResetAfter, want.ResetAfter) {
			t.Fatalf("request %d (cost %d): redis %+v, memory %+v", i, cost, got, want)
		}
	}
}

package ratelimit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/saaskit/saaskit/ratelimit"
)

func newMemory(t testing.TB, c ratelimit.MemoryConfig) *ratelimit.Memory {
	t.Helper()
	if c.SweepInterval == 0 {
		c.SweepInterval = -1
	}
	m := ratelimit.NewMemory(c)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryBurstThenRefill(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newMemory(t, ratelimit.MemoryConfig{Now: c.Now})
	limit := ratelimit.PerMinute(3, 3) // one token every 20s
	ctx := t.Context()

	allow := func(cost int) ratelimit.Result {
		t.Helper()
		res, err := m.Allow(ctx, "k", limit, cost)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := func(got ratelimit.Result, allowed bool, remaining int, reset, retry time.Duration) {
		t.Helper()
		if got.Allowed != allowed || got.Remaining != remaining || got.ResetAfter != reset || got.RetryAfter != retry || got.Limit != limit {
			t.Fatalf("got %+v, want allowed=%v remaining=%d reset=%v retry=%v", got, allowed, remaining, reset, retry)
		}
	}
	want(allow(1), true, 2, 20*time.Second, 0)
	want(allow(1), true, 1, 40*time.Second, 0)
	want(allow(1), true, 0, 60*time.Second, 0)
	want(allow(1), false, 0, 60*time.Second, 20*time.Second)
	c.Advance(10 * time.Second)
	want(allow(1), false, 0, 50*time.Second, 10*time.Second)
	c.Advance(10 * time.Second)
	want(allow(1), true, 0, 60*time.Second, 0)
	c.Advance(time.Hour)
	want(allow(0), true, 3, 0, 0)
	want(allow(3), true, 0, 60*time.Second, 0)
	want(allow(2), false, 0, 60*time.Second, 40*time.Second)
}

func TestMemoryKeysAreIndependent(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	limit := ratelimit.PerHour(1, 1)
	for i := range 100 {
		key := "k" + strconv.Itoa(i)
		if res, _ := m.Allow(t.Context(), key, limit, 1); !res.Allowed {
			t.Fatalf("first request for %s refused", key)
		}
		if res, _ := m.Allow(t.Context(), key, limit, 1); res.Allowed {
			t.Fatalf("second request for %s allowed", key)
		}
	}
	if got := m.Len(); got != 100 {
		t.Fatalf("Len = %d, want 100", got)
	}
}

func TestMemoryLimitChangeKeepsTokens(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now})
	ctx := t.Context()
	free, pro := ratelimit.PerMinute(2, 2), ratelimit.PerMinute(10, 10)
	for range 2 {
		m.Allow(ctx, "tenant", free, 1)
	}
	if res, _ := m.Allow(ctx, "tenant", free, 1); res.Allowed {
		t.Fatal("third request on the free plan allowed")
	}
	// Upgrading raises the burst but does not refill what was spent.
	res, err := m.Allow(ctx, "tenant", pro, 1)
	if err != nil || res.Allowed || res.Limit != pro {
		t.Fatalf("first request after upgrade = %+v, %v; want refused under the new limit", res, err)
	}
	if res.RetryAfter != 6*time.Second {
		t.Fatalf("RetryAfter after upgrade = %v, want 6s (the pro rate)", res.RetryAfter)
	}
}

func TestMemorySweepEvictsIdleKeys(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newMemory(t, ratelimit.MemoryConfig{Now: c.Now, IdleTTL: time.Minute})
	limit := ratelimit.PerHour(2, 2)
	ctx := t.Context()
	m.Allow(ctx, "old", limit, 1)
	m.Allow(ctx, "busy", limit, 1)
	c.Advance(50 * time.Second)
	m.Allow(ctx, "busy", limit, 1)
	m.Allow(ctx, "new", limit, 1)
	c.Advance(20 * time.Second) // old idle 70s, busy and new 20s
	if n := m.Sweep(); n != 1 {
		t.Fatalf("Sweep = %d, want 1", n)
	}
	if got := m.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	// busy kept its state: both its tokens are spent.
	if res, _ := m.Allow(ctx, "busy", limit, 1); res.Allowed {
		t.Fatal("busy was forgotten by the sweep")
	}
	// old starts again with a full bucket.
	if res, _ := m.Allow(ctx, "old", limit, 1); !res.Allowed || res.Remaining != 1 {
		t.Fatalf("old after eviction = %+v, want a full bucket", res)
	}
}

func TestMemoryMaxKeysEvictsLeastRecent(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newMemory(t, ratelimit.MemoryConfig{Now: c.Now, Shards: 1, MaxKeys: 3})
	limit := ratelimit.PerHour(1, 1)
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		m.Allow(ctx, k, limit, 1)
		c.Advance(time.Second)
	}
	m.Allow(ctx, "a", limit, 1) // a is now the most recent; b the least
	m.Allow(ctx, "d", limit, 1) // evicts b
	if got := m.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	// Kept keys have spent their token; b was forgotten and starts full.
	for _, k := range []string{"a", "c", "d", "b"} {
		res, _ := m.Allow(ctx, k, limit, 1)
		if forgotten := k == "b"; res.Allowed != forgotten {
			t.Errorf("key %s: allowed=%v, want %v", k, res.Allowed, forgotten)
		}
	}
}

func TestMemoryConcurrentOneKey(t *testing.T) {
	t.Parallel()
	m := newMemory(t, ratelimit.MemoryConfig{Now: newClock().Now, Shards: 4})
	limit := ratelimit.PerHour(50, 50)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				res, err := m.Allow(context.Background(), "shared", limit, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				}
				// Other keys churn the same shards meanwhile.
				m.Allow(context.Background(), strconv.Itoa(g*1000+i), limit, 1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 50 {
		t.Fatalf("allowed %d requests for one key, want exactly the burst 50", got)
	}
}

func TestMemoryCloseStopsSweeper(t *testing.T) {
	t.Parallel()
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{SweepInterval: time.Hour})
	m.Close()
	m.Close() // idempotent
	if res, err := m.Allow(t.Context(), "k", ratelimit.PerSecond(1, 1), 1); err != nil || !res.Allowed {
		t.Fatalf("Allow after Close = %+v, %v", res, err)
	}
}

func TestMemoryAllowDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	m := newMemory(t, ratelimit.MemoryConfig{})
	ctx := context.Background()
	limit := ratelimit.PerSecond(1e6, 1e6)
	key := "api|user:42|tenant-1"
	m.Allow(ctx, key, limit, 1)
	if n := testing.AllocsPerRun(1000, func() { m.Allow(ctx, key, limit, 1) }); n != 0 {
		t.Fatalf("Allow on an existing key allocates %v times per call, want 0", n)
	}
}

// TestMemoryMillionKeysBounded inserts many distinct keys, lets them go idle
// and checks that a sweep forgets them and gives their memory back.
func TestMemoryMillionKeysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts a million keys")
	}
	n := 1_000_000
	if raceEnabled {
		// The race detector makes each map operation and allocation several
		// times slower and its shadow memory distorts heap figures; a tenth
		// of the keys exercises the same code within the CI time budget.
		n = 100_000
	}
	c := newClock()
	m := newMemory(t, ratelimit.MemoryConfig{Now: c.Now, IdleTTL: time.Minute})
	limit := ratelimit.PerMinute(10, 10)
	ctx := context.Background()

	base := heapAlloc()
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = strconv.AppendInt(append(buf[:0], "api|ip:10.0."...), int64(i), 10)
		if _, err := m.Allow(ctx, string(buf), limit, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Len(); got != n {
		t.Fatalf("Len after inserting = %d, want %d", got, n)
	}
	full := heapAlloc()
	perKey := float64(int64(full)-int64(base)) / float64(n)
	t.Logf("%d keys tracked: heap %.1f MB over baseline, %.0f bytes per key", n, float64(full-base)/1e6, perKey)

	c.Advance(time.Minute + time.Second)
	if evicted := m.Sweep(); evicted != n {
		t.Fatalf("Sweep evicted %d keys, want %d", evicted, n)
	}
	if got := m.Len(); got != 0 {
		t.Fatalf("Len after sweep = %d, want 0", got)
	}
	after := heapAlloc()
	retained := int64(after) - int64(base)
	t.Logf("after sweep: heap %.2f MB over baseline", float64(retained)/1e6)
	if retained > 50<<20 {
		t.Fatalf("heap retained %d bytes after evicting every key, want < 50 MB", retained)
	}
	if full-base < 20*uint64(n) {
		t.Fatalf("heap grew by only %d bytes for %d keys: the measurement is broken", full-base, n)
	}
	runtime.KeepAlive(m)
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := newMemory(b, ratelimit.MemoryConfig{})
	ctx := context.Background()
	limit := ratelimit.PerSecond(1e9, 1e9)
	key := "api|user:42|tenant-1"
	b.ReportAllocs()
	for b.Loop() {
		m.Allow(ctx, key, limit, 1)
	}
}

func BenchmarkMemoryAllowParallel(b *testing.B) {
	m := newMemory(b, ratelimit.MemoryConfig{})
	ctx := context.Background()
	limit := ratelimit.PerSecond(1e9, 1e9)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "api|user:" + strconv.Itoa(i) + "|tenant-1"
		m.Allow(ctx, keys[i], limit, 1)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			m.Allow(ctx, keys[i%len(keys)], limit, 1)
			i++
		}
	})
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	lim := rate.NewLimiter(1e9, 1e9)
	b.ReportAllocs()
	for b.Loop() {
		lim.Allow()
	}
}

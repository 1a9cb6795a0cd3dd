package redislimit_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

// BenchmarkRedisAllow measures Allow against SAASKIT_TEST_REDIS_URL from 16
// concurrent goroutines over 1,000 keys and reports the throughput in ops/s.
func BenchmarkRedisAllow(b *testing.B) {
	rdb, prefix := testRedis(b)
	lim := redislimit.New(rdb, redislimit.Config{Prefix: prefix})
	ctx := context.Background()
	limit := ratelimit.PerSecond(1_000_000, 1_000_000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "api|user:" + strconv.Itoa(i)
	}
	const concurrency = 16
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((concurrency + procs - 1) / procs)
	var next, failures atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1))
		for pb.Next() {
			if _, err := lim.Allow(ctx, keys[i%len(keys)], limit, 1); err != nil {
				failures.Add(1)
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d calls failed", n, b.N)
	}
}

package redislimit_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

// testRedis returns a new client on SAASKIT_TEST_REDIS_URL and a key prefix
// unique to this test, or skips the test when the variable is unset.
func testRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("SAASKIT_TEST_REDIS_URL")
	if url == "" {
		t.Skip("SAASKIT_TEST_REDIS_URL not set")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("SAASKIT_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at SAASKIT_TEST_REDIS_URL: %v", err)
	}
	return rdb, uniquePrefix(t)
}

func uniquePrefix(t testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "saaskit-test:" + t.Name() + ":" + hex.EncodeToString(b) + ":"
}

// deadRedis returns a limiter whose Redis is a closed port: every call fails
// at once.
func deadRedis(t testing.TB) *redislimit.Limiter {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:         "127.0.0.1:1",
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
	})
	t.Cleanup(func() { rdb.Close() })
	return redislimit.New(rdb, redislimit.Config{})
}

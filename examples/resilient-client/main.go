// Command resilient-client calls a flaky upstream through saaskit's resilient
// HTTP client, with package integrations alone.
//
// It shows integrations.Client against a local test server standing in for
// an orders service: a call that fails twice with 503 and succeeds on the
// third attempt, then an outage in which the circuit breaker opens and
// further calls fail at once with integrations.ErrCircuitOpen without
// reaching the upstream, and the recovery through a half-open probe once the
// upstream is back. An integrations.Observer prints every attempt and every
// breaker state change, as a health check or metrics exporter would see
// them.
//
// Run it with:
//
//	go run ./examples/resilient-client
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// openTimeout is how long the breaker stays open before it lets a probe
// through. Short here so that the demo ends quickly; the default is 30s.
const openTimeout = 100 * time.Millisecond

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// upstream is a fake orders service whose health the demo switches.
type upstream struct {
	failNext atomic.Int32 // answer 503 to this many requests
	down     atomic.Bool  // answer 503 to every request
	hits     atomic.Int32
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	if u.down.Load() || u.failNext.Add(-1) >= 0 {
		http.Error(w, `{"error":"temporarily unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"orders":[{"id":"ord_1","total":4200}]}`)
}

func run(w io.Writer) error {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()

	c := integrations.New(integrations.Config{
		// Trip once 4 attempts in the window have finished and at least half
		// of them failed (defaults: 10 and 0.5).
		MinRequests: 4,
		OpenTimeout: openTimeout,
		// Retries: 3 attempts (the default), backoff from 10ms with jitter.
		InitialInterval: 10 * time.Millisecond,
		Observer: integrations.ObserverFuncs{
			Attempt: func(a integrations.AttemptInfo) {
				switch {
				case a.Err != nil:
					fmt.Fprintf(w, "  attempt %d %s %s: %v\n", a.Attempt, a.Method, a.Path, a.Err)
				case a.Retried:
					fmt.Fprintf(w, "  attempt %d %s %s: %d, retrying\n", a.Attempt, a.Method, a.Path, a.StatusCode)
				default:
					fmt.Fprintf(w, "  attempt %d %s %s: %d\n", a.Attempt, a.Method, a.Path, a.StatusCode)
				}
			},
			StateChange: func(key string, from, to integrations.State) {
				fmt.Fprintf(w, "  breaker %s: %s -> %s\n", key, from, to)
			},
		},
	})
	// Name the upstream: its breaker and rate limit are kept under this key.
	ctx := integrations.WithKey(context.Background(), "orders-service")

	call := func(label string) error {
		fmt.Fprintf(w, "%s\n", label)
		before := up.hits.Load()
		var out struct {
			Orders []struct {
				ID    string `json:"id"`
				Total int    `json:"total"`
			} `json:"orders"`
		}
		err := c.GetJSON(ctx, srv.URL+"/v1/orders", &out)
		var se *integrations.StatusError
		switch {
		case err == nil:
			fmt.Fprintf(w, "  => %d orders, first %s\n", len(out.Orders), out.Orders[0].ID)
		case errors.Is(err, integrations.ErrCircuitOpen):
			fmt.Fprintf(w, "  => refused by the breaker (ErrCircuitOpen); upstream requests in this call: %d\n", up.hits.Load()-before)
		case errors.As(err, &se):
			fmt.Fprintf(w, "  => gave up: status %d after %d attempts (ErrRetriesExhausted=%v)\n",
				se.StatusCode, se.Attempts, errors.Is(err, integrations.ErrRetriesExhausted))
		default:
			return err
		}
		return nil
	}

	up.failNext.Store(2)
	if err := call("== 1. the upstream fails twice, then answers"); err != nil {
		return err
	}
	up.down.Store(true)
	if err := call("== 2. outage: the breaker opens"); err != nil {
		return err
	}
	for i := 3; i <= 4; i++ {
		if err := call(fmt.Sprintf("== %d. while open, calls fail fast", i)); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "state: %s\n", c.State("orders-service"))

	up.down.Store(false)
	// Wait out the open period, as callers do between their own requests.
	time.Sleep(openTimeout + 20*time.Millisecond)
	if err := call("== 5. the upstream is back: a probe closes the breaker"); err != nil {
		return err
	}
	fmt.Fprintf(w, "state: %s\n", c.State("orders-service"))
	return nil
}

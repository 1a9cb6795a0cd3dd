package integrations_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// TestOutage runs ten logical GETs a second against an upstream that turns
// faulty after 10s: every request fails, or half of them at random (fixed
// seed). With every default, in fake time, it logs how long the breaker
// took to open after the outage began and the share of logical calls made
// during the outage that still succeeded.
func TestOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    float64
	}{
		{"total", 1},
		{"half", 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const healthy, outage, every = 10 * time.Second, 60 * time.Second, 100 * time.Millisecond
				var (
					faulty  atomic.Bool
					up      = newFlaky(tc.p)
					mu      sync.Mutex
					opened  []time.Time
					upHits  atomic.Int32
					handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						upHits.Add(1)
						if faulty.Load() {
							up.ServeHTTP(w, r)
							return
						}
						w.WriteHeader(http.StatusOK)
					})
				)
				c := memClient(handler, integrations.Config{Observer: integrations.ObserverFuncs{
					StateChange: func(_ string, _, to integrations.State) {
						if to == integrations.StateOpen {
							mu.Lock()
							opened = append(opened, time.Now())
							mu.Unlock()
						}
					},
				}})

				start := time.Now()
				var wg sync.WaitGroup
				var calls, ok atomic.Int32
				var healthyHits int32
				for time.Since(start) < healthy+outage {
					during := time.Since(start) >= healthy
					if during && !faulty.Load() {
						synctest.Wait() // the healthy calls are done
						healthyHits = upHits.Load()
						faulty.Store(true)
					}
					wg.Go(func() {
						resp, err := get(t, c, "http://flaky.test/")
						if during {
							calls.Add(1)
							if err == nil && resp.StatusCode == 200 {
								ok.Add(1)
							}
						}
					})
					time.Sleep(every)
				}
				wg.Wait()

				mu.Lock()
				defer mu.Unlock()
				share := float64(ok.Load()) / float64(calls.Load())
				if len(opened) == 0 {
					t.Logf("p=%.1f: breaker never opened; %d of %d logical calls succeeded (%.3f), %d upstream requests during the outage",
						tc.p, ok.Load(), calls.Load(), share, upHits.Load()-healthyHits)
				} else {
					t.Logf("p=%.1f: breaker opened %v after the outage began (opened %d times); %d of %d logical calls succeeded (%.3f), %d upstream requests during the outage",
						tc.p, opened[0].Sub(start.Add(healthy)), len(opened), ok.Load(), calls.Load(), share, upHits.Load()-healthyHits)
				}
				if tc.p == 1 {
					if len(opened) == 0 {
						t.Fatal("breaker never opened during a total outage")
					}
					if ok.Load() != 0 {
						t.Errorf("%d calls succeeded during a total outage", ok.Load())
					}
					// Open 30s, probe, open again: far fewer upstream requests
					// than the 600 calls × 3 attempts sent without a breaker
					// (opening takes about 100 failures: the window still
					// holds the 100 successes of the healthy period).
					if n := upHits.Load() - healthyHits; n > 200 {
						t.Errorf("%d upstream requests: the breaker did not shed load", n)
					}
				}
			})
		})
	}
}

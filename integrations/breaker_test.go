package integrations_test

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// switchable answers with the status stored in code.
type switchable struct{ code int }

func (s *switchable) serve(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(s.code) }

func breakerClient(u *upstream, rec *recorder) *integrations.Client {
	return memClient(u, integrations.Config{MaxAttempts: 1, Observer: rec}) // one attempt per call: easy counting
}

// tripBreaker sends 10 failing calls (MinRequests) and checks that the
// breaker opens on the last one.
func tripBreaker(t *testing.T, c *integrations.Client, sw *switchable) {
	t.Helper()
	sw.code = http.StatusInternalServerError
	for i := range 10 {
		if st := c.State("svc.test"); st != integrations.StateClosed {
			t.Fatalf("breaker %s after %d failures, below MinRequests", st, i)
		}
		get(t, c, svc)
	}
	if st := c.State("svc.test"); st != integrations.StateOpen {
		t.Fatalf("breaker %s after 10 failures, want open", st)
	}
}

func TestBreakerOpensOnFailureRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &switchable{}
		u := newUpstream(sw.serve)
		rec := &recorder{}
		c := breakerClient(u, rec)
		tripBreaker(t, c, sw)
		if got := rec.Changes(); !slices.Equal(got, []string{"svc.test:closed->open"}) {
			t.Errorf("state changes = %q", got)
		}

		hits := u.Hits()
		start := time.Now()
		for range 5 {
			_, err := get(t, c, svc)
			if !errors.Is(err, integrations.ErrCircuitOpen) {
				t.Fatalf("err = %v, want ErrCircuitOpen", err)
			}
		}
		if u.Hits() != hits || time.Since(start) != 0 {
			t.Errorf("open breaker let %d requests through in %v", u.Hits()-hits, time.Since(start))
		}
		if a := rec.Attempts(); !errors.Is(a[len(a)-1].Err, integrations.ErrCircuitOpen) {
			t.Errorf("observer did not see the refusal: %+v", a[len(a)-1])
		}
	})
}

func TestBreakerStaysClosedBelowRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(func(n int, w http.ResponseWriter, _ *http.Request) {
			if n%5 == 0 || n%5 == 2 { // 40% failures
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusNotFound) // a 4xx is a success for the breaker
		})
		c := breakerClient(u, &recorder{})
		for range 50 {
			get(t, c, svc)
		}
		if st, n := c.State("svc.test"), c.Counts("svc.test"); st != integrations.StateClosed || n.Failures != 20 || n.Successes != 30 {
			t.Errorf("state %s counts %+v, want closed with 20/50 failures", st, n)
		}
		// At exactly the ratio (half) it trips.
		u2 := newUpstream(func(n int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader([]int{502, 200}[n%2]) // the tenth call fails
		})
		c2 := breakerClient(u2, &recorder{})
		for range 10 {
			get(t, c2, svc)
		}
		if st := c2.State("svc.test"); st != integrations.StateOpen {
			t.Errorf("state %s after 5 failures of 10, want open", st)
		}
	})
}

func TestBreakerWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &switchable{code: 500}
		u := newUpstream(sw.serve)
		c := breakerClient(u, &recorder{})
		for range 9 {
			get(t, c, svc)
		}
		time.Sleep(integrations.DefaultWindow) // the nine failures leave the window
		get(t, c, svc)
		if st, n := c.State("svc.test"), c.Counts("svc.test"); st != integrations.StateClosed || n.Failures != 1 {
			t.Errorf("state %s counts %+v, want closed with one failure in the window", st, n)
		}
	})
}

func TestBreakerHalfOpenProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &switchable{}
		u := newUpstream(sw.serve)
		rec := &recorder{}
		c := breakerClient(u, rec)
		tripBreaker(t, c, sw)

		time.Sleep(integrations.DefaultOpenTimeout - time.Millisecond)
		if st := c.State("svc.test"); st != integrations.StateOpen {
			t.Fatalf("state %s before OpenTimeout", st)
		}
		time.Sleep(2 * time.Millisecond)
		if st := c.State("svc.test"); st != integrations.StateHalfOpen {
			t.Fatalf("state %s after OpenTimeout, want half-open", st)
		}

		// A failed probe opens it again.
		hits := u.Hits()
		if resp, err := get(t, c, svc); err == nil && resp.StatusCode != 500 {
			t.Fatalf("probe got %v, %v", resp, err)
		}
		if st := c.State("svc.test"); st != integrations.StateOpen || u.Hits() != hits+1 {
			t.Fatalf("state %s after failed probe (%d hits), want open", st, u.Hits()-hits)
		}
		if _, err := get(t, c, svc); !errors.Is(err, integrations.ErrCircuitOpen) {
			t.Fatalf("err = %v after failed probe, want ErrCircuitOpen", err)
		}

		// A successful probe closes it.
		time.Sleep(integrations.DefaultOpenTimeout + time.Millisecond)
		sw.code = 200
		if resp, err := get(t, c, svc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("probe got %v, %v", resp, err)
		}
		if st := c.State("svc.test"); st != integrations.StateClosed {
			t.Fatalf("state %s after a successful probe, want closed", st)
		}
		want := []string{
			"svc.test:closed->open", "svc.test:open->half-open", "svc.test:half-open->open",
			"svc.test:open->half-open", "svc.test:half-open->closed",
		}
		if got := rec.Changes(); !slices.Equal(got, want) {
			t.Errorf("state changes = %q, want %q", got, want)
		}
	})
}

func TestBreakerProbeBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sw := &switchable{}
		release := make(chan struct{})
		u := newUpstream(func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 11 { // the probe
				<-release
			}
			sw.serve(n, w, r)
		})
		c := breakerClient(u, &recorder{})
		tripBreaker(t, c, sw)
		time.Sleep(integrations.DefaultOpenTimeout + time.Millisecond)
		sw.code = 200

		probe := make(chan error)
		go func() {
			_, err := get(t, c, svc)
			probe <- err
		}()
		synctest.Wait() // the probe is in flight
		if _, err := get(t, c, svc); !errors.Is(err, integrations.ErrCircuitOpen) {
			t.Errorf("second request during the probe: %v, want ErrCircuitOpen", err)
		}
		close(release)
		if err := <-probe; err != nil {
			t.Fatal(err)
		}
		if u.Hits() != 11 || c.State("svc.test") != integrations.StateClosed {
			t.Errorf("hits %d state %s", u.Hits(), c.State("svc.test"))
		}
	})
}

func TestBreakerOpensDuringRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUpstream(status(http.StatusBadGateway))
		c := memClient(u, integrations.Config{MinRequests: 2, MaxAttempts: 5})
		_, err := get(t, c, svc)
		if !errors.Is(err, integrations.ErrCircuitOpen) || u.Hits() != 2 {
			t.Fatalf("err = %v after %d hits, want ErrCircuitOpen after 2", err, u.Hits())
		}
	})
}

func TestStateString(t *testing.T) {
	for s, want := range map[integrations.State]string{
		integrations.StateClosed: "closed", integrations.StateHalfOpen: "half-open", integrations.StateOpen: "open", 7: "unknown",
	} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}

package integrations

import (
	"errors"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"
)

// State is the state of a key's circuit breaker.
type State int

// The breaker states. The zero value is StateClosed.
const (
	// StateClosed lets requests through and counts their outcomes.
	StateClosed State = iota
	// StateHalfOpen lets a few probe requests through after OpenTimeout;
	// successful probes close the breaker, a failed one opens it again.
	StateHalfOpen
	// StateOpen refuses requests at once with [ErrCircuitOpen].
	StateOpen
)

// String returns "closed", "half-open" or "open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half-open"
	case StateOpen:
		return "open"
	default:
		return "unknown"
	}
}

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return StateHalfOpen
	case gobreaker.StateOpen:
		return StateOpen
	default:
		return StateClosed
	}
}

// Counts are the outcomes a breaker has counted in its current window (when
// closed) or since it went half-open.
type Counts struct {
	// Requests counts requests let through, including those still running.
	Requests uint32
	// Successes and Failures count finished attempts.
	Successes, Failures uint32
	// Excluded counts attempts that ended because the caller cancelled.
	Excluded uint32
	// ConsecutiveSuccesses and ConsecutiveFailures count the latest run.
	ConsecutiveSuccesses, ConsecutiveFailures uint32
}

// endpoint holds what the client keeps per key.
type endpoint struct {
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	limiter *rate.Limiter // nil when unlimited
}

// Outcomes reported to a breaker.
var (
	errFailure  = errors.New("failure")
	errExcluded = errors.New("excluded")
)

func (c *Client) endpoint(key string) *endpoint {
	if ep, ok := c.endpoints.Load(key); ok {
		return ep.(*endpoint)
	}
	ep := &endpoint{cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](c.breakerSettings(key))}
	if c.cfg.RateLimit != 0 && c.cfg.RateLimit != rate.Inf {
		ep.limiter = rate.NewLimiter(c.cfg.RateLimit, c.cfg.Burst)
	}
	actual, _ := c.endpoints.LoadOrStore(key, ep)
	return actual.(*endpoint)
}

func (c *Client) breakerSettings(key string) gobreaker.Settings {
	minRequests, ratio := c.cfg.MinRequests, c.cfg.FailureRatio
	st := gobreaker.Settings{
		Name:         key,
		MaxRequests:  c.cfg.HalfOpenMaxRequests,
		Interval:     c.cfg.Window,
		BucketPeriod: c.cfg.Window / windowBuckets,
		Timeout:      c.cfg.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			done := n.TotalSuccesses + n.TotalFailures
			return done >= minRequests && float64(n.TotalFailures) >= ratio*float64(done)
		},
		IsExcluded: func(err error) bool { return err == errExcluded },
	}
	if obs := c.cfg.Observer; obs != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) {
			obs.OnStateChange(name, fromGobreaker(from), fromGobreaker(to))
		}
	}
	return st
}

// State returns the state of key's breaker; StateClosed for a key the client
// has not seen. It is safe for concurrent use.
func (c *Client) State(key string) State {
	ep, ok := c.endpoints.Load(key)
	if !ok {
		return StateClosed
	}
	return fromGobreaker(ep.(*endpoint).cb.State())
}

// Counts returns the counts of key's breaker; zero for a key the client has
// not seen. It is safe for concurrent use.
func (c *Client) Counts(key string) Counts {
	ep, ok := c.endpoints.Load(key)
	if !ok {
		return Counts{}
	}
	// State first: it rolls the window and moves open to half-open.
	cb := ep.(*endpoint).cb
	cb.State()
	n := cb.Counts()
	return Counts{
		Requests:             n.Requests,
		Successes:            n.TotalSuccesses,
		Failures:             n.TotalFailures,
		Excluded:             n.TotalExclusions,
		ConsecutiveSuccesses: n.ConsecutiveSuccesses,
		ConsecutiveFailures:  n.ConsecutiveFailures,
	}
}

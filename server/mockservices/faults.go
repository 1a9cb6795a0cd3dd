package mockservices

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Faults are the failures a mock service injects. The zero value injects
// none. Rates are probabilities between 0 and 1, drawn per request (or per
// webhook) from the service's seeded source, in the order Down, Timeout,
// RateLimit, Error.
type Faults struct {
	// Down answers every API request, health check included, with 503.
	Down bool
	// ErrorRate is the share of API requests answered 500.
	ErrorRate float64
	// RateLimitRate is the share of API requests answered 429 with a
	// Retry-After of RetryAfter.
	RateLimitRate float64
	// RetryAfter is the Retry-After of a 429, in whole seconds; zero means
	// one second.
	RetryAfter time.Duration
	// TimeoutRate is the share of API requests that never answer: the
	// handler waits until the caller gives up (its request context ends).
	TimeoutRate float64
	// Latency is added before every API answer.
	Latency time.Duration
	// DropWebhookRate is the share of webhooks that are never sent.
	DropWebhookRate float64
}

// faultState holds a service's faults and its random source.
type faultState struct {
	mu     sync.Mutex
	faults Faults
	rnd    *rand.Rand
}

func newFaultState(f Faults, seed uint64) *faultState {
	return &faultState{faults: f, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// draw reports whether an event of probability p happens.
func (s *faultState) draw(p float64) bool {
	if p <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Float64() < p
}

// hex returns n random bytes as hex.
func (s *faultState) hex(n int) string {
	const digits = "0123456789abcdef"
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = digits[s.rnd.IntN(16)]
	}
	return string(b)
}

// dropWebhook reports whether the next webhook is dropped.
func (s *faultState) dropWebhook() bool {
	return s.draw(s.get().DropWebhookRate)
}

// inject runs the API faults of one request; it reports whether it answered
// the request itself.
func (s *faultState) inject(w http.ResponseWriter, r *http.Request, health bool) bool {
	f := s.get()
	if f.Down {
		writeError(w, http.StatusServiceUnavailable, "service down (injected)")
		return true
	}
	if health {
		return false
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch {
	case s.draw(f.TimeoutRate):
		<-r.Context().Done()
		return true
	case s.draw(f.RateLimitRate):
		ra := max(int(f.RetryAfter/time.Second), 1)
		w.Header().Set("Retry-After", strconv.Itoa(ra))
		writeError(w, http.StatusTooManyRequests, "rate limited (injected)")
		return true
	case s.draw(f.ErrorRate):
		writeError(w, http.StatusInternalServerError, "internal error (injected)")
		return true
	}
	return false
}

// serveAdmin answers GET and PUT /admin/faults.
func (s *faultState) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut, http.MethodPost:
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		if !validRate(f.ErrorRate) || !validRate(f.RateLimitRate) || !validRate(f.TimeoutRate) ||
			!validRate(f.DropWebhookRate) || f.Latency < 0 || f.RetryAfter < 0 {
			writeError(w, http.StatusBadRequest, "faults: rates must be between 0 and 1, durations not negative")
			return
		}
		s.set(f)
	default:
		w.Header().Set("Allow", "GET, PUT")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	writeJSON(w, http.StatusOK, s.get())
}

func validRate(p float64) bool { return p >= 0 && p <= 1 }

// faultsJSON is Faults on the wire, with durations as strings ("250ms").
type faultsJSON struct {
	Down            bool    `json:"down"`
	ErrorRate       float64 `json:"error_rate"`
	RateLimitRate   float64 `json:"rate_limit_rate"`
	RetryAfter      string  `json:"retry_after"`
	TimeoutRate     float64 `json:"timeout_rate"`
	Latency         string  `json:"latency"`
	DropWebhookRate float64 `json:"drop_webhook_rate"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{Down: f.Down, ErrorRate: f.ErrorRate, RateLimitRate: f.RateLimitRate,
		RetryAfter: f.RetryAfter.String(), TimeoutRate: f.TimeoutRate, Latency: f.Latency.String(),
		DropWebhookRate: f.DropWebhookRate})
}

// UnmarshalJSON reads durations as Go duration strings ("250ms", "2s");
// absent fields are zero.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Faults{Down: j.Down, ErrorRate: j.ErrorRate, RateLimitRate: j.RateLimitRate, TimeoutRate: j.TimeoutRate,
		DropWebhookRate: j.DropWebhookRate}
	var err error
	if j.RetryAfter != "" {
		if out.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("mockservices: retry_after: %w", err)
		}
	}
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("mockservices: latency: %w", err)
		}
	}
	*f = out
	return nil
}

package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	resilient "github.com/saaskit/saaskit/integrations"
)

// Health states of a provider.
const (
	HealthUnknown  = "unknown"  // no call made yet
	HealthHealthy  = "healthy"  // calls succeed
	HealthDegraded = "degraded" // some calls fail or are slow, or the breaker is probing
	HealthDown     = "down"     // the breaker is open or every recent call failed
)

// Health thresholds.
const (
	// healthWindow is how far back error rate and latency are computed.
	healthWindow = 5 * time.Minute
	// healthMaxSamples bounds the samples kept per provider.
	healthMaxSamples = 1000
	// downAfter is the number of failed attempts in a row that make a
	// provider down before its breaker opens.
	downAfter = 3
	// degradedErrorRate is the error rate in the window that makes a
	// provider degraded, once it holds degradedMinSamples attempts.
	degradedErrorRate  = 0.1
	degradedMinSamples = 5
	// slowP95 is the 95th percentile latency above which a provider is
	// degraded.
	slowP95 = 2 * time.Second
)

// ProviderHealth is the health of one provider as the API shows it.
type ProviderHealth struct {
	Provider            string     `json:"provider"`
	State               string     `json:"state" enum:"unknown,healthy,degraded,down"`
	Since               *time.Time `json:"since" doc:"When the provider entered this state."`
	Breaker             string     `json:"breaker" enum:"closed,half-open,open"`
	ErrorRate           float64    `json:"error_rate" doc:"Share of failed attempts in the last five minutes."`
	Attempts            int        `json:"attempts" doc:"Attempts in the last five minutes."`
	P50Ms               float64    `json:"p50_ms"`
	P95Ms               float64    `json:"p95_ms"`
	LastSuccess         *time.Time `json:"last_success"`
	LastFailure         *time.Time `json:"last_failure"`
	LastError           string     `json:"last_error,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	ObservedAt          *time.Time `json:"observed_at" doc:"When the replica that reports these figures last observed the provider (an attempt or a breaker change)."`
	ObservedBy          string     `json:"observed_by,omitempty" doc:"The replica that observed them."`
}

type healthSample struct {
	at time.Time
	d  time.Duration
	ok bool
}

type providerHealth struct {
	breaker resilient.State
	// samples are the attempts in the window, oldest first; failed and
	// slow count those among them that failed or took longer than slowP95,
	// so that an attempt costs no scan of the window.
	samples     []healthSample
	failed      int
	slow        int
	lastSuccess *time.Time
	lastFailure *time.Time
	lastError   string
	consecutive int
	state       string
	since       *time.Time
	// observed is the time of the last attempt or breaker change; dirty
	// says the stored snapshot lags behind a state or breaker change or
	// an active check.
	observed time.Time
	dirty    bool
}

// healthChange is a state change waiting to be written to the history.
type healthChange struct {
	provider, from, to, reason string
	errorRate                  float64
	p95                        time.Duration
	at                         time.Time
}

// healthTracker is the resilient.Observer of the server's outbound
// client: it keeps, per provider (the client key), the breaker state and a
// sliding window of attempts, derives the health state from them, exports
// metrics and queues state changes for the history table.
//
// The metrics (/metrics) are per replica: each process exports what its
// own calls observed, and a monitoring system aggregates over replicas.
// The health API is shared: the tracker's snapshot of a provider is stored
// in integration_health when its state or breaker changes and after each
// active check (not per attempt), and every replica answers with the
// fresher of its own snapshot and the stored one (see
// Server.providerHealth), whichever replica ran the checks.
type healthTracker struct {
	now func() time.Time
	log *slog.Logger

	mu        sync.Mutex
	providers map[string]*providerHealth
	pending   []healthChange

	stateGauge   *prometheus.GaugeVec
	breakerGauge *prometheus.GaugeVec
	errorRate    *prometheus.GaugeVec
	latency      *prometheus.HistogramVec
	attempts     *prometheus.CounterVec
}

var _ resilient.Observer = (*healthTracker)(nil)

func newHealthTracker(reg prometheus.Registerer, now func() time.Time, log *slog.Logger) *healthTracker {
	h := &healthTracker{now: now, log: log, providers: map[string]*providerHealth{},
		stateGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "saaskit_integration_health",
			Help: "Health of each integration provider: 1 for its current state, 0 for the others."}, []string{"provider", "state"}),
		breakerGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "saaskit_integration_breaker_state",
			Help: "Circuit breaker of each provider: 0 closed, 1 half-open, 2 open."}, []string{"provider"}),
		errorRate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "saaskit_integration_error_rate",
			Help: "Share of failed attempts to each provider over the last five minutes."}, []string{"provider"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "saaskit_integration_request_duration_seconds",
			Help: "Duration of attempts to each provider.", Buckets: prometheus.DefBuckets}, []string{"provider"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "saaskit_integration_attempts_total",
			Help: "Attempts to each provider by outcome (ok, error, refused by the open breaker)."}, []string{"provider", "outcome"}),
	}
	reg.MustRegister(h.stateGauge, h.breakerGauge, h.errorRate, h.latency, h.attempts)
	for _, p := range providerNames() {
		h.get(p)
		h.setStateGauge(p, HealthUnknown)
	}
	return h
}

// get returns the provider's record; it holds h.mu or runs before sharing.
func (h *healthTracker) get(provider string) *providerHealth {
	ph, ok := h.providers[provider]
	if !ok {
		ph = &providerHealth{state: HealthUnknown}
		h.providers[provider] = ph
	}
	return ph
}

// attemptOK reports whether an attempt counts as a success for health:
// a response other than 429 or 5xx.
func attemptOK(info resilient.AttemptInfo) bool {
	return info.Err == nil && info.StatusCode != 429 && info.StatusCode < 500
}

// OnAttempt implements resilient.Observer.
func (h *healthTracker) OnAttempt(info resilient.AttemptInfo) {
	if errors.Is(info.Err, resilient.ErrCircuitOpen) {
		h.attempts.WithLabelValues(info.Key, "refused").Inc()
		return
	}
	if errors.Is(info.Err, context.Canceled) {
		return // the caller gave up: says nothing of the upstream
	}
	now := h.now()
	ok := attemptOK(info)
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	h.attempts.WithLabelValues(info.Key, outcome).Inc()
	h.latency.WithLabelValues(info.Key).Observe(info.Duration.Seconds())
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.get(info.Key)
	ph.add(healthSample{at: now, d: info.Duration, ok: ok})
	ph.observed = now
	t := now
	if ok {
		ph.lastSuccess, ph.consecutive = &t, 0
	} else {
		ph.lastFailure = &t
		ph.consecutive++
		switch {
		case info.Err != nil:
			ph.lastError = info.Err.Error()
		default:
			ph.lastError = "status " + itoa(info.StatusCode)
		}
	}
	h.evaluate(info.Key, ph, now)
}

// OnStateChange implements resilient.Observer.
func (h *healthTracker) OnStateChange(key string, from, to resilient.State) {
	h.breakerGauge.WithLabelValues(key).Set(float64(to))
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.get(key)
	ph.breaker = to
	ph.observed, ph.dirty = h.now(), true
	h.log.Info("integrations: breaker", slog.String("provider", key), slog.String("from", from.String()), slog.String("to", to.String()))
	h.evaluate(key, ph, h.now())
}

func (ph *providerHealth) add(smp healthSample) {
	ph.samples = append(ph.samples, smp)
	if !smp.ok {
		ph.failed++
	}
	if smp.d > slowP95 {
		ph.slow++
	}
	if len(ph.samples) > healthMaxSamples {
		ph.drop(len(ph.samples) - healthMaxSamples)
	}
}

// drop forgets the k oldest samples.
func (ph *providerHealth) drop(k int) {
	for _, smp := range ph.samples[:k] {
		if !smp.ok {
			ph.failed--
		}
		if smp.d > slowP95 {
			ph.slow--
		}
	}
	ph.samples = ph.samples[k:]
}

// prune forgets the samples older than the window; it returns the error
// rate, the attempt count and the share of slow attempts in the window.
func (ph *providerHealth) prune(now time.Time) (rate float64, n int, slowShare float64) {
	cut := now.Add(-healthWindow)
	i, _ := slices.BinarySearchFunc(ph.samples, cut, func(s healthSample, t time.Time) int { return s.at.Compare(t) })
	ph.drop(i)
	n = len(ph.samples)
	if n == 0 {
		return 0, 0, 0
	}
	return float64(ph.failed) / float64(n), n, float64(ph.slow) / float64(n)
}

// percentiles returns p50 and p95 of the window's durations.
func (ph *providerHealth) percentiles() (p50, p95 time.Duration) {
	n := len(ph.samples)
	if n == 0 {
		return 0, 0
	}
	ds := make([]time.Duration, n)
	for i, s := range ph.samples {
		ds[i] = s.d
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[min(n-1, int(p*float64(n)))] }
	return pct(0.50), pct(0.95)
}

// evaluate recomputes the provider's state and queues a change; it holds
// h.mu.
func (h *healthTracker) evaluate(provider string, ph *providerHealth, now time.Time) {
	rate, n, slowShare := ph.prune(now)
	h.errorRate.WithLabelValues(provider).Set(rate)
	state, reason := HealthHealthy, ""
	switch {
	case ph.breaker == resilient.StateOpen:
		state, reason = HealthDown, "circuit breaker open"
	case ph.consecutive >= downAfter:
		state, reason = HealthDown, itoa(ph.consecutive)+" failed attempts in a row: "+ph.lastError
	case ph.breaker == resilient.StateHalfOpen:
		state, reason = HealthDegraded, "circuit breaker half-open"
	case n >= degradedMinSamples && rate >= degradedErrorRate:
		state, reason = HealthDegraded, "error rate "+percent(rate)
	case n >= degradedMinSamples && slowShare > 0.05:
		state, reason = HealthDegraded, "p95 latency above "+slowP95.String()
	case ph.lastSuccess == nil && ph.lastFailure == nil:
		state = HealthUnknown
	}
	if state == ph.state {
		return
	}
	from := ph.state
	t := now
	ph.state, ph.since = state, &t
	ph.dirty = true
	h.setStateGauge(provider, state)
	_, p95 := ph.percentiles() // only on a change
	h.pending = append(h.pending, healthChange{provider: provider, from: from, to: state, reason: reason,
		errorRate: rate, p95: p95, at: now})
	level := slog.LevelInfo
	if state == HealthDown {
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, "integrations: health changed", slog.String("provider", provider),
		slog.String("from", from), slog.String("to", state), slog.String("reason", reason))
}

func (h *healthTracker) setStateGauge(provider, state string) {
	for _, s := range []string{HealthUnknown, HealthHealthy, HealthDegraded, HealthDown} {
		v := 0.0
		if s == state {
			v = 1
		}
		h.stateGauge.WithLabelValues(provider, s).Set(v)
	}
}

// snapshot returns the health of the provider now.
func (h *healthTracker) snapshot(provider string) ProviderHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked(provider, h.get(provider))
}

// snapshotLocked returns the health of the provider now; it holds h.mu.
func (h *healthTracker) snapshotLocked(provider string, ph *providerHealth) ProviderHealth {
	now := h.now()
	h.evaluate(provider, ph, now) // the window moves on without attempts
	rate, n, _ := ph.prune(now)
	p50, p95 := ph.percentiles()
	out := ProviderHealth{Provider: provider, State: ph.state, Since: ph.since, Breaker: ph.breaker.String(),
		ErrorRate: rate, Attempts: n, P50Ms: ms(p50), P95Ms: ms(p95), LastSuccess: ph.lastSuccess,
		LastFailure: ph.lastFailure, LastError: ph.lastError, ConsecutiveFailures: ph.consecutive}
	if !ph.observed.IsZero() {
		t := ph.observed
		out.ObservedAt = &t
	}
	return out
}

// markDirty asks for the providers' snapshots to be stored at the next
// flush, as after an active check.
func (h *healthTracker) markDirty(providers ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range providers {
		h.get(p).dirty = true
	}
}

// takeDirty returns the snapshots of the providers whose state changed
// or that were checked since the last call, and clears their marks. A
// provider never observed here has nothing to store.
func (h *healthTracker) takeDirty() []ProviderHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ProviderHealth
	for name, ph := range h.providers {
		if !ph.dirty {
			continue
		}
		ph.dirty = false
		if ph.observed.IsZero() {
			continue
		}
		out = append(out, h.snapshotLocked(name, ph))
		ph.dirty = false // snapshotLocked may mark it again
	}
	return out
}

// takePending returns and clears the queued state changes.
func (h *healthTracker) takePending() []healthChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.pending
	h.pending = nil
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percent(r float64) string { return itoa(int(r*100+0.5)) + "%" }

func itoa(n int) string { return strconv.Itoa(n) }

// healthHistory is a stored state change of a provider.
type healthHistory struct {
	bun.BaseModel `bun:"table:integration_health_history,alias:ihh"`

	ID        uuid.UUID `bun:"id,pk,type:uuid"`
	Provider  string    `bun:"provider,notnull"`
	FromState string    `bun:"from_state,notnull"`
	ToState   string    `bun:"to_state,notnull"`
	Reason    string    `bun:"reason,notnull"`
	ErrorRate float64   `bun:"error_rate,notnull"`
	P95Ms     float64   `bun:"p95_ms,notnull"`
	At        time.Time `bun:"at,notnull"`
}

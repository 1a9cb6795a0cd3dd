package server

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	resilient "github.com/saaskit/saaskit/integrations"
)

func TestHealthTrackerStates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	h := newHealthTracker(prometheus.NewRegistry(), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	const p = ProviderUserService
	attempt := func(status int, err error, d time.Duration) {
		h.OnAttempt(resilient.AttemptInfo{Key: p, StatusCode: status, Err: err, Duration: d})
		now = now.Add(time.Second)
	}
	state := func() ProviderHealth { return h.snapshot(p) }

	if got := state(); got.State != HealthUnknown || got.Attempts != 0 {
		t.Fatalf("before any call: %+v", got)
	}
	for i := range 10 {
		attempt(200, nil, time.Duration(i+1)*10*time.Millisecond)
	}
	got := state()
	if got.State != HealthHealthy || got.Attempts != 10 || got.ErrorRate != 0 || got.P50Ms != 60 || got.P95Ms != 100 {
		t.Fatalf("after successes: %+v", got)
	}
	// 4xx is the caller's problem, not the upstream's.
	attempt(404, nil, time.Millisecond)
	if got := state(); got.State != HealthHealthy || got.ConsecutiveFailures != 0 {
		t.Fatalf("after a 404: %+v", got)
	}
	// Two failures among twelve: degraded by error rate, not yet down.
	attempt(500, nil, time.Millisecond)
	attempt(429, nil, time.Millisecond)
	if got := state(); got.State != HealthDegraded || got.ConsecutiveFailures != 2 || got.LastError != "status 429" {
		t.Fatalf("after two failures: %+v", got)
	}
	// A third failure in a row: down.
	attempt(0, errors.New("connection refused"), 0)
	if got := state(); got.State != HealthDown || got.LastFailure == nil || got.LastError != "connection refused" {
		t.Fatalf("after three failures: %+v", got)
	}
	// Refused attempts and cancelled ones are not samples.
	attempt(0, resilient.ErrCircuitOpen, 0)
	if got := state(); got.Attempts != 14 {
		t.Fatalf("refused attempt counted: %+v", got)
	}
	// A success ends the streak; the error rate keeps it degraded.
	attempt(200, nil, time.Millisecond)
	if got := state(); got.State != HealthDegraded {
		t.Fatalf("after a success: %+v", got)
	}
	// The breaker's state wins.
	h.OnStateChange(p, resilient.StateClosed, resilient.StateOpen)
	if got := state(); got.State != HealthDown || got.Breaker != "open" {
		t.Fatalf("breaker open: %+v", got)
	}
	h.OnStateChange(p, resilient.StateOpen, resilient.StateHalfOpen)
	if got := state(); got.State != HealthDegraded {
		t.Fatalf("breaker half-open: %+v", got)
	}
	h.OnStateChange(p, resilient.StateHalfOpen, resilient.StateClosed)
	// Once the failures leave the window, the provider is healthy again.
	now = now.Add(healthWindow)
	attempt(200, nil, time.Millisecond)
	if got := state(); got.State != HealthHealthy || got.Attempts != 1 {
		t.Fatalf("after the window: %+v", got)
	}
	// Slow answers degrade it.
	for range degradedMinSamples {
		attempt(200, nil, 3*time.Second)
	}
	if got := state(); got.State != HealthDegraded {
		t.Fatalf("slow: %+v", got)
	}

	var path []string
	for _, c := range h.takePending() {
		if c.provider == p {
			path = append(path, c.from+">"+c.to)
		}
	}
	want := "unknown>healthy,healthy>degraded,degraded>down,down>degraded,degraded>down,down>degraded,degraded>healthy,healthy>degraded"
	if got := strings.Join(path, ","); got != want {
		t.Fatalf("changes:\n%s\nwant\n%s", got, want)
	}
	if len(h.takePending()) != 0 {
		t.Fatal("pending changes kept after take")
	}
}

func TestIntegrationURLsConfig(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		ok   bool
		want int
	}{
		{"", true, 0},
		{"user-service=http://127.0.0.1:9101/, payment-service=https://pay.example.com", true, 2},
		{"billing=http://x", false, 0},
		{"user-service", false, 0},
		{"user-service=ftp://x", false, 0},
	} {
		c := Config{IntegrationURLs: tt.in}
		got, err := c.integrationURLs()
		if (err == nil) != tt.ok || len(got) != tt.want {
			t.Errorf("%q: %v %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v does not wrap ErrConfig", tt.in, err)
		}
	}
	c := Config{IntegrationURLs: "user-service=http://127.0.0.1:9101/"}
	if got, _ := c.integrationURLs(); got[ProviderUserService] != "http://127.0.0.1:9101" {
		t.Errorf("trailing slash kept: %v", got)
	}
}

// BenchmarkHealthOnAttempt is the health tracker's cost per observed
// attempt (it runs on the caller's goroutine for every outbound call).
func BenchmarkHealthOnAttempt(b *testing.B) {
	h := newHealthTracker(prometheus.NewRegistry(), time.Now, slog.New(slog.DiscardHandler))
	info := resilient.AttemptInfo{Key: ProviderUserService, StatusCode: 200, Duration: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		h.OnAttempt(info)
	}
}

// TestHealthTrackerDirty: a snapshot is due for storing on a state or
// breaker change and after a check, not on every attempt.
func TestHealthTrackerDirty(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	h := newHealthTracker(prometheus.NewRegistry(), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	const p = ProviderUserService
	attempt := func(status int) {
		h.OnAttempt(resilient.AttemptInfo{Key: p, StatusCode: status, Duration: time.Millisecond})
		now = now.Add(time.Second)
	}
	names := func(hs []ProviderHealth) string {
		var out []string
		for _, x := range hs {
			out = append(out, x.Provider+"="+x.State)
		}
		return strings.Join(out, ",")
	}
	h.markDirty(p)
	if got := h.takeDirty(); len(got) != 0 {
		t.Fatalf("never observed, yet stored: %v", names(got))
	}
	attempt(200) // unknown -> healthy
	got := h.takeDirty()
	if names(got) != p+"=healthy" || got[0].ObservedAt == nil || !got[0].ObservedAt.Equal(now.Add(-time.Second)) {
		t.Fatalf("after the first success: %+v", got)
	}
	for range 5 {
		attempt(200)
	}
	if got := h.takeDirty(); len(got) != 0 {
		t.Fatalf("successes without a change marked it: %v", names(got))
	}
	h.markDirty(p) // an active check
	if got := h.takeDirty(); names(got) != p+"=healthy" || got[0].Attempts != 6 {
		t.Fatalf("after a check: %+v", got)
	}
	h.OnStateChange(p, resilient.StateClosed, resilient.StateOpen)
	if got := h.takeDirty(); names(got) != p+"=down" || got[0].Breaker != "open" {
		t.Fatalf("after the breaker opened: %+v", got)
	}
	if got := h.takeDirty(); len(got) != 0 {
		t.Fatalf("taken twice: %v", names(got))
	}
}

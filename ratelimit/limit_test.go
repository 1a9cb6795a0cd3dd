package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/saaskit/saaskit/ratelimit"
)

func TestLimitString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit ratelimit.Limit
		want  string
	}{
		{ratelimit.PerSecond(10, 20), "q=10;w=1"},
		{ratelimit.PerMinute(100, 0), "q=100;w=60"},
		{ratelimit.PerHour(5000, 100), "q=5000;w=3600"},
		{ratelimit.Every(5, 500*time.Millisecond, 0), "q=10;w=1"},
		{ratelimit.Every(3, 1500*time.Millisecond, 0), "q=4;w=2"},
		{ratelimit.Limit{}, "q=0;w=0"},
	}
	for _, tt := range tests {
		if got := tt.limit.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.limit, got, tt.want)
		}
	}
}

func TestLimitConstructors(t *testing.T) {
	t.Parallel()
	if got, want := ratelimit.PerMinute(60, 0), (ratelimit.Limit{Count: 60, Period: time.Minute, Burst: 60}); got != want {
		t.Errorf("PerMinute(60, 0) = %+v, want %+v", got, want)
	}
	if got := ratelimit.PerSecond(2, 5); got.Burst != 5 || got.Rate() != 2 {
		t.Errorf("PerSecond(2, 5) = %+v (rate %v)", got, got.Rate())
	}
	if got := (ratelimit.Limit{Count: 7, Period: time.Second}).BurstOrCount(); got != 7 {
		t.Errorf("BurstOrCount with zero Burst = %d, want 7", got)
	}
}

func TestLimitValidate(t *testing.T) {
	t.Parallel()
	ok := ratelimit.PerSecond(1, 3)
	tests := []struct {
		name  string
		limit ratelimit.Limit
		cost  int
		valid bool
	}{
		{"ok", ok, 1, true},
		{"cost zero", ok, 0, true},
		{"cost equals burst", ok, 3, true},
		{"cost over burst", ok, 4, false},
		{"negative cost", ok, -1, false},
		{"zero limit", ratelimit.Limit{}, 1, false},
		{"zero period", ratelimit.Limit{Count: 1}, 1, false},
	}
	for _, tt := range tests {
		err := tt.limit.Validate(tt.cost)
		if tt.valid != (err == nil) {
			t.Errorf("%s: Validate = %v, want valid=%v", tt.name, err, tt.valid)
		}
		if err != nil && !errors.Is(err, ratelimit.ErrInvalidLimit) {
			t.Errorf("%s: %v does not wrap ErrInvalidLimit", tt.name, err)
		}
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: c.Now, SweepInterval: -1})
	defer m.Close()
	limit := ratelimit.PerSecond(1, 1)
	ctx := context.Background()

	if err := ratelimit.Check(ctx, m, "k", limit, 1); err != nil {
		t.Fatalf("first Check = %v", err)
	}
	err := ratelimit.Check(ctx, m, "k", limit, 1)
	if !errors.Is(err, ratelimit.ErrLimited) {
		t.Fatalf("second Check = %v, want ErrLimited", err)
	}
	var le *ratelimit.Error
	if !errors.As(err, &le) || le.RetryAfter != time.Second || le.Result.Allowed {
		t.Fatalf("second Check error = %#v, want *Error with RetryAfter 1s", err)
	}
	if err := ratelimit.Check(ctx, m, "k", limit, 2); !errors.Is(err, ratelimit.ErrInvalidLimit) || errors.Is(err, ratelimit.ErrLimited) {
		t.Fatalf("Check with cost over burst = %v, want ErrInvalidLimit", err)
	}
}

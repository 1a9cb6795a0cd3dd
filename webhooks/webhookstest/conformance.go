package webhookstest

import (
	"crypto/rand"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
)

// RunSinkTests checks that a [webhooks.Sink] implementation keeps the
// contract the receivers rely on: idempotency on (provider, id), provider
// scoping, exactly one winner among concurrent deliveries of the same event
// and, when the sink is a [webhooks.BatchSink], per-event results in order.
// newSink returns a fresh sink for each subtest (for a database sink, one
// over the test's database). Events use random providers, so a sink over a
// shared database does not see other runs' events.
func RunSinkTests(t *testing.T, newSink func(t *testing.T) webhooks.Sink) {
	t.Helper()
	event := func(provider, id string) *webhooks.Event {
		return &webhooks.Event{
			Provider:   provider,
			ID:         id,
			Type:       "conformance.test",
			Timestamp:  time.Unix(1700000000, 0).UTC(),
			ReceivedAt: time.Now().UTC(),
			Payload:    json.RawMessage(`{"id":"` + id + `","type":"conformance.test"}`),
		}
	}
	accept := func(t *testing.T, s webhooks.Sink, ev *webhooks.Event, wantDup bool) {
		t.Helper()
		dup, err := s.Accept(t.Context(), ev)
		if err != nil {
			t.Fatalf("Accept(%s/%s): %v", ev.Provider, ev.ID, err)
		}
		if dup != wantDup {
			t.Fatalf("Accept(%s/%s) duplicate = %v, want %v", ev.Provider, ev.ID, dup, wantDup)
		}
	}

	t.Run("NewThenDuplicate", func(t *testing.T) {
		s, p := newSink(t), "conf-"+rand.Text()
		accept(t, s, event(p, "evt_1"), false)
		accept(t, s, event(p, "evt_1"), true)
		accept(t, s, event(p, "evt_2"), false)
	})
	t.Run("ProviderScopesID", func(t *testing.T) {
		s, p := newSink(t), "conf-"+rand.Text()
		accept(t, s, event(p+"-a", "evt_1"), false)
		accept(t, s, event(p+"-b", "evt_1"), false)
		accept(t, s, event(p+"-a", "evt_1"), true)
	})
	t.Run("ConcurrentSameID", func(t *testing.T) {
		s, p := newSink(t), "conf-"+rand.Text()
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		news, errs := 0, []error{}
		for range n {
			wg.Go(func() {
				dup, err := s.Accept(t.Context(), event(p, "evt_race"))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else if !dup {
					news++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("concurrent Accept failed: %v", errs[0])
		}
		if news != 1 {
			t.Fatalf("%d of %d concurrent deliveries were stored as new, want exactly 1", news, n)
		}
	})
	t.Run("Batch", func(t *testing.T) {
		s := newSink(t)
		bs, ok := s.(webhooks.BatchSink)
		if !ok {
			t.Skip("sink does not implement webhooks.BatchSink")
		}
		p := "conf-" + rand.Text()
		accept(t, s, event(p, "evt_old"), false)
		res, err := bs.AcceptBatch(t.Context(), []*webhooks.Event{event(p, "evt_a"), event(p, "evt_old"), event(p, "evt_b")})
		if err != nil {
			t.Fatalf("AcceptBatch: %v", err)
		}
		want := []bool{false, true, false}
		if len(res) != len(want) {
			t.Fatalf("AcceptBatch returned %d results for 3 events", len(res))
		}
		for i, r := range res {
			if r.Err != nil || r.Duplicate != want[i] {
				t.Errorf("result %d = {Duplicate: %v, Err: %v}, want {Duplicate: %v}", i, r.Duplicate, r.Err, want[i])
			}
		}
		accept(t, s, event(p, "evt_a"), true)
		accept(t, s, event(p, "evt_b"), true)
	})
}

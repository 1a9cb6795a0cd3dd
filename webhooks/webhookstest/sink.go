package webhookstest

import (
	"context"
	"sync"

	"github.com/saaskit/saaskit/webhooks"
)

// MemorySink is an in-memory [webhooks.BatchSink], idempotent on
// (provider, id), for tests. The zero value is ready to use; it is safe for
// concurrent use. To exercise a receiver's per-event path instead of the
// batch one, pass webhooks.SinkFunc(s.Accept).
type MemorySink struct {
	mu     sync.Mutex
	events []*webhooks.Event
	keys   map[[2]string]bool
	err    error
}

var _ webhooks.BatchSink = (*MemorySink)(nil)

// Accept stores a copy of ev unless its (provider, id) is already stored. It
// returns the error set by FailWith, if any, storing nothing.
func (s *MemorySink) Accept(ctx context.Context, ev *webhooks.Event) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false, s.err
	}
	return !s.add(ev), nil
}

// AcceptBatch stores the events as Accept does, all at once. With an error
// set by FailWith it stores nothing and returns that error.
func (s *MemorySink) AcceptBatch(ctx context.Context, evs []*webhooks.Event) ([]webhooks.BatchResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	res := make([]webhooks.BatchResult, len(evs))
	for i, ev := range evs {
		res[i].Duplicate = !s.add(ev)
	}
	return res, nil
}

// add stores ev and reports whether it was new. s.mu is held.
func (s *MemorySink) add(ev *webhooks.Event) bool {
	key := [2]string{ev.Provider, ev.ID}
	if s.keys[key] {
		return false
	}
	if s.keys == nil {
		s.keys = map[[2]string]bool{}
	}
	s.keys[key] = true
	cp := *ev
	s.events = append(s.events, &cp)
	return true
}

// FailWith makes every later Accept and AcceptBatch return err, as a
// database outage would; nil restores normal operation.
func (s *MemorySink) FailWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// Events returns the stored events in the order they were stored.
func (s *MemorySink) Events() []*webhooks.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*webhooks.Event(nil), s.events...)
}

// Event returns the stored event with the given key, if any.
func (s *MemorySink) Event(provider, id string) (*webhooks.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.events {
		if ev.Provider == provider && ev.ID == id {
			return ev, true
		}
	}
	return nil, false
}

// Len returns how many events are stored.
func (s *MemorySink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

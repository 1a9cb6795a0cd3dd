package webhooks

import "context"

// Sink persists verified events.
//
// Accept stores ev idempotently on (ev.Provider, ev.ID): the first time it
// stores the event (and, in the reference server, enqueues its processing in
// the same transaction) and returns duplicate false; for an event already
// stored it stores nothing and returns duplicate true. ctx is the request's
// context (or the one returned by [Receiver.Resolve]). An error wrapping
// [ErrMalformedEvent] rejects the event as the sender's fault (400); one
// wrapping [ErrUnknownSource] says the source was removed since the request
// was resolved (404); any other error is internal (500, and the sender
// retries). Implementations
// must be safe for concurrent use, and two concurrent Accepts of the same
// key must report exactly one of them as new.
type Sink interface {
	Accept(ctx context.Context, ev *Event) (duplicate bool, err error)
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(ctx context.Context, ev *Event) (duplicate bool, err error)

// Accept calls f(ctx, ev).
func (f SinkFunc) Accept(ctx context.Context, ev *Event) (bool, error) { return f(ctx, ev) }

// BatchSink is a [Sink] that can store many events at once, for example in
// one database transaction. The [BatchReceiver] uses it when its sink
// implements it, and calls Accept per event otherwise.
//
// AcceptBatch returns one [BatchResult] per event, in the order of evs. The
// events of one call have distinct ids. An error fails the whole batch (the
// receiver answers 500, or 404 for one wrapping [ErrUnknownSource]): return
// it when nothing was stored.
type BatchSink interface {
	Sink
	AcceptBatch(ctx context.Context, evs []*Event) ([]BatchResult, error)
}

// BatchResult is what a [BatchSink] did with one event.
type BatchResult struct {
	// Duplicate reports that the event was already stored.
	Duplicate bool
	// Err, when not nil, means the event was not stored. Wrapping
	// ErrMalformedEvent rejects it for good; other errors mark it failed,
	// to be sent again.
	Err error
}

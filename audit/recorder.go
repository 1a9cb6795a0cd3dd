package audit

import (
	"context"

	"github.com/uptrace/bun"
)

// Recorder records audit events. Record writes ev through db, which should be
// the transaction of the change the event describes, so that the change and
// its event commit or roll back together; when db is not a transaction an
// implementation may open one. Record fills the fields it owns (ID and
// CreatedAt; a chaining store such as [Store] sets Seq and the hashes when it
// chains the event, later) and the actor and request fields left empty, from
// ctx.
// It returns an error wrapping [ErrInvalidEvent] for an event it refuses; on
// any error the caller must roll back its transaction. Implementations are
// safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, db bun.IDB, ev *Event) error
}

// RecorderFunc adapts a function to a [Recorder].
type RecorderFunc func(ctx context.Context, db bun.IDB, ev *Event) error

// Record calls f(ctx, db, ev).
func (f RecorderFunc) Record(ctx context.Context, db bun.IDB, ev *Event) error {
	return f(ctx, db, ev)
}

// Nop is a [Recorder] that validates events and drops them, for tests and
// for embedders that keep no audit log.
var Nop Recorder = RecorderFunc(func(ctx context.Context, _ bun.IDB, ev *Event) error {
	fillFromContext(ctx, ev)
	if err := ev.validate(); err != nil {
		return err
	}
	_, err := encodeChanges(ev.Changes)
	return err
})

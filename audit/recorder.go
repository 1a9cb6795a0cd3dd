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

// BatchRecorder is a [Recorder] that also records many events at once, in
// the order given, for less than as many calls of Record cost; [Store] is
// one. RecordMany validates and fills every event as Record does; on an
// error the caller must roll back its transaction.
type BatchRecorder interface {
	Recorder
	RecordMany(ctx context.Context, db bun.IDB, evs []*Event) error
}

var _ BatchRecorder = (*Store)(nil)

// RecordAll records evs through r: with one RecordMany when r is a
// [BatchRecorder], else with a Record each.
func RecordAll(ctx context.Context, r Recorder, db bun.IDB, evs []*Event) error {
	if len(evs) == 0 {
		return nil
	}
	if b, ok := r.(BatchRecorder); ok {
		return b.RecordMany(ctx, db, evs)
	}
	for _, ev := range evs {
		if err := r.Record(ctx, db, ev); err != nil {
			return err
		}
	}
	return nil
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

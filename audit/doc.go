// Package audit records who changed what, in the same transaction as the
// change, in an append-only and tamper-evident log.
//
// A host service records an [Event] through a [Recorder] inside the
// transaction that makes the change, so that the change and its event commit
// or roll back together:
//
//	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
//		// ... update the user in tx ...
//		return store.Record(ctx, tx, &audit.Event{
//			TenantID:     tenantID,
//			Action:       "user.updated",
//			ResourceType: "user",
//			ResourceID:   user.ID.String(),
//			Changes:      audit.Diff(before, after),
//		})
//	})
//
// The actor and request fields may come from the context ([WithActor],
// [WithRequestInfo]), set once by middleware. [Diff] lists the fields that
// changed and redacts secrets. [Nop] and [RecorderFunc] serve hosts that keep
// no log or keep it elsewhere.
//
// # Store
//
// [Store] keeps the log in the database with Bun, on SQLite or Postgres. Run
// [Migrate] (or [Migrations] with your migrator, in [MigrationTable]) first.
// Each tenant has its own chain (uuid.Nil is the platform's chain, for events
// that belong to no tenant); an event's Seq is its 1-based position and
//
//	Hash = SHA-256(PrevHash || canonical event)
//
// where PrevHash is the previous event's Hash, 32 zero bytes for the first.
// Record appends in the caller's transaction: it takes the chain head row of
// audit_heads with an upsert (on Postgres this locks the row until the
// transaction ends; SQLite write transactions are already serialized), inserts
// the event and moves the head. Writers of one tenant therefore queue, and
// chains stay gapless; a rolled-back transaction consumes no seq.
//
// Database triggers refuse UPDATE and DELETE on audit_events (and, on
// Postgres, TRUNCATE), on both databases. On Postgres, [RestrictRole] also
// revokes those privileges from the application's role. Tables are scoped by
// an explicit tenant id, not by the tenancy hooks.
//
// # Canonical encoding
//
// The canonical encoding of an event (see [Event.Canonical]) is one line of
// compact JSON, UTF-8, with no HTML escaping (encoding/json with
// SetEscapeHTML(false)), with these keys in this (sorted) order:
//
//	action, actor {id, type}, changes, created_at, id, ip, request_id,
//	resource_id, resource_type, seq, tenant_id, user_agent, v
//
// Ids are lowercase hyphenated UUIDs; created_at is UTC RFC 3339 with at most
// six fractional digits (times are truncated to the microsecond on record, so
// both databases return them exactly); v is 1. changes is an object of
// {"after": ..., "before": ...} by field name, with the keys of every object
// sorted at every depth; it is stored as that exact text, not as jsonb, so
// that what is hashed is what is read back.
//
// # Verification
//
// [Verify] walks a chain in seq order, in batches, and reports the first
// broken link as a [*ChainError] (hash mismatch, prev-hash mismatch, sequence
// gap, head mismatch) wrapping [ErrChainBroken].
//
// Beyond the chain, [Store.Checkpoint] keeps a Merkle tree per tenant
// (golang.org/x/mod/sumdb/tlog, as the Go checksum database does) whose leaf
// n is tlog.RecordHash of the chain hash of event n+1 ([LeafHash]), and signs
// its size and root with a golang.org/x/mod/sumdb/note key ([GenerateNoteKey]).
// Run it periodically (for example from a job, per tenant). [Export] writes a
// tenant's events with an inclusion proof of each against a checkpoint, and
// [VerifyExport] checks such a file offline with only the public key, so a
// tenant can verify its own slice of the log without trusting the server.
// [VerifyCheckpoint] checks that the stored log still has the root an older
// checkpoint signed.
package audit

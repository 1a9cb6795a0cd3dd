// Package audit records who changed what, in the same transaction as the
// change, in an append-only and tamper-evident log.
//
// A host service records an [Event] through a [Recorder] inside the
// transaction that makes the change, so that the change and its event commit
// or roll back together, and runs [Store.Seal] periodically to chain the
// recorded events:
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
//
// Recording and chaining are two steps, so that an audited write costs one
// INSERT and takes no lock:
//
//   - [Store.Record] inserts the event into audit_events in the caller's
//     transaction. If the change commits, its event exists; if the insert
//     fails, the caller's transaction fails with it. Concurrent writers of
//     one tenant do not wait for each other (on Postgres, the old chain head
//     row made them queue through each other's commits).
//   - [Store.Seal] chains the committed events that are not chained yet: in
//     one transaction it gives each its tenant's next seq, computes its
//     hash, appends the links to audit_chain (append-only, like
//     audit_events) and moves the tenants' heads in audit_heads. Seals are
//     serialized, so chains stay gapless however many writers there are.
//
// Seal finds the events to chain without a high-water mark that a late
// commit could fall behind: on SQLite, whose writers are serialized, the
// rowid of audit_events (pos) grows in commit order, so the events past the
// last chained pos are exactly the unchained ones; on Postgres, where
// transactions commit out of pos order, a trigger notes every new event in
// audit_pending and Seal removes the entries it chains, in the same
// transaction.
//
// The guarantee is therefore: a committed event is in its tenant's chain
// after the next Seal that starts after its commit. The reference server
// seals every 250 ms and before it lists, verifies, checkpoints or exports
// a log, so an event is chained within about a quarter of a second of its
// commit, and every read of the log through the server sees it chained.
// [Store.Checkpoint] seals first. Until it is chained, an event is only as
// safe as any row of the database: it is not yet covered by the hash chain.
// [List] and [Get] read chained events only; [Verify] counts the unchained
// ones (VerifyResult.Unsealed) without calling the chain broken, so an event
// kept from the chain (on Postgres, by deleting its audit_pending entry,
// which Seal's role may do) stays visible there.
//
// On SQLite audit_events has no index besides its rowid, so that a request
// writes one row at the end of one B-tree; filtered reads of the log scan
// the tenant's chain, and an event id a caller sets is not checked for
// uniqueness (those Record generates are UUIDv7s). On Postgres audit_events
// keeps indexes on resource, actor and action, and refuses a second event
// with the same id in a tenant.
//
// Database triggers refuse UPDATE and DELETE on audit_events and
// audit_chain (and, on Postgres, TRUNCATE), on both databases. On Postgres,
// [RestrictRole] also revokes those privileges from the application's role.
// Tables are scoped by an explicit tenant id, not by the tenancy hooks.
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
// gap, head mismatch) wrapping [ErrChainBroken]. A link whose event was
// altered, removed or swapped for another is a hash mismatch.
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

package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ErrNotFound is returned by [Get] for an event that does not exist in the
// tenant's chain.
var ErrNotFound = errors.New("audit: event not found")

// DefaultOrigin is the checkpoint origin prefix used when Store.Origin is
// empty.
const DefaultOrigin = "saaskit/audit"

// Store is the Bun implementation of [Recorder]: it appends events to
// per-tenant hash chains in the audit_events table (see [Migrate]) and signs
// checkpoints over them. The zero value is ready to use. A Store is safe for
// concurrent use; it holds no state besides its configuration.
type Store struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Origin prefixes the origin line of signed checkpoints, which is
	// Origin + "/" + tenant id; empty means [DefaultOrigin]. Name the
	// deployment (for example "audit.example.com") so that checkpoints of
	// two deployments cannot be confused.
	Origin string
}

var _ Recorder = (*Store)(nil)

func (s *Store) now() time.Time {
	if s != nil && s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) origin(tenantID uuid.UUID) string {
	o := DefaultOrigin
	if s != nil && s.Origin != "" {
		o = s.Origin
	}
	return o + "/" + tenantID.String()
}

// upsertHead takes the tenant's chain head for this transaction: it creates
// the head at seq 1 or moves it one step, locking the row (on SQLite the
// write transaction already excludes other writers), and returns the new seq
// with the hash of the previous event (the head's hash is updated after the
// insert).
const upsertHead = `INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?, 1, ?)
ON CONFLICT (tenant_id) DO UPDATE SET seq = audit_heads.seq + 1
RETURNING seq, hash`

// Record appends ev to its tenant's chain in db's transaction, opening one
// when db is not a transaction. It fills ID (a UUIDv7) and CreatedAt when
// they are zero, the actor and request fields from ctx when they are empty,
// and sets Seq, PrevHash and Hash. Writers of one tenant queue on the chain
// head until their transactions end, so keep audited transactions short.
//
// Record returns an error wrapping [ErrInvalidEvent] for an event without an
// action or actor, or with a text field that is not valid UTF-8; the caller
// must then roll its transaction back.
func (s *Store) Record(ctx context.Context, db bun.IDB, ev *Event) error {
	fillFromContext(ctx, ev)
	if err := ev.validate(); err != nil {
		return err
	}
	changes, err := encodeChanges(ev.Changes)
	if err != nil {
		return err
	}
	id := ev.ID
	if id == uuid.Nil {
		if id, err = uuid.NewV7(); err != nil {
			return fmt.Errorf("audit: new id: %w", err)
		}
	}
	created := ev.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	row := eventRow{
		TenantID:     ev.TenantID,
		ID:           id,
		ActorType:    string(ev.Actor.Type),
		ActorID:      ev.Actor.ID,
		Action:       ev.Action,
		ResourceType: ev.ResourceType,
		ResourceID:   ev.ResourceID,
		Changes:      changes,
		RequestID:    ev.RequestID,
		IP:           ev.IP,
		UserAgent:    ev.UserAgent,
		CreatedAt:    created.UTC().Truncate(time.Microsecond),
	}
	err = inTx(ctx, db, func(ctx context.Context, tx bun.IDB) error {
		return appendRow(ctx, tx, &row)
	})
	if err != nil {
		return err
	}
	ev.ID, ev.Seq, ev.CreatedAt = row.ID, row.Seq, row.CreatedAt
	ev.PrevHash, ev.Hash = row.PrevHash, row.Hash
	return nil
}

// appendRow links row to its chain and writes it with the new head.
func appendRow(ctx context.Context, tx bun.IDB, row *eventRow) error {
	var seq int64
	var prev []byte
	if err := tx.NewRaw(upsertHead, row.TenantID, genesis).Scan(ctx, &seq, &prev); err != nil {
		return fmt.Errorf("audit: lock chain head: %w", err)
	}
	row.Seq, row.PrevHash = seq, prev
	canon, err := row.canonical()
	if err != nil {
		return err
	}
	row.Hash = chainHash(prev, canon)
	if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("audit: insert event: %w", err)
	}
	if _, err := tx.NewRaw("UPDATE audit_heads SET hash = ? WHERE tenant_id = ?", row.Hash, row.TenantID).Exec(ctx); err != nil {
		return fmt.Errorf("audit: update chain head: %w", err)
	}
	return nil
}

// inTx runs fn in db when db is a transaction, and in a new transaction of
// db otherwise.
func inTx(ctx context.Context, db bun.IDB, fn func(ctx context.Context, tx bun.IDB) error) error {
	switch tx := db.(type) {
	case bun.Tx:
		return fn(ctx, tx)
	case *bun.Tx:
		return fn(ctx, tx)
	}
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return fn(ctx, tx)
	})
}

// Query selects events for [List]. The zero value of each filter field means
// no filter.
type Query struct {
	// TenantID is the chain to read; uuid.Nil is the platform chain.
	TenantID uuid.UUID
	// BeforeSeq returns only events with a smaller seq: the cursor of the
	// next page is the Seq of the last event of the previous one. Zero
	// starts at the newest event.
	BeforeSeq int64
	// Limit caps the page; zero means 50, and at most 1000 are returned.
	Limit int
	// Action, ResourceType, ResourceID and ActorID filter by equality.
	Action       string
	ResourceType string
	ResourceID   string
	ActorID      string
	// CreatedAfter and CreatedBefore, when not zero, keep only events
	// recorded strictly after or strictly before them.
	CreatedAfter  time.Time
	CreatedBefore time.Time
}

// List returns a page of a tenant's events, newest first.
func List(ctx context.Context, db bun.IDB, q Query) ([]Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	var rows []eventRow
	sel := db.NewSelect().Model(&rows).Where("tenant_id = ?", q.TenantID)
	if q.BeforeSeq > 0 {
		sel.Where("seq < ?", q.BeforeSeq)
	}
	filters := []struct{ col, v string }{
		{"action", q.Action}, {"resource_type", q.ResourceType},
		{"resource_id", q.ResourceID}, {"actor_id", q.ActorID},
	}
	for _, f := range filters {
		if f.v != "" {
			sel.Where("? = ?", bun.Ident(f.col), f.v)
		}
	}
	if !q.CreatedAfter.IsZero() {
		sel.Where("created_at > ?", q.CreatedAfter.UTC())
	}
	if !q.CreatedBefore.IsZero() {
		sel.Where("created_at < ?", q.CreatedBefore.UTC())
	}
	if err := sel.OrderExpr("seq DESC").Limit(int64(limit)).Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out := make([]Event, 0, len(rows))
	for i := range rows {
		ev, err := rows[i].event()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// Get returns the event id of the tenant's chain, or an error wrapping
// [ErrNotFound].
func Get(ctx context.Context, db bun.IDB, tenantID, id uuid.UUID) (*Event, error) {
	var row eventRow
	err := db.NewSelect().Model(&row).Where("tenant_id = ? AND id = ?", tenantID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: get: %w", err)
	}
	ev, err := row.event()
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

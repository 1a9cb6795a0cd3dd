package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// ErrNotFound is returned by [Get] for an event that does not exist in the
// tenant's chain.
var ErrNotFound = errors.New("audit: event not found")

// DefaultOrigin is the checkpoint origin prefix used when Store.Origin is
// empty.
const DefaultOrigin = "saaskit/audit"

// Store is the Bun implementation of [Recorder]: it records events in the
// audit_events table, chains them into per-tenant hash chains with
// [Store.Seal] (see [Migrate] for the tables) and signs checkpoints over
// them. The zero value is ready to use. A Store is safe for
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

// newEventRow is a row of audit_events as Record inserts it; pos is set by
// the database.
type newEventRow struct {
	bun.BaseModel `bun:"table:audit_events"`

	TenantID     uuid.UUID `bun:"tenant_id,type:uuid"`
	ID           uuid.UUID `bun:"id,type:uuid"`
	ActorType    string    `bun:"actor_type"`
	ActorID      string    `bun:"actor_id"`
	Action       string    `bun:"action"`
	ResourceType string    `bun:"resource_type"`
	ResourceID   string    `bun:"resource_id"`
	Changes      string    `bun:"changes"`
	RequestID    string    `bun:"request_id"`
	IP           string    `bun:"ip"`
	UserAgent    string    `bun:"user_agent"`
	CreatedAt    time.Time `bun:"created_at"`
}

// Record writes ev in db, which should be the transaction of the change it
// describes, so that the change and its event commit or roll back together.
// It fills ID (a UUIDv7) and CreatedAt when they are zero and the actor and
// request fields from ctx when they are empty. It is one INSERT that takes
// no lock: the event is chained later, by [Store.Seal], which sets its Seq,
// PrevHash and Hash in the database (Record leaves them zero in ev).
//
// Record returns an error wrapping [ErrInvalidEvent] for an event without an
// action or actor, or with a text field that is not valid UTF-8; the caller
// must then roll its transaction back. So must it when the insert fails.
func (s *Store) Record(ctx context.Context, db bun.IDB, ev *Event) error {
	row, err := s.newRow(ctx, ev)
	if err != nil {
		return err
	}
	if _, err := db.NewInsert().Model(&row).Exec(ctx); err != nil {
		return fmt.Errorf("audit: insert event: %w", err)
	}
	ev.ID, ev.CreatedAt = row.ID, row.CreatedAt
	ev.Seq, ev.PrevHash, ev.Hash = 0, nil, nil
	return nil
}

// recordManyChunk bounds the rows of one INSERT of [Store.RecordMany].
const recordManyChunk = 500

// RecordMany writes evs in db as [Store.Record] writes one, with one
// multi-row INSERT for up to a few hundred events: a worker that applies many
// changes in one transaction records their events for the cost of one. The
// events are chained in the order of evs. It validates every event before
// writing any; on an error nothing of evs is written by it, and the caller
// must roll its transaction back as for Record.
func (s *Store) RecordMany(ctx context.Context, db bun.IDB, evs []*Event) error {
	rows := make([]newEventRow, len(evs))
	for i, ev := range evs {
		row, err := s.newRow(ctx, ev)
		if err != nil {
			return fmt.Errorf("audit: event %d: %w", i, err)
		}
		rows[i] = row
	}
	for chunk := range slices.Chunk(rows, recordManyChunk) {
		if _, err := db.NewInsert().Model(&chunk).Exec(ctx); err != nil {
			return fmt.Errorf("audit: insert events: %w", err)
		}
	}
	for i, ev := range evs {
		ev.ID, ev.CreatedAt = rows[i].ID, rows[i].CreatedAt
		ev.Seq, ev.PrevHash, ev.Hash = 0, nil, nil
	}
	return nil
}

// newRow validates ev, fills it from ctx and returns its row.
func (s *Store) newRow(ctx context.Context, ev *Event) (newEventRow, error) {
	fillFromContext(ctx, ev)
	if err := ev.validate(); err != nil {
		return newEventRow{}, err
	}
	changes, err := encodeChanges(ev.Changes)
	if err != nil {
		return newEventRow{}, err
	}
	id := ev.ID
	if id == uuid.Nil {
		if id, err = uuid.NewV7(); err != nil {
			return newEventRow{}, fmt.Errorf("audit: new id: %w", err)
		}
	}
	created := ev.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	return newEventRow{
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
	}, nil
}

// sealBatch is how many events Seal chains per round (and, when it opens
// its own transactions, per transaction).
const sealBatch = 500

// headModel is a row of audit_heads.
type headModel struct {
	bun.BaseModel `bun:"table:audit_heads"`

	TenantID uuid.UUID `bun:"tenant_id,pk,type:uuid"`
	Seq      int64     `bun:"seq"`
	Hash     []byte    `bun:"hash"`
}

// Seal chains the events recorded and committed since the last Seal: it
// gives each its tenant's next seq, links it to the previous event's hash,
// appends the links to audit_chain and moves the chain heads. It returns
// how many events it chained. Run it every few hundred milliseconds (the
// reference server does), and before reading the log where the latest
// events matter; [Store.Checkpoint] runs it first.
//
// Seal runs in db's transaction when db is one (it then also sees that
// transaction's own events), and otherwise in transactions of its own of up
// to a few hundred events each. Concurrent Seals, in this process or
// another, are serialized: on Postgres by an EXCLUSIVE lock on audit_heads,
// which blocks neither Record nor readers, taken only when audit_pending is
// not empty; on SQLite by its write lock, which Seal takes only to append
// links it has read and hashed beforehand, after checking that no other
// Seal appended meanwhile (and reading again if one did), so that writers
// wait for it as briefly as possible.
//
// Events are chained in the order they committed on SQLite (pos, the rowid,
// grows in commit order since writers are serialized) and in pos order of
// those committed at the time of the Seal on Postgres, where audit_pending
// lists the events not yet chained, so that one that commits late is
// chained by a later Seal and never skipped.
func (s *Store) Seal(ctx context.Context, db bun.IDB) (int, error) {
	pg := db.Dialect().Name() == dialect.PG
	if isTx(db) {
		total := 0
		for {
			n, err := sealRound(ctx, db, pg)
			total += n
			if err != nil || n < sealBatch {
				return total, err
			}
		}
	}
	total := 0
	for {
		var n int
		var err error
		if pg {
			n, err = sealPostgres(ctx, db)
		} else {
			n, err = sealSQLite(ctx, db)
		}
		total += n
		if err != nil || n < sealBatch {
			return total, err
		}
	}
}

// sealPostgres runs one round in a transaction of its own, when there are
// pending events.
func sealPostgres(ctx context.Context, db bun.IDB) (int, error) {
	var pending bool
	if err := db.NewRaw(`SELECT EXISTS (SELECT 1 FROM audit_pending)`).Scan(ctx, &pending); err != nil {
		return 0, fmt.Errorf("audit: seal: %w", err)
	}
	if !pending {
		return 0, nil
	}
	var n int
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		n, err = sealRound(ctx, tx, true)
		return err
	})
	return n, err
}

// errSealRaced means another Seal chained events between the reads of
// sealSQLite and its write.
var errSealRaced = errors.New("audit: seal: raced")

// sealSQLite runs one round with the reads and hashing done before the
// write transaction, which holds SQLite's one write lock only to append the
// links, after checking that no other Seal appended any meanwhile (every
// Seal that commits raises the last chained pos).
func sealSQLite(ctx context.Context, db bun.IDB) (int, error) {
	for {
		var last int64
		if err := db.NewRaw(`SELECT coalesce(max(pos), 0) FROM audit_chain`).Scan(ctx, &last); err != nil {
			return 0, fmt.Errorf("audit: seal: %w", err)
		}
		rows, err := unsealed(ctx, db, false, last)
		if err != nil || len(rows) == 0 {
			return 0, err
		}
		links, heads, err := link(ctx, db, rows)
		if err != nil {
			return 0, err
		}
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var now int64
			if err := tx.NewRaw(`SELECT coalesce(max(pos), 0) FROM audit_chain`).Scan(ctx, &now); err != nil {
				return fmt.Errorf("audit: seal: %w", err)
			}
			if now != last {
				return errSealRaced
			}
			return appendLinks(ctx, tx, false, links, heads)
		})
		if errors.Is(err, errSealRaced) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return len(rows), nil
	}
}

// sealRound chains up to sealBatch events in tx.
func sealRound(ctx context.Context, tx bun.IDB, pg bool) (int, error) {
	if pg {
		if _, err := tx.ExecContext(ctx, "LOCK TABLE audit_heads IN EXCLUSIVE MODE"); err != nil {
			return 0, fmt.Errorf("audit: seal: lock chain heads: %w", err)
		}
	}
	rows, err := unsealed(ctx, tx, pg, -1)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	links, heads, err := link(ctx, tx, rows)
	if err != nil {
		return 0, err
	}
	if err := appendLinks(ctx, tx, pg, links, heads); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// unsealed reads up to sealBatch events to chain, in pos order: on
// Postgres those of audit_pending; on SQLite those past pos last, or past
// the last chained pos when last is negative.
func unsealed(ctx context.Context, db bun.IDB, pg bool, last int64) ([]eventRow, error) {
	var q string
	var args []any
	switch {
	case pg:
		// The pending positions first, then their events by position: a
		// join of the two tables lets the planner merge them, reading
		// audit_events from its first event up to the first pending one,
		// a cost that grows with the log.
		var pos []int64
		err := db.NewRaw(`SELECT pos FROM audit_pending ORDER BY pos LIMIT ?`, sealBatch).Scan(ctx, &pos)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("audit: seal: read pending events: %w", err)
		}
		if len(pos) == 0 {
			return nil, nil
		}
		q = `SELECT ` + unsealedColumns + ` FROM audit_events AS e WHERE e.pos IN (?) ORDER BY e.pos`
		args = []any{bun.In(pos)}
	case last < 0:
		q = `SELECT ` + unsealedColumns + ` FROM audit_events AS e
WHERE e.pos > (SELECT coalesce(max(pos), 0) FROM audit_chain) ORDER BY e.pos LIMIT ?`
		args = []any{sealBatch}
	default:
		q = `SELECT ` + unsealedColumns + ` FROM audit_events AS e WHERE e.pos > ? ORDER BY e.pos LIMIT ?`
		args = []any{last, sealBatch}
	}
	var rows []eventRow
	if err := db.NewRaw(q, args...).Scan(ctx, &rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: seal: read events: %w", err)
	}
	return rows, nil
}

// link reads the chain heads of rows' tenants and links rows after them,
// in order, returning the new links and the moved heads.
func link(ctx context.Context, db bun.IDB, rows []eventRow) ([]chainRow, []headModel, error) {
	heads := make(map[uuid.UUID]*headModel)
	var tenants []uuid.UUID
	for i := range rows {
		if _, ok := heads[rows[i].TenantID]; !ok {
			heads[rows[i].TenantID] = &headModel{TenantID: rows[i].TenantID, Hash: genesis}
			tenants = append(tenants, rows[i].TenantID)
		}
	}
	var stored []headModel
	if err := db.NewSelect().Model(&stored).Where("tenant_id IN (?)", bun.In(tenants)).Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("audit: seal: read chain heads: %w", err)
	}
	for i := range stored {
		*heads[stored[i].TenantID] = stored[i]
	}
	links := make([]chainRow, len(rows))
	for i := range rows {
		r := &rows[i]
		h := heads[r.TenantID]
		r.Seq, r.PrevHash = h.Seq+1, h.Hash
		canon, err := r.canonical()
		if err != nil {
			return nil, nil, fmt.Errorf("audit: seal: event %s: %w", r.ID, err)
		}
		r.Hash = chainHash(r.PrevHash, canon)
		h.Seq, h.Hash = r.Seq, r.Hash
		links[i] = chainRow{TenantID: r.TenantID, Seq: r.Seq, Pos: r.Pos, EventID: r.ID, PrevHash: r.PrevHash, Hash: r.Hash}
	}
	moved := make([]headModel, 0, len(tenants))
	for _, t := range tenants {
		moved = append(moved, *heads[t])
	}
	return links, moved, nil
}

// appendLinks writes links and heads in tx and, on Postgres, removes the
// chained events from audit_pending.
func appendLinks(ctx context.Context, tx bun.IDB, pg bool, links []chainRow, heads []headModel) error {
	if _, err := tx.NewInsert().Model(&links).Exec(ctx); err != nil {
		return fmt.Errorf("audit: seal: append links: %w", err)
	}
	_, err := tx.NewInsert().Model(&heads).
		On("CONFLICT (tenant_id) DO UPDATE").Set("seq = EXCLUDED.seq").Set("hash = EXCLUDED.hash").Exec(ctx)
	if err != nil {
		return fmt.Errorf("audit: seal: move chain heads: %w", err)
	}
	if pg {
		pos := make([]int64, len(links))
		for i := range links {
			pos[i] = links[i].Pos
		}
		if _, err := tx.NewRaw("DELETE FROM audit_pending WHERE pos IN (?)", bun.In(pos)).Exec(ctx); err != nil {
			return fmt.Errorf("audit: seal: %w", err)
		}
	}
	return nil
}

// unsealedColumns selects an eventRow of audit_events AS e, without a link.
const unsealedColumns = `e.pos, e.tenant_id, e.id, e.actor_type, e.actor_id, e.action,
e.resource_type, e.resource_id, e.changes, e.request_id, e.ip, e.user_agent, e.created_at`

// isTx reports whether db is a transaction.
func isTx(db bun.IDB) bool {
	switch db.(type) {
	case bun.Tx, *bun.Tx:
		return true
	}
	return false
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

// List returns a page of a tenant's events, newest first. It reads the
// events that are chained: run [Store.Seal] first to include those recorded
// in the last moments.
func List(ctx context.Context, db bun.IDB, q Query) ([]Event, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	var rows []eventRow
	sel := db.NewSelect().ColumnExpr(eventColumns).TableExpr("audit_chain AS c").
		Join("JOIN audit_events AS e ON e.pos = c.pos").Where("c.tenant_id = ?", q.TenantID)
	if q.BeforeSeq > 0 {
		sel.Where("c.seq < ?", q.BeforeSeq)
	}
	filters := []struct{ col, v string }{
		{"e.action", q.Action}, {"e.resource_type", q.ResourceType},
		{"e.resource_id", q.ResourceID}, {"e.actor_id", q.ActorID},
	}
	for _, f := range filters {
		if f.v != "" {
			sel.Where("? = ?", bun.Safe(f.col), f.v)
		}
	}
	if !q.CreatedAfter.IsZero() {
		sel.Where("e.created_at > ?", q.CreatedAfter.UTC())
	}
	if !q.CreatedBefore.IsZero() {
		sel.Where("e.created_at < ?", q.CreatedBefore.UTC())
	}
	if err := sel.OrderExpr("c.seq DESC").Limit(int64(limit)).Scan(ctx, &rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
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
// [ErrNotFound]. Like [List], it reads sealed events only.
func Get(ctx context.Context, db bun.IDB, tenantID, id uuid.UUID) (*Event, error) {
	var row eventRow
	err := db.NewSelect().ColumnExpr(eventColumns).TableExpr("audit_chain AS c").
		Join("JOIN audit_events AS e ON e.pos = c.pos").
		Where("c.tenant_id = ? AND c.event_id = ?", tenantID, id).Limit(1).Scan(ctx, &row)
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

package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Reasons a chain breaks, as found in [ChainError].Reason.
const (
	// ReasonHashMismatch: the event's stored hash is not SHA-256 of the
	// previous hash and its canonical encoding, so a field was changed.
	ReasonHashMismatch = "hash mismatch"
	// ReasonPrevHashMismatch: the event's PrevHash is not the previous
	// event's hash.
	ReasonPrevHashMismatch = "prev-hash mismatch"
	// ReasonSequenceGap: the event with this seq is missing.
	ReasonSequenceGap = "sequence gap"
	// ReasonHeadMismatch: the chain head disagrees with the last event, or
	// events exist past the head.
	ReasonHeadMismatch = "head mismatch"
)

// ChainError reports the first broken link of a chain. It wraps
// [ErrChainBroken].
type ChainError struct {
	// Seq is the position of the first event that does not verify (for a
	// gap, the missing position).
	Seq int64
	// EventID is the id of that event, or uuid.Nil when it is missing.
	EventID uuid.UUID
	// Reason is one of the Reason constants.
	Reason string
}

// Error implements error.
func (e *ChainError) Error() string {
	if e.EventID == uuid.Nil {
		return fmt.Sprintf("audit: chain broken at seq %d: %s", e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit: chain broken at seq %d (event %s): %s", e.Seq, e.EventID, e.Reason)
}

// Unwrap returns [ErrChainBroken].
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// VerifyResult is what [Verify] checked.
type VerifyResult struct {
	// TenantID is the chain that was verified.
	TenantID uuid.UUID
	// Events is the number of events that verified, in seq order from 1.
	Events int64
	// HeadSeq and HeadHash are the chain head as read when verification
	// started; events appended later are not checked.
	HeadSeq  int64
	HeadHash []byte
	// Unsealed is the number of the tenant's events that are recorded but
	// not chained yet (see [Store.Seal]). They are not part of the chain,
	// so they are neither verified nor reported as broken.
	Unsealed int64
}

// verifyBatch is how many events Verify reads per query.
const verifyBatch = 1000

// Verify walks the tenant's chain in seq order, a batch at a time, and checks
// every link: each event's seq follows the previous one, its PrevHash is the
// previous event's Hash, and its Hash is SHA-256(PrevHash || canonical
// event) recomputed from the stored fields; then that the chain head names
// the last event. It returns the number of events verified and, for the
// first link that fails, a [*ChainError] wrapping [ErrChainBroken]. An empty
// chain verifies with zero events. It also counts the tenant's events that
// are not chained yet; run [Store.Seal] first to verify every committed
// event.
func Verify(ctx context.Context, db bun.IDB, tenantID uuid.UUID) (VerifyResult, error) {
	res := VerifyResult{TenantID: tenantID}
	head, err := readHead(ctx, db, tenantID)
	if err != nil {
		return res, err
	}
	res.HeadSeq, res.HeadHash = head.Seq, head.Hash
	w := newWalker()
	err = scanEvents(ctx, db, tenantID, 1, head.Seq, func(r *eventRow) error {
		if err := w.check(r); err != nil {
			return err
		}
		res.Events++
		return nil
	})
	if err != nil {
		return res, err
	}
	if res.Unsealed, err = countUnsealed(ctx, db, tenantID); err != nil {
		return res, err
	}
	if res.Events != head.Seq {
		return res, &ChainError{Seq: w.next, Reason: ReasonSequenceGap}
	}
	if head.Seq > 0 && !bytes.Equal(head.Hash, w.prev) {
		return res, &ChainError{Seq: head.Seq, EventID: w.lastID, Reason: ReasonHeadMismatch}
	}
	// An event past the head was written behind the chain's back, unless the
	// head moved meanwhile (a concurrent Record commits both together).
	var extra chainRow
	err = db.NewSelect().Model(&extra).Column("seq", "event_id").
		Where("tenant_id = ? AND seq > ?", tenantID, head.Seq).
		OrderExpr("seq").Limit(1).Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return res, nil
	case err != nil:
		return res, fmt.Errorf("audit: verify: %w", err)
	}
	again, err := readHead(ctx, db, tenantID)
	if err != nil {
		return res, err
	}
	if again.Seq == head.Seq {
		return res, &ChainError{Seq: extra.Seq, EventID: extra.EventID, Reason: ReasonHeadMismatch}
	}
	return res, nil
}

// countUnsealed counts the tenant's events without a link in audit_chain:
// on SQLite those past the last event chained (events are chained in pos
// order there), on Postgres all of them.
func countUnsealed(ctx context.Context, db bun.IDB, tenantID uuid.UUID) (int64, error) {
	q := `SELECT count(*) FROM audit_events
WHERE tenant_id = ? AND pos > (SELECT coalesce(max(pos), 0) FROM audit_chain)`
	if db.Dialect().Name() == dialect.PG {
		q = `SELECT count(*) FROM audit_events AS e
WHERE e.tenant_id = ? AND NOT EXISTS (SELECT 1 FROM audit_chain AS c WHERE c.pos = e.pos)`
	}
	var n int64
	if err := db.NewRaw(q, tenantID).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("audit: count unsealed events: %w", err)
	}
	return n, nil
}

type headRow struct {
	Seq  int64
	Hash []byte
}

// readHead returns the tenant's chain head; seq 0 when it has none.
func readHead(ctx context.Context, db bun.IDB, tenantID uuid.UUID) (headRow, error) {
	var h headRow
	err := db.NewRaw("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?", tenantID).Scan(ctx, &h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return headRow{}, nil
	}
	if err != nil {
		return headRow{}, fmt.Errorf("audit: read chain head: %w", err)
	}
	return h, nil
}

// walker checks the links of a chain, one event at a time in seq order.
type walker struct {
	next   int64
	prev   []byte
	lastID uuid.UUID
}

func newWalker() *walker { return &walker{next: 1, prev: genesis} }

func (w *walker) check(r *eventRow) error {
	if r.Seq != w.next {
		return &ChainError{Seq: w.next, Reason: ReasonSequenceGap}
	}
	if r.EventID != r.ID {
		return &ChainError{Seq: r.Seq, EventID: r.EventID, Reason: ReasonHashMismatch}
	}
	if !bytes.Equal(r.PrevHash, w.prev) {
		return &ChainError{Seq: r.Seq, EventID: r.ID, Reason: ReasonPrevHashMismatch}
	}
	canon, err := r.canonical()
	if err != nil || !bytes.Equal(chainHash(w.prev, canon), r.Hash) {
		return &ChainError{Seq: r.Seq, EventID: r.ID, Reason: ReasonHashMismatch}
	}
	w.next++
	w.prev = r.Hash
	w.lastID = r.ID
	return nil
}

// scanEvents calls fn for the tenant's events with from <= seq <= to, in seq
// order, reading verifyBatch rows per query.
func scanEvents(ctx context.Context, db bun.IDB, tenantID uuid.UUID, from, to int64, fn func(*eventRow) error) error {
	rows := make([]eventRow, 0, verifyBatch)
	for from <= to {
		rows = rows[:0]
		err := db.NewSelect().ColumnExpr(eventColumns).TableExpr("audit_chain AS c").
			Join("LEFT JOIN audit_events AS e ON e.pos = c.pos").
			Where("c.tenant_id = ? AND c.seq >= ? AND c.seq <= ?", tenantID, from, to).
			OrderExpr("c.seq").Limit(verifyBatch).Scan(ctx, &rows)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: read events: %w", err)
		}
		for i := range rows {
			if rows[i].TenantID != tenantID {
				// The linked event is missing or another tenant's.
				return &ChainError{Seq: rows[i].Seq, EventID: rows[i].EventID, Reason: ReasonHashMismatch}
			}
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		if len(rows) < verifyBatch {
			return nil
		}
		from = rows[len(rows)-1].Seq + 1
	}
	return nil
}

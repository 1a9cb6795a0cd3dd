package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
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
}

// verifyBatch is how many events Verify reads per query.
const verifyBatch = 1000

// Verify walks the tenant's chain in seq order, a batch at a time, and checks
// every link: each event's seq follows the previous one, its PrevHash is the
// previous event's Hash, and its Hash is SHA-256(PrevHash || canonical
// event) recomputed from the stored fields; then that the chain head names
// the last event. It returns the number of events verified and, for the
// first link that fails, a [*ChainError] wrapping [ErrChainBroken]. An empty
// chain verifies with zero events.
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
	if res.Events != head.Seq {
		return res, &ChainError{Seq: w.next, Reason: ReasonSequenceGap}
	}
	if head.Seq > 0 && !bytes.Equal(head.Hash, w.prev) {
		return res, &ChainError{Seq: head.Seq, EventID: w.lastID, Reason: ReasonHeadMismatch}
	}
	// An event past the head was written behind the chain's back, unless the
	// head moved meanwhile (a concurrent Record commits both together).
	var extra eventRow
	err = db.NewSelect().Model(&extra).Column("seq", "id").
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
		return res, &ChainError{Seq: extra.Seq, EventID: extra.ID, Reason: ReasonHeadMismatch}
	}
	return res, nil
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
		err := db.NewSelect().Model(&rows).
			Where("tenant_id = ? AND seq >= ? AND seq <= ?", tenantID, from, to).
			OrderExpr("seq").Limit(verifyBatch).Scan(ctx)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: read events: %w", err)
		}
		for i := range rows {
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

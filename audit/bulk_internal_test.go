package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// BulkAppend appends n synthetic events to the tenant's chain in
// transactions of batch events, with multi-row inserts, and seals them: a
// fast way to build long chains for benchmarks.
func BulkAppend(ctx context.Context, db bun.IDB, tenantID uuid.UUID, n, batch int) error {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var s Store
	for done := 0; done < n; {
		k := min(batch, n-done)
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			rows := make([]newEventRow, 0, 500)
			for i := range k {
				seq := done + i + 1
				changes, _ := encodeChanges(map[string]Change{
					"full_name": {Before: fmt.Sprintf("User %d", seq-1), After: fmt.Sprintf("User %d", seq)},
				})
				rows = append(rows, newEventRow{
					TenantID: tenantID, ID: uuid.Must(uuid.NewV7()),
					ActorType: "user", ActorID: "0191d2c3-0000-7000-8000-000000000001",
					Action: "user.updated", ResourceType: "user", ResourceID: fmt.Sprint(seq % 97),
					Changes: changes, RequestID: fmt.Sprintf("req-%d", seq), IP: "203.0.113.7",
					UserAgent: "bench/1.0", CreatedAt: start.Add(time.Duration(seq) * time.Millisecond),
				})
				if len(rows) == cap(rows) || i == k-1 {
					if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
						return err
					}
					rows = rows[:0]
				}
			}
			_, err := s.Seal(ctx, tx)
			return err
		})
		if err != nil {
			return err
		}
		done += k
	}
	return nil
}

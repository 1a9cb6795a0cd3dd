package server

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// insertEvents inserts the events that are new in one statement and
// returns their ids; an event whose (connection, provider, event id) is
// stored already, or twice in wes, is skipped.
//
// On SQLite each row is one run of a statement whose text never changes,
// so that each connection compiles it once: Bun's multi-row insert writes
// every value into the SQL text, and compiling a hundred rows' text cost
// more than inserting them (SQLite runs statements in process, so a
// statement a row costs no round trips). Postgres gets Bun's insert: one
// statement, one round trip.
func insertEvents(ctx context.Context, tx bun.Tx, wes []*WebhookEvent) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	if tx.Dialect().Name() != dialect.SQLite {
		// In key order: two transactions inserting some of the same
		// events (the same delivery sent twice at once) then wait for each
		// other in one order, instead of each holding a key the other
		// waits for. Stable, so that of an event given twice the first is
		// the one stored.
		sorted := slices.Clone(wes)
		slices.SortStableFunc(sorted, func(x, y *WebhookEvent) int {
			return cmp.Or(bytes.Compare(x.ConnectionID[:], y.ConnectionID[:]), strings.Compare(x.Provider, y.Provider),
				strings.Compare(x.EventID, y.EventID))
		})
		_, err := tx.NewInsert().Model(&sorted).On("CONFLICT (connection_id, provider, event_id) DO NOTHING").
			Returning("id").Exec(ctx, &ids)
		return ids, err
	}
	for _, we := range wes {
		var occurred any
		if we.OccurredAt != nil {
			occurred = sqliteTime(*we.OccurredAt)
		}
		// The tenant comes from the event (its connection's), as the
		// tenant hooks of a Bun insert would stamp it.
		res, err := tx.Tx.ExecContext(ctx, sqliteInsertEvent, we.ID.String(), we.TenantID.String(), we.ConnectionID.String(),
			we.Provider, we.EventID, we.Type, we.Payload, occurred, we.Status, we.Attempts, we.LastError,
			sqliteTime(we.ReceivedAt), sqliteTime(we.UpdatedAt))
		if err != nil {
			return nil, fmt.Errorf("server: insert events: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 1 {
			ids = append(ids, we.ID)
		}
	}
	return ids, nil
}

// sqliteTime formats t as Bun's SQLite dialect stores times.
func sqliteTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999-07:00")
}

const sqliteInsertEvent = `INSERT INTO webhook_events (id, tenant_id, connection_id, provider, event_id, type, payload,
	occurred_at, status, attempts, last_error, received_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (connection_id, provider, event_id) DO NOTHING`

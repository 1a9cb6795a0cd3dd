package server

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261225000001",
		Comment: "integration health history",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			db := m.DB()
			idType, tsType := "TEXT", "TIMESTAMP"
			if db.Dialect().Name() == dialect.PG {
				idType, tsType = "UUID", "TIMESTAMPTZ"
			}
			stmts := []string{
				// Platform-wide (providers are shared by every tenant), so
				// not tenant-owned and without row-level security.
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS integration_health_history (
					id %[1]s PRIMARY KEY,
					provider TEXT NOT NULL,
					from_state TEXT NOT NULL,
					to_state TEXT NOT NULL,
					reason TEXT NOT NULL DEFAULT '',
					error_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
					p95_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
					at %[2]s NOT NULL)`, idType, tsType),
				`CREATE INDEX IF NOT EXISTS integration_health_history_provider ON integration_health_history (provider, at)`,
			}
			for _, s := range stmts {
				if _, err := db.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("server: migrate integration health: %w", err)
				}
			}
			return nil
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS integration_health_history")
			return err
		},
	})
}

// healthSnapshot is the stored current health of a provider, as the
// replica that observed it last saw it, so that every replica answers the
// health API alike whichever one runs the checks. Times are Unix
// nanoseconds, compared alike on every database.
type healthSnapshot struct {
	bun.BaseModel `bun:"table:integration_health,alias:ih"`

	Provider            string  `bun:"provider,pk"`
	State               string  `bun:"state,notnull"`
	Since               *int64  `bun:"since"`
	Breaker             string  `bun:"breaker,notnull"`
	ErrorRate           float64 `bun:"error_rate,notnull"`
	Attempts            int     `bun:"attempts,notnull"`
	P50Ms               float64 `bun:"p50_ms,notnull"`
	P95Ms               float64 `bun:"p95_ms,notnull"`
	LastSuccess         *int64  `bun:"last_success"`
	LastFailure         *int64  `bun:"last_failure"`
	LastError           string  `bun:"last_error,notnull"`
	ConsecutiveFailures int     `bun:"consecutive_failures,notnull"`
	UpdatedAt           int64   `bun:"updated_at,notnull"`
	Replica             string  `bun:"replica,notnull"`
}

func nanos(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func fromNanos(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := time.Unix(0, *n).UTC()
	return &t
}

// snapshotRow is the stored form of h, observed by replica.
func snapshotRow(h ProviderHealth, replica string) healthSnapshot {
	return healthSnapshot{Provider: h.Provider, State: h.State, Since: nanos(h.Since), Breaker: h.Breaker,
		ErrorRate: h.ErrorRate, Attempts: h.Attempts, P50Ms: h.P50Ms, P95Ms: h.P95Ms,
		LastSuccess: nanos(h.LastSuccess), LastFailure: nanos(h.LastFailure), LastError: h.LastError,
		ConsecutiveFailures: h.ConsecutiveFailures, UpdatedAt: *nanos(h.ObservedAt), Replica: replica}
}

// view is the API form of the stored snapshot.
func (r healthSnapshot) view() ProviderHealth {
	return ProviderHealth{Provider: r.Provider, State: r.State, Since: fromNanos(r.Since), Breaker: r.Breaker,
		ErrorRate: r.ErrorRate, Attempts: r.Attempts, P50Ms: r.P50Ms, P95Ms: r.P95Ms,
		LastSuccess: fromNanos(r.LastSuccess), LastFailure: fromNanos(r.LastFailure), LastError: r.LastError,
		ConsecutiveFailures: r.ConsecutiveFailures, ObservedAt: fromNanos(&r.UpdatedAt), ObservedBy: r.Replica}
}

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261225000003",
		Comment: "integration health snapshots shared by the replicas",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			// Platform-wide like the history: not tenant-owned.
			_, err := m.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS integration_health (
				provider TEXT PRIMARY KEY,
				state TEXT NOT NULL,
				since BIGINT,
				breaker TEXT NOT NULL,
				error_rate DOUBLE PRECISION NOT NULL DEFAULT 0,
				attempts INTEGER NOT NULL DEFAULT 0,
				p50_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
				p95_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
				last_success BIGINT,
				last_failure BIGINT,
				last_error TEXT NOT NULL DEFAULT '',
				consecutive_failures INTEGER NOT NULL DEFAULT 0,
				updated_at BIGINT NOT NULL,
				replica TEXT NOT NULL DEFAULT '')`)
			if err != nil {
				return fmt.Errorf("server: migrate integration health snapshots: %w", err)
			}
			return nil
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS integration_health")
			return err
		},
	})
}

package server

import (
	"context"
	"fmt"

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

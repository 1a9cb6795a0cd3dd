package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// MigrationTable is the table in which bun/migrate records the migrations of
// this package; its lock table is MigrationTable + "_lock".
const MigrationTable = "tenancy_migrations"

// Migrations are this package's schema migrations (the tenants table), for
// both SQLite and Postgres. Run them with [Migrate], or with a migrate.Migrator
// of your own that uses [MigrationTable].
var Migrations = migrate.NewMigrations()

// Migrate applies the pending [Migrations]. Concurrent callers (replicas
// starting together) are serialised by bun/migrate's lock table: a caller waits
// up to 30 seconds, or until ctx ends, for another to finish.
func Migrate(ctx context.Context, db *bun.DB) error {
	m := migrate.NewMigrator(db, Migrations,
		migrate.WithTableName(MigrationTable),
		migrate.WithLocksTableName(MigrationTable+"_lock"),
		migrate.WithMarkAppliedOnSuccess(true),
	)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("tenancy: migrate: %w", err)
	}
	if err := lock(ctx, m); err != nil {
		return fmt.Errorf("tenancy: migrate: %w", err)
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("tenancy: migrate: %w", err)
	}
	return nil
}

// lock takes the migration lock, waiting for another migrator to release it.
func lock(ctx context.Context, m *migrate.Migrator) error {
	deadline := time.Now().Add(30 * time.Second)
	wait := 50 * time.Millisecond
	for {
		err := m.Lock(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

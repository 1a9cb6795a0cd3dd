package authn

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// MigrationTable is the table in which bun/migrate records the migrations of
// this package; MigrationLockTable is its lock table.
const (
	MigrationTable     = "authn_migrations"
	MigrationLockTable = "authn_migration_locks"
)

// Migrations are the schema migrations of the tables this package owns
// (refresh_tokens). Run them with [Migrate], or add them to your own
// migrator with the table name [MigrationTable].
var Migrations = migrate.NewMigrations()

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20250601000001",
		Comment: "refresh_tokens",
		Up:      goMigration(createRefreshTokens),
		Down:    goMigration(dropRefreshTokens),
	})
}

// goMigration runs fn in a transaction (both dialects have transactional DDL).
func goMigration(fn func(ctx context.Context, tx bun.Tx) error) func(context.Context, *migrate.Migrator, *migrate.Migration) error {
	return func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
		return m.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return fn(ctx, tx) })
	}
}

func createRefreshTokens(ctx context.Context, tx bun.Tx) error {
	uuidT, bytesT, timeT := "TEXT", "BLOB", "TIMESTAMP"
	if tx.Dialect().Name() == dialect.PG {
		uuidT, bytesT, timeT = "uuid", "bytea", "timestamptz"
	}
	stmts := []string{
		`CREATE TABLE refresh_tokens (
			id ` + uuidT + ` PRIMARY KEY,
			family_id ` + uuidT + ` NOT NULL,
			parent_id ` + uuidT + `,
			user_id ` + uuidT + ` NOT NULL,
			tenant_id ` + uuidT + `,
			token_hash ` + bytesT + ` NOT NULL UNIQUE,
			user_agent TEXT,
			ip TEXT,
			created_at ` + timeT + ` NOT NULL,
			expires_at ` + timeT + ` NOT NULL,
			used_at ` + timeT + `,
			revoked_at ` + timeT + `
		)`,
		`CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id)`,
		`CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id)`,
		`CREATE INDEX refresh_tokens_expires_at_idx ON refresh_tokens (expires_at)`,
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func dropRefreshTokens(ctx context.Context, tx bun.Tx) error {
	_, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS refresh_tokens`)
	return err
}

// Migrate applies this package's pending migrations to db, recording them in
// [MigrationTable]. It is safe to call on every start.
func Migrate(ctx context.Context, db *bun.DB) error {
	m := migrate.NewMigrator(db, Migrations,
		migrate.WithTableName(MigrationTable),
		migrate.WithLocksTableName(MigrationLockTable),
		migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("authn: migrate: init: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("authn: migrate: lock: %w", err)
	}
	defer m.Unlock(context.WithoutCancel(ctx))
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("authn: migrate: %w", err)
	}
	return nil
}

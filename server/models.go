package server

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// User is a global identity. Its memberships join it to tenants.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           uuid.UUID `bun:"id,pk,type:uuid"`
	Email        string    `bun:"email,notnull,unique"`
	FullName     string    `bun:"full_name,notnull"`
	PasswordHash string    `bun:"password_hash,notnull"`
	IsSuperadmin bool      `bun:"is_superadmin,notnull"`
	CreatedAt    time.Time `bun:"created_at,notnull"`
	UpdatedAt    time.Time `bun:"updated_at,notnull"`
}

// Member joins a user to a tenant with a role. It is tenant-owned: every query
// on it is scoped to the context's tenant.
type Member struct {
	bun.BaseModel `bun:"table:members"`
	tenancy.Scoped

	UserID    uuid.UUID  `bun:"user_id,pk,type:uuid"`
	Role      authn.Role `bun:"role,notnull"`
	IsActive  bool       `bun:"is_active,notnull"`
	CreatedAt time.Time  `bun:"created_at,notnull"`
	UpdatedAt time.Time  `bun:"updated_at,notnull"`

	User *User `bun:"rel:belongs-to,join:user_id=id"`
}

// signingKey persists the JWT key set.
type signingKey struct {
	bun.BaseModel `bun:"table:signing_keys"`

	ID        int64     `bun:"id,pk"`
	KeySet    string    `bun:"key_set,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// MigrationTable is the bun/migrate table of the server's own tables.
const MigrationTable = "server_migrations"

// Migrations creates the server's tables: users, members, signing_keys and
// audit_signing_keys (the generated audit checkpoint key).
var Migrations = migrate.NewMigrations()

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261127000001",
		Comment: "users, members, signing keys",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			db := m.DB()
			pg := db.Dialect().Name() == dialect.PG
			idType, tsType := "TEXT", "TIMESTAMP"
			if pg {
				idType, tsType = "UUID", "TIMESTAMPTZ"
			}
			stmts := []string{
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS users (
					id %[1]s PRIMARY KEY,
					email TEXT NOT NULL UNIQUE,
					full_name TEXT NOT NULL DEFAULT '',
					password_hash TEXT NOT NULL DEFAULT '',
					is_superadmin BOOLEAN NOT NULL DEFAULT FALSE,
					created_at %[2]s NOT NULL,
					updated_at %[2]s NOT NULL)`, idType, tsType),
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS members (
					tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
					user_id %[1]s NOT NULL REFERENCES users(id) ON DELETE CASCADE,
					role TEXT NOT NULL CHECK (role IN ('user', 'admin', 'owner')),
					is_active BOOLEAN NOT NULL DEFAULT TRUE,
					created_at %[2]s NOT NULL,
					updated_at %[2]s NOT NULL,
					PRIMARY KEY (tenant_id, user_id))`, idType, tsType),
				`CREATE INDEX IF NOT EXISTS members_tenant_created ON members (tenant_id, created_at, user_id)`,
				`CREATE INDEX IF NOT EXISTS members_user ON members (user_id, tenant_id)`,
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS signing_keys (
					id BIGINT PRIMARY KEY,
					key_set TEXT NOT NULL,
					updated_at %s NOT NULL)`, tsType),
			}
			for _, s := range stmts {
				if _, err := db.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("server: migrate: %w", err)
				}
			}
			return tenancy.EnableRLS(ctx, db, "members")
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			for _, s := range []string{"DROP TABLE IF EXISTS signing_keys", "DROP TABLE IF EXISTS members", "DROP TABLE IF EXISTS users"} {
				if _, err := m.DB().ExecContext(ctx, s); err != nil {
					return err
				}
			}
			return nil
		},
	})
	Migrations.Add(migrate.Migration{
		Name:    "20261201000001",
		Comment: "audit checkpoint signing key",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			tsType := "TIMESTAMP"
			if m.DB().Dialect().Name() == dialect.PG {
				tsType = "TIMESTAMPTZ"
			}
			_, err := m.DB().ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS audit_signing_keys (
				id BIGINT PRIMARY KEY,
				signer_key TEXT NOT NULL,
				verifier_key TEXT NOT NULL,
				created_at %s NOT NULL)`, tsType))
			return err
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS audit_signing_keys")
			return err
		},
	})
}

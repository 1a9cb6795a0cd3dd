package server

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// MigrationSet is one package's migrations with the table that records them.
type MigrationSet struct {
	Name       string
	Table      string
	Migrations *migrate.Migrations
}

// MigrationSets lists the migrations the server runs, in dependency order:
// each package owns its tables and records its migrations in its own table.
func MigrationSets() []MigrationSet {
	return []MigrationSet{
		{"tenancy", tenancy.MigrationTable, tenancy.Migrations},
		{"authn", authn.MigrationTable, authn.Migrations},
		{"audit", audit.MigrationTable, audit.Migrations},
		{"server", MigrationTable, Migrations},
	}
}

func (m MigrationSet) migrator(db *bun.DB) *migrate.Migrator {
	return migrate.NewMigrator(db, m.Migrations,
		migrate.WithTableName(m.Table), migrate.WithLocksTableName(m.Table+"_lock"),
		migrate.WithMarkAppliedOnSuccess(true))
}

// Migrate runs every pending migration and, on Postgres, makes sure the
// application role exists with its grants (appRole may be empty).
func Migrate(ctx context.Context, db *bun.DB, appRole string) error {
	for _, set := range MigrationSets() {
		m := set.migrator(db)
		if err := m.Init(ctx); err != nil {
			return fmt.Errorf("server: migrate %s: init: %w", set.Name, err)
		}
		if err := m.Lock(ctx); err != nil {
			return fmt.Errorf("server: migrate %s: lock: %w", set.Name, err)
		}
		_, err := m.Migrate(ctx)
		m.Unlock(ctx) //nolint:errcheck
		if err != nil {
			return fmt.Errorf("server: migrate %s: %w", set.Name, err)
		}
	}
	// River's job tables, before the app role's grants.
	if err := migrateRiver(ctx, db); err != nil {
		return err
	}
	if appRole != "" {
		// EnsureAppRole grants the role every privilege on every table (and
		// by default on future ones); RestrictRole then takes UPDATE, DELETE
		// and TRUNCATE on the audit tables back. One transaction, so that
		// the role never holds both at once.
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if err := tenancy.EnsureAppRole(ctx, tx, appRole); err != nil {
				return err
			}
			return audit.RestrictRole(ctx, tx, appRole)
		})
		if err != nil {
			return fmt.Errorf("server: app role: %w", err)
		}
	}
	return nil
}

// MigrateDown rolls back the last migration group of the named set (default:
// the last set).
func MigrateDown(ctx context.Context, db *bun.DB, name string) error {
	sets := MigrationSets()
	set := sets[len(sets)-1]
	if name != "" {
		found := false
		for _, s := range sets {
			if s.Name == name {
				set, found = s, true
			}
		}
		if !found {
			return fmt.Errorf("%w: no migration set %q", ErrConfig, name)
		}
	}
	m := set.migrator(db)
	if err := m.Init(ctx); err != nil {
		return err
	}
	if err := m.Lock(ctx); err != nil {
		return err
	}
	defer m.Unlock(ctx) //nolint:errcheck
	_, err := m.Rollback(ctx)
	return err
}

// MigrationStatus writes each set's applied and pending migrations to w.
func MigrationStatus(ctx context.Context, db *bun.DB, w io.Writer) error {
	for _, set := range MigrationSets() {
		m := set.migrator(db)
		if err := m.Init(ctx); err != nil {
			return err
		}
		ms, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return err
		}
		var applied, pending []string
		for _, mg := range ms {
			if mg.IsApplied() {
				applied = append(applied, mg.Name)
			} else {
				pending = append(pending, mg.Name)
			}
		}
		fmt.Fprintf(w, "%-10s applied: %s; pending: %s\n", set.Name, orNone(applied), orNone(pending))
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

package server

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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

// migrateLockWait bounds how long Migrate waits for another process's
// migration lock.
const migrateLockWait = 2 * time.Minute

// Migrate runs every pending migration and, on Postgres, makes sure the
// application role exists with its grants (appRole may be empty).
//
// Several processes may start at once (replicas and workers of one
// rollout): the first takes the migration lock (a row in the lock table of
// the server's set) and the others wait for it, up to two minutes, then
// find nothing pending. A process that died holding the lock leaves its row
// behind: a Migrate with migrations pending then fails with an error that
// names the table to clear; one with none pending does not take the lock.
func Migrate(ctx context.Context, db *bun.DB, appRole string) error {
	sets := MigrationSets()
	for _, set := range sets {
		if err := initMigrator(ctx, set, db); err != nil {
			return err
		}
	}
	pending, err := migrationsPending(ctx, db)
	if err != nil {
		return err
	}
	if pending {
		if err := migrateLocked(ctx, db, sets); err != nil {
			return err
		}
	}
	// The grants take a lock of their own (EnsureAppRole's advisory lock),
	// so that a stale migration lock does not keep a migrated database
	// from starting.
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

// migrateLocked applies every pending migration under the migration lock,
// River's job tables last (before the app role's grants).
func migrateLocked(ctx context.Context, db *bun.DB, sets []MigrationSet) error {
	lock := sets[len(sets)-1]
	unlock, err := waitMigrationLock(ctx, lock.migrator(db), lock.Table+"_lock")
	if err != nil {
		return err
	}
	defer unlock()
	for _, set := range sets {
		if _, err := set.migrator(db).Migrate(ctx); err != nil {
			return fmt.Errorf("server: migrate %s: %w", set.Name, err)
		}
	}
	return migrateRiver(ctx, db)
}

// initMigrator creates a set's migration tables. Two processes creating
// them at once may collide on Postgres's catalog: the loser tries again.
func initMigrator(ctx context.Context, set MigrationSet, db *bun.DB) error {
	var err error
	for range 5 {
		if err = set.migrator(db).Init(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("server: migrate %s: init: %w", set.Name, err)
}

// migrationsPending reports whether any set, or River, has a migration not
// yet applied.
func migrationsPending(ctx context.Context, db *bun.DB) (bool, error) {
	for _, set := range MigrationSets() {
		ms, err := set.migrator(db).MigrationsWithStatus(ctx)
		if err != nil {
			return false, fmt.Errorf("server: migrate %s: %w", set.Name, err)
		}
		if len(ms.Unapplied()) > 0 {
			return true, nil
		}
	}
	applied, all, err := riverVersions(ctx, db)
	if err != nil {
		return false, err
	}
	return len(applied) < len(all), nil
}

// waitMigrationLock takes m's lock, waiting while another process holds
// it, and returns its release.
func waitMigrationLock(ctx context.Context, m *migrate.Migrator, table string) (func(), error) {
	ctx, cancel := context.WithTimeout(ctx, migrateLockWait)
	defer cancel()
	wait := 20 * time.Millisecond
	for {
		err := m.Lock(ctx)
		if err == nil {
			return func() { m.Unlock(context.WithoutCancel(ctx)) }, nil //nolint:errcheck // a failed unlock leaves the row, reported by the next run
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("server: migrate: another process has held the migration lock for %s (%v); "+
				"if none is migrating, one died doing so: delete the row of table %s", migrateLockWait, err, table)
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
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
	applied, all, err := riverVersions(ctx, db)
	if err != nil {
		return err
	}
	done := map[int]bool{}
	var a, p []string
	for _, v := range applied {
		done[v] = true
		a = append(a, strconv.Itoa(v))
	}
	for _, v := range all {
		if !done[v] {
			p = append(p, strconv.Itoa(v))
		}
	}
	fmt.Fprintf(w, "%-10s applied: %s; pending: %s\n", "river", orNone(a), orNone(p))
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

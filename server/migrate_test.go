package server

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestMigrateConcurrently starts several migrations at once on a fresh
// database, each on a pool of its own as separate processes would: one
// migrates, the others wait for its lock and find nothing pending, and
// every one succeeds. Status then lists every set, River's included, with
// nothing pending.
func TestMigrateConcurrently(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			other := db.Open(t)
			wg.Go(func() { errs[i] = Migrate(t.Context(), other, "") })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("migration %d: %v", i, err)
			}
		}
		var out bytes.Buffer
		if err := MigrationStatus(t.Context(), db.DB, &out); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != len(MigrationSets())+1 || !strings.HasPrefix(lines[len(lines)-1], "river ") {
			t.Fatalf("status:\n%s", out.String())
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, "pending: none") || strings.Contains(l, "applied: none") {
				t.Errorf("status line %q: want all applied", l)
			}
		}
	})
}

// TestMigrateStaleLockWithNothingPending leaves the migration lock's row
// behind, as a process killed while migrating would: a migrated database
// still starts (nothing pending, the lock is not taken).
func TestMigrateStaleLockWithNothingPending(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		if err := Migrate(t.Context(), db.DB, "saaskit_app"); err != nil {
			t.Fatal(err)
		}
		sets := MigrationSets()
		lock := sets[len(sets)-1]
		if err := lock.migrator(db.DB).Lock(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := Migrate(t.Context(), db.DB, "saaskit_app"); err != nil {
			t.Fatalf("migrated database with a stale lock: %v", err)
		}
	})
}

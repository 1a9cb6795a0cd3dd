package audit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

// setup migrates db and returns a store on a moving fake clock.
func setup(t testing.TB, db *dbtest.DB) *audit.Store {
	t.Helper()
	if err := audit.Migrate(context.Background(), db.DB); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	clock := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	var mu sync.Mutex
	return &audit.Store{Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(1500 * time.Microsecond)
		return clock
	}}
}

// record appends n events to the tenant's chain, one transaction each,
// seals them and returns them as chained.
func record(t testing.TB, db bun.IDB, s *audit.Store, tenant uuid.UUID, n int) []audit.Event {
	t.Helper()
	var out []audit.Event
	for i := range n {
		ev := audit.Event{
			TenantID:     tenant,
			Actor:        audit.Actor{Type: audit.ActorUser, ID: "u-1"},
			Action:       "user.updated",
			ResourceType: "user",
			ResourceID:   "u-2",
			Changes: audit.Diff(
				map[string]any{"full_name": "Ada", "age": i, "password": "old"},
				map[string]any{"full_name": "Ada L. <&>", "age": i + 1, "password": "new"}),
			RequestID: "req",
			IP:        "192.0.2.1",
			UserAgent: "test/1.0 \"quoted\" ünïcode",
		}
		if err := s.Record(context.Background(), db, &ev); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		if ev.Seq != 0 || ev.Hash != nil {
			t.Fatalf("Record %d set seq %d before sealing", i, ev.Seq)
		}
		out = append(out, ev)
	}
	seal(t, db, s)
	for i, ev := range out {
		got, err := audit.Get(context.Background(), db, tenant, ev.ID)
		if err != nil {
			t.Fatalf("Get %d: %v", i, err)
		}
		out[i] = *got
	}
	return out
}

// seal chains the events recorded so far.
func seal(t testing.TB, db bun.IDB, s *audit.Store) int {
	t.Helper()
	n, err := s.Seal(context.Background(), db)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return n
}

func count(t testing.TB, db bun.IDB, table string) int64 {
	t.Helper()
	n, err := db.NewSelect().Table(table).Count(context.Background())
	if err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// dropTrigger removes a trigger as the database owner would, to alter a row
// behind the application's back.
func dropTrigger(t testing.TB, db *dbtest.DB, name, table string) {
	t.Helper()
	q := "DROP TRIGGER " + name
	if db.IsPostgres() {
		q += " ON " + table
	}
	if _, err := db.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

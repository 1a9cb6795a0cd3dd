package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

func TestRecordVerify(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		a, b := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		chains := map[uuid.UUID][]audit.Event{
			a:        record(t, db, s, a, 5),
			b:        record(t, db, s, b, 3),
			uuid.Nil: record(t, db, s, uuid.Nil, 2),
		}
		for tenant, evs := range chains {
			prev := make([]byte, 32)
			for i, ev := range evs {
				if ev.Seq != int64(i+1) || ev.TenantID != tenant || ev.ID.Version() != 7 {
					t.Fatalf("event %d: seq %d tenant %s id %s", i, ev.Seq, ev.TenantID, ev.ID)
				}
				if !bytes.Equal(ev.PrevHash, prev) {
					t.Fatalf("event %d: prev hash %x, want %x", ev.Seq, ev.PrevHash, prev)
				}
				if ev.CreatedAt.Nanosecond()%1000 != 0 || ev.CreatedAt.Location() != time.UTC {
					t.Fatalf("event %d: created_at %v not UTC microseconds", ev.Seq, ev.CreatedAt)
				}
				// What Get reads back hashes to the stored hash.
				got, err := audit.Get(ctx, db, tenant, ev.ID)
				if err != nil {
					t.Fatal(err)
				}
				canon, err := got.Canonical()
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(append(append([]byte(nil), prev...), canon...))
				if !bytes.Equal(sum[:], ev.Hash) || !bytes.Equal(got.Hash, ev.Hash) || !got.CreatedAt.Equal(ev.CreatedAt) {
					t.Fatalf("event %d read back does not hash to its hash:\n%s", ev.Seq, canon)
				}
				if got.Changes["password"].After != audit.Redacted || got.Changes["full_name"].After != "Ada L. <&>" {
					t.Fatalf("event %d changes read back: %#v", ev.Seq, got.Changes)
				}
				prev = ev.Hash
			}
			res, err := audit.Verify(ctx, db, tenant)
			if err != nil {
				t.Fatalf("Verify(%s): %v", tenant, err)
			}
			if res.Events != int64(len(evs)) || res.HeadSeq != int64(len(evs)) || !bytes.Equal(res.HeadHash, prev) {
				t.Fatalf("Verify(%s) = %+v, want %d events", tenant, res, len(evs))
			}
		}
		res, err := audit.Verify(ctx, db, uuid.Must(uuid.NewV7()))
		if err != nil || res.Events != 0 {
			t.Fatalf("Verify(empty) = %+v, %v", res, err)
		}

		page, err := audit.List(ctx, db, audit.Query{TenantID: a, Limit: 2})
		if err != nil || len(page) != 2 || page[0].Seq != 5 || page[1].Seq != 4 {
			t.Fatalf("List = %v, %v", page, err)
		}
		page, err = audit.List(ctx, db, audit.Query{TenantID: a, BeforeSeq: 4, Action: "user.updated"})
		if err != nil || len(page) != 3 || page[0].Seq != 3 {
			t.Fatalf("List(before 4) = %v, %v", page, err)
		}
		page, err = audit.List(ctx, db, audit.Query{TenantID: a, Action: "user.deleted"})
		if err != nil || len(page) != 0 {
			t.Fatalf("List(other action) = %v, %v", page, err)
		}
		if _, err := audit.Get(ctx, db, b, chains[a][0].ID); !errors.Is(err, audit.ErrNotFound) {
			t.Fatalf("Get(other tenant's event) = %v, want ErrNotFound", err)
		}
	})
}

func TestRecordFillsFromContext(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := setup(t, db)
		ctx := audit.WithActor(t.Context(), audit.Actor{Type: audit.ActorIntegration, ID: "payment-service"})
		ctx = audit.WithRequestInfo(ctx, audit.RequestInfo{RequestID: "r-1", IP: "198.51.100.1", UserAgent: "ua"})
		ev := audit.Event{Action: "tenant.plan_changed", IP: "203.0.113.9"}
		if err := s.Record(ctx, db, &ev); err != nil {
			t.Fatal(err)
		}
		seal(t, db, s)
		got, err := audit.Get(ctx, db, uuid.Nil, ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := audit.Actor{Type: audit.ActorIntegration, ID: "payment-service"}
		if got.Actor != want || got.RequestID != "r-1" || got.IP != "203.0.113.9" || got.UserAgent != "ua" {
			t.Fatalf("got %+v", got)
		}
		explicit := audit.Event{Action: "x.y", Actor: audit.Actor{Type: audit.ActorSystem}}
		if err := s.Record(ctx, db, &explicit); err != nil {
			t.Fatal(err)
		}
		seal(t, db, s)
		got, err = audit.Get(ctx, db, uuid.Nil, explicit.ID)
		if err != nil || got.Actor.Type != audit.ActorSystem || got.Actor.ID != "" || got.Seq != 2 {
			t.Fatalf("explicit actor replaced: %+v, %v", got, err)
		}
	})
}

func TestRecordRefusesInvalidEvents(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := setup(t, db)
		sys := audit.Actor{Type: audit.ActorSystem}
		cases := map[string]audit.Event{
			"empty action":  {Actor: sys},
			"no actor":      {Action: "a.b"},
			"unknown actor": {Action: "a.b", Actor: audit.Actor{Type: "robot"}},
			"invalid utf8":  {Action: "a.b", Actor: sys, ResourceID: "\xff"},
			"nul byte":      {Action: "a.b", Actor: sys, UserAgent: "a\x00b"},
			"long field":    {Action: "a.b", Actor: sys, UserAgent: strings.Repeat("x", 2000)},
			"bad changes":   {Action: "a.b", Actor: sys, Changes: map[string]audit.Change{"f": {After: make(chan int)}}},
		}
		for name, ev := range cases {
			if err := s.Record(t.Context(), db, &ev); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Errorf("%s: Record = %v, want ErrInvalidEvent", name, err)
			}
			if err := audit.Nop.Record(t.Context(), db, &ev); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Errorf("%s: Nop.Record = %v, want ErrInvalidEvent", name, err)
			}
		}
		if n := count(t, db, "audit_events"); n != 0 {
			t.Fatalf("%d events written", n)
		}
	})
}

func TestTriggersRefuseChanges(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		tenant := uuid.Must(uuid.NewV7())
		record(t, db, s, tenant, 3)
		if _, err := s.Checkpoint(ctx, db, newSigner(t), tenant); err != nil {
			t.Fatal(err)
		}
		stmts := []string{
			"UPDATE audit_events SET action = 'user.deleted' WHERE pos = 2",
			"UPDATE audit_events SET tenant_id = tenant_id",
			"DELETE FROM audit_events WHERE pos = 3",
			"DELETE FROM audit_events",
			"UPDATE audit_chain SET hash = prev_hash",
			"DELETE FROM audit_chain WHERE seq = 3",
			"UPDATE audit_tree_hashes SET idx = idx + 100",
			"DELETE FROM audit_tree_hashes",
			"UPDATE audit_checkpoints SET size = 1",
			"DELETE FROM audit_checkpoints",
		}
		if db.IsPostgres() {
			stmts = append(stmts, "TRUNCATE audit_events", "TRUNCATE audit_chain", "TRUNCATE audit_tree_hashes", "TRUNCATE audit_checkpoints")
		}
		for _, q := range stmts {
			_, err := db.ExecContext(ctx, q)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want refusal", q, err)
			}
		}
		if res, err := audit.Verify(ctx, db, tenant); err != nil || res.Events != 3 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if n := count(t, db, "audit_checkpoints"); n != 1 {
			t.Fatalf("%d checkpoints", n)
		}
	})
}

func TestVerifyFindsTampering(t *testing.T) {
	const k = 3 // the event altered, of 6
	seven := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name    string
		trigger string // dropped first, as the database owner could
		sql     string // with the tenant as the first argument
		args    func(last audit.Event) []any
		seq     int64
		reason  string
	}{
		{"action", "audit_events_no_update",
			"UPDATE audit_events SET action = 'user.deleted' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)",
			nil, k, audit.ReasonHashMismatch},
		{"actor", "audit_events_no_update",
			"UPDATE audit_events SET actor_id = 'someone-else' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)",
			nil, k, audit.ReasonHashMismatch},
		{"created_at", "audit_events_no_update",
			"UPDATE audit_events SET created_at = ? WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)",
			func(last audit.Event) []any { return []any{last.CreatedAt.Add(time.Microsecond)} }, k, audit.ReasonHashMismatch},
		{"changes", "audit_events_no_update",
			`UPDATE audit_events SET changes = '{"role":{"after":"owner","before":"user"}}' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)`,
			nil, k, audit.ReasonHashMismatch},
		{"hash", "audit_chain_no_update",
			"UPDATE audit_chain SET hash = ? WHERE tenant_id = ? AND seq = 3",
			func(audit.Event) []any { return []any{seven} }, k, audit.ReasonHashMismatch},
		{"prev_hash", "audit_chain_no_update",
			"UPDATE audit_chain SET prev_hash = ? WHERE tenant_id = ? AND seq = 3",
			func(audit.Event) []any { return []any{seven} }, k, audit.ReasonPrevHashMismatch},
		{"link moved", "audit_chain_no_update",
			"UPDATE audit_chain SET pos = pos + 1000 WHERE tenant_id = ? AND seq = 3",
			nil, k, audit.ReasonHashMismatch},
		{"event deleted", "audit_events_no_delete",
			"DELETE FROM audit_events WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 3)",
			nil, k, audit.ReasonHashMismatch},
		{"link deleted", "audit_chain_no_delete",
			"DELETE FROM audit_chain WHERE tenant_id = ? AND seq = 3",
			nil, k, audit.ReasonSequenceGap},
		{"last link deleted", "audit_chain_no_delete",
			"DELETE FROM audit_chain WHERE tenant_id = ? AND seq = 6",
			nil, 6, audit.ReasonSequenceGap},
		{"head", "",
			"UPDATE audit_heads SET hash = ? WHERE tenant_id = ?",
			func(audit.Event) []any { return []any{seven} }, 6, audit.ReasonHeadMismatch},
		{"appended past head", "",
			`INSERT INTO audit_chain (tenant_id, seq, pos, event_id, prev_hash, hash) VALUES (?, 7, 1000000, ?, ?, ?)`,
			func(last audit.Event) []any {
				return []any{uuid.Must(uuid.NewV7()), last.Hash, last.Hash}
			}, 7, audit.ReasonHeadMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
				ctx := t.Context()
				s := setup(t, db)
				tenant, other := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
				evs := record(t, db, s, tenant, 6)
				record(t, db, s, other, 4)
				if tc.trigger != "" {
					dropTrigger(t, db, tc.trigger, strings.TrimSuffix(strings.TrimSuffix(tc.trigger, "_no_update"), "_no_delete"))
				}
				var args []any
				if tc.args != nil {
					args = tc.args(evs[len(evs)-1])
				}
				// The tenant goes where its placeholder is: first, or after the SET value.
				if strings.HasPrefix(tc.sql, "UPDATE") && strings.Contains(tc.sql, "SET") && len(args) == 1 {
					args = []any{args[0], tenant}
				} else {
					args = append([]any{tenant}, args...)
				}
				res, err := db.NewRaw(tc.sql, args...).Exec(ctx)
				if err != nil {
					t.Fatalf("tamper: %v", err)
				}
				if n, _ := res.RowsAffected(); n != 1 {
					t.Fatalf("tamper touched %d rows", n)
				}
				vr, err := audit.Verify(ctx, db, tenant)
				var ce *audit.ChainError
				if !errors.As(err, &ce) || !errors.Is(err, audit.ErrChainBroken) {
					t.Fatalf("Verify = %+v, %v; want a ChainError", vr, err)
				}
				if ce.Seq != tc.seq || ce.Reason != tc.reason {
					t.Fatalf("Verify: %v; want seq %d: %s", err, tc.seq, tc.reason)
				}
				if tc.reason != audit.ReasonHeadMismatch && vr.Events != tc.seq-1 {
					t.Fatalf("Verify checked %d events, want %d", vr.Events, tc.seq-1)
				}
				if _, err := audit.Verify(ctx, db, other); err != nil {
					t.Fatalf("other tenant: %v", err)
				}
			})
		})
	}
}

// widgets is a tenant table of the host service, changed together with its
// audit events.
func createWidgets(t *testing.T, db bun.IDB) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
}

func TestEventAndChangeCommitTogether(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		createWidgets(t, db)
		tenant := uuid.Must(uuid.NewV7())
		created := func(id int) *audit.Event {
			return &audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorUser, ID: "u"},
				Action: "widget.created", ResourceType: "widget", ResourceID: fmt.Sprint(id)}
		}

		// A change that fails after its event was recorded takes the event with it.
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (1, 'a')"); err != nil {
				return err
			}
			if err := s.Record(ctx, tx, created(1)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (1, 'again')")
			return err
		})
		if err == nil {
			t.Fatal("duplicate insert succeeded")
		}
		if n, m := count(t, db, "audit_events"), count(t, db, "audit_heads"); n != 0 || m != 0 {
			t.Fatalf("after a failed change: %d events, %d heads", n, m)
		}

		// An event that cannot be written takes the change with it.
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (2, 'b')"); err != nil {
				return err
			}
			return s.Record(ctx, tx, &audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorUser}})
		})
		if !errors.Is(err, audit.ErrInvalidEvent) {
			t.Fatalf("err = %v, want ErrInvalidEvent", err)
		}
		if n := count(t, db, "widgets"); n != 0 {
			t.Fatalf("after a failed event: %d widgets", n)
		}

		ok := created(3)
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (3, 'c')"); err != nil {
				return err
			}
			return s.Record(ctx, tx, ok)
		})
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		if n := seal(t, db, s); n != 1 {
			t.Fatalf("sealed %d events, want 1", n)
		}

		// The database refuses the event (on Postgres, its id is taken; on
		// SQLite, which keeps no index of ids, a trigger refuses it): the
		// change rolls back.
		if !db.IsPostgres() {
			if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_widget BEFORE INSERT ON audit_events
WHEN NEW.resource_id = '4' BEGIN SELECT RAISE(ABORT, 'refused'); END`); err != nil {
				t.Fatal(err)
			}
		}
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (4, 'd')"); err != nil {
				return err
			}
			dup := created(4)
			dup.ID = ok.ID
			return s.Record(ctx, tx, dup)
		})
		if err == nil {
			t.Fatal("refused event accepted")
		}
		seal(t, db, s)
		if n := count(t, db, "widgets"); n != 1 {
			t.Fatalf("%d widgets, want 1", n)
		}
		if res, err := audit.Verify(ctx, db, tenant); err != nil || res.Events != 1 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		createWidgets(t, db)
		pools := []bun.IDB{db.DB, db.Open(t)}
		tenant := uuid.Must(uuid.NewV7())
		const writers, each = 16, 4
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := w*each + i
					errs <- pools[w%2].RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
						if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (id, name) VALUES (?, 'w')", id); err != nil {
							return err
						}
						return s.Record(ctx, tx, &audit.Event{TenantID: tenant,
							Actor:  audit.Actor{Type: audit.ActorUser, ID: fmt.Sprint(w)},
							Action: "widget.created", ResourceType: "widget", ResourceID: fmt.Sprint(id)})
					})
				}
			})
		}
		// A sealer chains events while they are being recorded.
		done := make(chan struct{})
		sealed := make(chan error, 1)
		go func() {
			for {
				if _, err := s.Seal(ctx, pools[1]); err != nil {
					sealed <- err
					return
				}
				select {
				case <-done:
					sealed <- nil
					return
				default:
				}
			}
		}()
		wg.Wait()
		close(done)
		if err := <-sealed; err != nil {
			t.Fatalf("concurrent Seal: %v", err)
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		seal(t, db, s)
		res, err := audit.Verify(ctx, db, tenant)
		if err != nil || res.Events != writers*each || res.Unsealed != 0 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		evs, err := audit.List(ctx, db, audit.Query{TenantID: tenant, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for i, ev := range evs {
			if ev.Seq != int64(writers*each-i) {
				t.Fatalf("seq %d at position %d", ev.Seq, i)
			}
			seen[ev.ResourceID] = true
		}
		if len(seen) != writers*each {
			t.Fatalf("%d distinct events", len(seen))
		}
	})
}

func TestRestrictRole(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		if !db.IsPostgres() {
			if err := audit.RestrictRole(ctx, db, "app"); err != nil {
				t.Fatalf("RestrictRole on SQLite: %v", err)
			}
			return // no roles
		}
		role := "audit_app_" + db.Schema
		for _, q := range []string{
			"CREATE ROLE " + role + " NOLOGIN",
			"GRANT USAGE ON SCHEMA " + db.Schema + " TO " + role,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			ctx := context.Background()
			db.ExecContext(ctx, "DROP OWNED BY "+role)
			db.ExecContext(ctx, "DROP ROLE "+role)
		})
		if err := audit.RestrictRole(ctx, db, role); err != nil {
			t.Fatal(err)
		}
		tenant := uuid.Must(uuid.NewV7())
		asRole := func(fn func(ctx context.Context, tx bun.Tx) error) error {
			return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+role); err != nil {
					return err
				}
				return fn(ctx, tx)
			})
		}
		err := asRole(func(ctx context.Context, tx bun.Tx) error {
			for range 2 {
				if err := s.Record(ctx, tx, &audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorSystem}, Action: "a.b"}); err != nil {
					return err
				}
			}
			_, err := s.Checkpoint(ctx, tx, newSigner(t), tenant)
			return err
		})
		if err != nil {
			t.Fatalf("record as %s: %v", role, err)
		}
		for _, q := range []string{"UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events", "TRUNCATE audit_tree_hashes", "DROP TRIGGER audit_events_no_update ON audit_events"} {
			err := asRole(func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.ExecContext(ctx, q)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "42501") && !strings.Contains(err.Error(), "permission denied") && !strings.Contains(err.Error(), "must be owner") {
				t.Errorf("%s as %s: %v, want permission denied", q, role, err)
			}
		}
		if res, err := audit.Verify(ctx, db, tenant); err != nil || res.Events != 2 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
}

func TestSealChainsEachCommittedEventOnce(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		tenant, other := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		ev := func(tenant uuid.UUID, id string) *audit.Event {
			return &audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorUser, ID: "u"},
				Action: "widget.created", ResourceType: "widget", ResourceID: id}
		}
		verify := func(tenant uuid.UUID, events, unsealed int64) {
			t.Helper()
			res, err := audit.Verify(ctx, db, tenant)
			if err != nil || res.Events != events || res.Unsealed != unsealed {
				t.Fatalf("Verify = %+v, %v; want %d events, %d unsealed", res, err, events, unsealed)
			}
		}

		// Recorded, not sealed: outside the chain, counted, not broken.
		if err := s.Record(ctx, db, ev(tenant, "a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, db, ev(other, "b")); err != nil {
			t.Fatal(err)
		}
		verify(tenant, 0, 1)
		if page, err := audit.List(ctx, db, audit.Query{TenantID: tenant}); err != nil || len(page) != 0 {
			t.Fatalf("List before Seal = %v, %v", page, err)
		}
		if n := seal(t, db, s); n != 2 {
			t.Fatalf("sealed %d, want 2", n)
		}
		if n := seal(t, db, s); n != 0 {
			t.Fatalf("sealed %d again", n)
		}
		verify(tenant, 1, 0)
		verify(other, 1, 0)

		// A Seal that rolls back chains nothing; the next one does.
		if err := s.Record(ctx, db, ev(tenant, "c")); err != nil {
			t.Fatal(err)
		}
		errRollback := errors.New("rollback")
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if n, err := s.Seal(ctx, tx); err != nil || n != 1 {
				t.Errorf("Seal in tx = %d, %v", n, err)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		verify(tenant, 1, 1)
		if n := seal(t, db, s); n != 1 {
			t.Fatalf("sealed %d, want 1", n)
		}
		verify(tenant, 2, 0)
		if !db.IsPostgres() {
			return // SQLite writers are serialized: commit order is pos order
		}

		// Postgres: a transaction that inserted first and commits last is
		// chained by the Seal after its commit, never skipped.
		late, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer late.Rollback()
		if err := s.Record(ctx, late, ev(tenant, "late")); err != nil {
			t.Fatal(err)
		}
		if err := s.Record(ctx, db, ev(tenant, "early")); err != nil {
			t.Fatal(err)
		}
		if n := seal(t, db, s); n != 1 {
			t.Fatalf("sealed %d before the late commit, want 1", n)
		}
		if err := late.Commit(); err != nil {
			t.Fatal(err)
		}
		verify(tenant, 3, 1)
		if n := seal(t, db, s); n != 1 {
			t.Fatalf("sealed %d after the late commit, want 1", n)
		}
		verify(tenant, 4, 0)
		page, err := audit.List(ctx, db, audit.Query{TenantID: tenant, Limit: 2})
		if err != nil || len(page) != 2 || page[0].ResourceID != "late" || page[0].Seq != 4 || page[1].ResourceID != "early" {
			t.Fatalf("List = %+v, %v", page, err)
		}
		if n := count(t, db, "audit_pending"); n != 0 {
			t.Fatalf("%d events still pending", n)
		}
	})
}

func TestRecordMany(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := setup(t, db)
		tenant := uuid.Must(uuid.NewV7())
		ctx := audit.WithActor(t.Context(), audit.Actor{Type: audit.ActorIntegration, ID: "user-service"})
		// More events than one INSERT takes, so that the chunks follow
		// each other in the chain.
		evs := make([]*audit.Event, 1234)
		for i := range evs {
			evs[i] = &audit.Event{TenantID: tenant, Action: "member.created", ResourceType: "member",
				ResourceID: fmt.Sprint(i), Changes: map[string]audit.Change{"n": {After: i}}}
		}
		evs[7].Actor = audit.Actor{Type: audit.ActorSystem}
		if err := s.RecordMany(ctx, db, evs); err != nil {
			t.Fatal(err)
		}
		if n := seal(t, db, s); n != len(evs) {
			t.Fatalf("sealed %d events, want %d", n, len(evs))
		}
		res, err := audit.Verify(ctx, db, tenant)
		if err != nil || res.Events != int64(len(evs)) {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		for _, i := range []int{0, 7, 499, 500, 1233} {
			got, err := audit.Get(ctx, db, tenant, evs[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			wantActor := audit.Actor{Type: audit.ActorIntegration, ID: "user-service"}
			if i == 7 {
				wantActor = audit.Actor{Type: audit.ActorSystem}
			}
			if got.Seq != int64(i+1) || got.ResourceID != fmt.Sprint(i) || got.Actor != wantActor {
				t.Fatalf("event %d: seq %d resource %s actor %+v", i, got.Seq, got.ResourceID, got.Actor)
			}
		}

		// One invalid event: nothing of the call is written.
		bad := []*audit.Event{
			{TenantID: tenant, Action: "member.created"},
			{TenantID: tenant, Action: "member.created", ResourceID: "bad\xff"},
		}
		if err := s.RecordMany(ctx, db, bad); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Fatalf("RecordMany(invalid) = %v, want ErrInvalidEvent", err)
		}
		if n := seal(t, db, s); n != 0 {
			t.Fatalf("RecordMany(invalid) wrote %d events", n)
		}

		// RecordAll falls back to Record for a plain Recorder.
		var calls int
		plain := audit.RecorderFunc(func(ctx context.Context, db bun.IDB, ev *audit.Event) error {
			calls++
			return s.Record(ctx, db, ev)
		})
		more := []*audit.Event{{TenantID: tenant, Action: "a.b"}, {TenantID: tenant, Action: "a.b"}, {TenantID: tenant, Action: "a.b"}}
		if err := audit.RecordAll(ctx, plain, db, more); err != nil || calls != 3 || more[2].ID == uuid.Nil {
			t.Fatalf("RecordAll(plain) = %v after %d calls", err, calls)
		}
	})
}

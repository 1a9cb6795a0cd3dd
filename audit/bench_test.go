package audit_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

// benchDBs runs a benchmark on SQLite and, when configured, Postgres.
func benchDBs(b *testing.B, fn func(b *testing.B, db *dbtest.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { fn(b, dbtest.Postgres(b)) })
}

// BenchmarkVerify verifies a chain of 100,000 events per iteration and
// reports events verified per second.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		ctx := context.Background()
		setup(b, db)
		tenant := uuid.Must(uuid.NewV7())
		if err := audit.BulkAppend(ctx, db, tenant, n, 20_000); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			res, err := audit.Verify(ctx, db, tenant)
			if err != nil || res.Events != n {
				b.Fatalf("Verify = %+v, %v", res, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkRecord records one event per transaction, as a request handler
// does.
func BenchmarkRecord(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		ctx := context.Background()
		s := setup(b, db)
		tenant := uuid.Must(uuid.NewV7())
		ev := audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorUser, ID: "u-1"},
			Action: "user.updated", ResourceType: "user", ResourceID: "u-2",
			Changes:   audit.Diff(map[string]any{"role": "user"}, map[string]any{"role": "admin"}),
			RequestID: "req", IP: "192.0.2.1", UserAgent: "bench"}
		for b.Loop() {
			e := ev
			if err := s.Record(ctx, db, &e); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkCheckpoint builds and signs the tree over 100,000 new events per
// iteration.
func BenchmarkCheckpoint(b *testing.B) {
	const n = 100_000
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		ctx := context.Background()
		s := setup(b, db)
		signer := newSigner(b)
		for b.Loop() {
			b.StopTimer()
			tenant := uuid.Must(uuid.NewV7())
			if err := audit.BulkAppend(ctx, db, tenant, n, 20_000); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			cp, err := s.Checkpoint(ctx, db, signer, tenant)
			if err != nil || cp.Size != n {
				b.Fatalf("Checkpoint = %+v, %v", cp, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

func TestBulkAppendVerifies(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := setup(t, db)
		tenant := uuid.Must(uuid.NewV7())
		if err := audit.BulkAppend(t.Context(), db, tenant, 1200, 700); err != nil {
			t.Fatal(err)
		}
		record(t, db, s, tenant, 1) // Record continues a bulk chain
		if res, err := audit.Verify(t.Context(), db, tenant); err != nil || res.Events != 1201 {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
	})
}

// BenchmarkSeal chains 250 recorded events per iteration (a quarter of a
// second of a busy server's writes).
func BenchmarkSeal(b *testing.B) {
	const n = 250
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		ctx := context.Background()
		s := setup(b, db)
		tenant := uuid.Must(uuid.NewV7())
		ev := audit.Event{TenantID: tenant, Actor: audit.Actor{Type: audit.ActorUser, ID: "u-1"},
			Action: "user.created", ResourceType: "user", ResourceID: "u-2",
			Changes:   audit.Diff(nil, map[string]any{"email": "ada@example.com", "full_name": "Ada", "is_superadmin": false}),
			RequestID: "req", IP: "192.0.2.1", UserAgent: "bench"}
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				for range n {
					e := ev
					if err := s.Record(ctx, tx, &e); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if k, err := s.Seal(ctx, db); err != nil || k != n {
				b.Fatalf("Seal = %d, %v", k, err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

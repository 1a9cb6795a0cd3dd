package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/server/mockservices"
)

// TestPeriodicIntegrationJobs: the workers' leader inserts the periodic
// health check and reconciliation schedule; the schedule inserts a
// reconcile job for the connection, which repairs a dropped webhook.
func TestPeriodicIntegrationJobs(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		usersUp := newUpstream(t)
		s := newTestServerOpts(t, db, Options{}, fastWorkers, func(c *Config) {
			c.IntegrationURLs = "user-service=" + usersUp.ts.URL
			c.IntegrationCheckInterval = 20 * time.Millisecond
			c.ReconcileInterval = 30 * time.Millisecond
		})
		owner := s.register("owner@periodic.example.com", "Periodic")
		uc := s.connect(owner, ProviderUserService, "acct_1")
		users, _ := mockservices.NewUserService(mockservices.Config{Faults: mockservices.Faults{DropWebhookRate: 1},
			Webhook: mockservices.Webhook{URL: s.ts.URL + uc.WebhookURL, Secret: uc.Secret}})
		usersUp.set(users)
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "fay@periodic.example.com"}, nil)
		if m := s.members(owner); m["fay@periodic.example.com"] != "" {
			t.Fatalf("the dropped webhook arrived: %v", m)
		}

		if err := s.srv.StartWorkers(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.srv.StopWorkers(t.Context()) }) //nolint:errcheck // cleanup
		deadline := time.Now().Add(30 * time.Second)
		for {
			checks := countJobs(t, s, "integration_check", "")
			reconciled := countJobs(t, s, "integration_reconcile", uc.ID.String())
			if checks > 0 && reconciled > 0 && s.members(owner)["fay@periodic.example.com"] == "user" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no periodic check and reconcile: checks %d, reconciles %d, members %v", checks, reconciled, s.members(owner))
			}
			time.Sleep(20 * time.Millisecond) // polling interval, not a timing assertion
		}
		var n int
		if err := s.srv.db.NewSelect().Table("integration_health_history").Where("provider = ?", ProviderUserService).
			Where("to_state = ?", HealthHealthy).ColumnExpr("count(*)").Scan(t.Context(), &n); err != nil || n == 0 {
			t.Fatalf("history of the periodic checks: %d %v", n, err)
		}
	})
}

// countJobs counts the completed River jobs of kind, whose connection_id
// argument is conn when conn is not empty.
func countJobs(t *testing.T, s *testServer, kind, conn string) int {
	t.Helper()
	var rows []struct {
		Args []byte `bun:"args"`
	}
	// River keeps args as jsonb on Postgres and as binary JSONB on SQLite.
	expr := "json(args) AS args"
	if s.db.IsPostgres() {
		expr = "args::text AS args"
	}
	if err := s.srv.db.NewSelect().Table("river_job").ColumnExpr(expr).Where("kind = ?", kind).
		Where("state = ?", "completed").Scan(t.Context(), &rows); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		var a reconcileJobArgs
		if err := json.Unmarshal(r.Args, &a); err != nil {
			t.Fatalf("args %s: %v", r.Args, err)
		}
		if conn == "" || a.ConnectionID.String() == conn {
			n++
		}
	}
	return n
}

// TestReconcileJobUniquePerConnection: a second reconcile job for a
// connection is not inserted while the first waits.
func TestReconcileJobUniquePerConnection(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		a, b := uuid.New(), uuid.New()
		first, err := s.srv.integ.jobs.Insert(t.Context(), reconcileJobArgs{ConnectionID: a}, nil)
		if err != nil || first.UniqueSkippedAsDuplicate {
			t.Fatalf("first insert: %+v %v", first, err)
		}
		again, err := s.srv.integ.jobs.Insert(t.Context(), reconcileJobArgs{ConnectionID: a}, nil)
		if err != nil || !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
			t.Fatalf("second insert for the same connection: %+v %v", again, err)
		}
		other, err := s.srv.integ.jobs.Insert(t.Context(), reconcileJobArgs{ConnectionID: b}, nil)
		if err != nil || other.UniqueSkippedAsDuplicate {
			t.Fatalf("insert for another connection: %+v %v", other, err)
		}
	})
}

// TestReconcileLeaseAcrossServers: two servers on one database do not
// reconcile a connection at once. While the first server's manual
// reconciliation holds the lease (its provider call is held open), the
// second server's manual call answers 409 and its job's path is refused;
// once the first finishes, the second reconciles.
func TestReconcileLeaseAcrossServers(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		usersUp := newUpstream(t)
		urls := func(c *Config) { c.IntegrationURLs = "user-service=" + usersUp.ts.URL }
		a := newTestServerOpts(t, db, Options{}, urls)
		db2 := *db
		db2.DB = db.Open(t)
		b := newTestServerOpts(t, &db2, Options{}, urls)

		owner := a.register("owner@lease.example.com", "Lease")
		uc := a.connect(owner, ProviderUserService, "acct_1")
		users, _ := mockservices.NewUserService(mockservices.Config{})
		entered, unblock := make(chan struct{}, 1), make(chan struct{})
		var held atomic.Bool
		usersUp.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/users") && held.CompareAndSwap(false, true) {
				// Only the first list is held.
				entered <- struct{}{}
				<-unblock
			}
			users.ServeHTTP(w, r)
		}))
		path := "/api/integrations/connections/" + uc.ID.String() + "/reconcile/"
		done := make(chan *response, 1)
		go func() { done <- a.do("POST", path, owner.Access, nil) }()
		select {
		case <-entered:
		case r := <-done:
			t.Fatalf("first reconcile answered before pulling: %d %s", r.Status, r.Body)
		}
		problemOf(t, b.do("POST", path, owner.Access, nil), http.StatusConflict)
		if _, err := b.srv.Reconcile(t.Context(), uc.ID); !errors.Is(err, errReconcileRunning) {
			t.Fatalf("job path on the second server: %v", err)
		}
		problemOf(t, a.do("POST", path, owner.Access, nil), http.StatusConflict)
		close(unblock)
		if r := <-done; r.Status != http.StatusOK {
			t.Fatalf("first reconcile: %d %s", r.Status, r.Body)
		}
		// The lease is released: the second server reconciles now.
		b.must(http.StatusOK, "POST", path, owner.Access, nil)
	})
}

// TestReconcileLeaseExpires: a lease left by a process that died is taken
// over once expired, and only the holder's release deletes it.
func TestReconcileLeaseExpires(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		conn := uuid.New()
		release, err := s.srv.acquireReconcileLease(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.srv.acquireReconcileLease(t.Context(), conn); !errors.Is(err, errReconcileRunning) {
			t.Fatalf("second acquire while held: %v", err)
		}
		// The holder died: its lease expired a second ago.
		if _, err := s.srv.db.NewUpdate().Table("integration_reconcile_leases").
			Set("expires_at = ?", time.Now().Add(-time.Second).UnixNano()).Where("connection_id = ?", conn).
			Exec(t.Context()); err != nil {
			t.Fatal(err)
		}
		release2, err := s.srv.acquireReconcileLease(t.Context(), conn)
		if err != nil {
			t.Fatalf("acquire after expiry: %v", err)
		}
		release() // the old holder's release leaves the new lease alone
		if _, err := s.srv.acquireReconcileLease(t.Context(), conn); !errors.Is(err, errReconcileRunning) {
			t.Fatalf("acquire after the old holder's release: %v", err)
		}
		release2()
		release3, err := s.srv.acquireReconcileLease(t.Context(), conn)
		if err != nil {
			t.Fatalf("acquire after release: %v", err)
		}
		release3()
	})
}

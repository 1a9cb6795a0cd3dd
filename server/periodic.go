package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/tenancy"
)

// The integration schedule is River's: the elected leader inserts the
// periodic jobs (integrationCheckArgs every Config.IntegrationCheckInterval,
// reconcileScheduleArgs every Config.ReconcileInterval), any worker works
// them, and the schedule job inserts one reconcileJobArgs per connection,
// unique per connection while it waits or runs. A reconciliation itself
// holds the connection's lease (integration_reconcile_leases), so that a
// job and a manual reconciliation on another replica never run at once.

// reconcileLeaseTTL bounds how long a reconciliation holds its
// connection's lease, and how long a process that died while holding it
// keeps others out. It is also the reconcile job's timeout.
const reconcileLeaseTTL = 10 * time.Minute

// uniqueWhileActive makes a job unique by its arguments while it waits or
// runs; once completed, discarded or cancelled, it may be inserted again.
var uniqueWhileActive = river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}}

// integrationCheckArgs is the periodic job that checks every provider's
// health.
type integrationCheckArgs struct{}

// Kind implements river.JobArgs.
func (integrationCheckArgs) Kind() string { return "integration_check" }

// InsertOpts implements river.JobArgsWithInsertOpts: one check at a time,
// not retried (the next period checks again).
func (integrationCheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, UniqueOpts: uniqueWhileActive}
}

// reconcileScheduleArgs is the periodic job that inserts a reconcile job
// for every connection whose provider has a URL.
type reconcileScheduleArgs struct{}

// Kind implements river.JobArgs.
func (reconcileScheduleArgs) Kind() string { return "integration_reconcile_schedule" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (reconcileScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 3, UniqueOpts: uniqueWhileActive}
}

// reconcileJobArgs reconciles one connection.
type reconcileJobArgs struct {
	ConnectionID uuid.UUID `json:"connection_id"`
}

// Kind implements river.JobArgs.
func (reconcileJobArgs) Kind() string { return "integration_reconcile" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique per connection
// while pending or running; a failure waits for the next schedule.
func (reconcileJobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, UniqueOpts: uniqueWhileActive}
}

type integrationCheckWorker struct {
	river.WorkerDefaults[integrationCheckArgs]
	s *Server
}

func (w *integrationCheckWorker) Work(ctx context.Context, _ *river.Job[integrationCheckArgs]) error {
	if err := w.s.CheckIntegrations(ctx); err != nil && ctx.Err() == nil {
		// An unhealthy provider is what the check is for, not a job failure.
		w.s.log.WarnContext(ctx, "integrations: health check failed", slog.Any("error", err))
	}
	return nil
}

type reconcileScheduleWorker struct {
	river.WorkerDefaults[reconcileScheduleArgs]
	s *Server
}

func (w *reconcileScheduleWorker) Work(ctx context.Context, _ *river.Job[reconcileScheduleArgs]) error {
	s := w.s
	var conns []*IntegrationConnection
	if err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(&conns).OrderExpr("ic.id").Scan(ctx)
	}); err != nil {
		return err
	}
	var params []river.InsertManyParams
	for _, c := range conns {
		if _, ok := s.out.urls[c.Provider]; ok {
			params = append(params, river.InsertManyParams{Args: reconcileJobArgs{ConnectionID: c.ID}})
		}
	}
	if len(params) == 0 {
		return nil
	}
	// A connection whose job still waits or runs is skipped (unique).
	if _, err := river.ClientFromContext[*sql.Tx](ctx).InsertMany(ctx, params); err != nil {
		return fmt.Errorf("server: schedule reconciliations: %w", err)
	}
	return nil
}

type reconcileWorker struct {
	river.WorkerDefaults[reconcileJobArgs]
	s *Server
}

// Timeout implements river.Worker: a reconciliation may pull many pages.
func (w *reconcileWorker) Timeout(*river.Job[reconcileJobArgs]) time.Duration {
	return reconcileLeaseTTL
}

func (w *reconcileWorker) Work(ctx context.Context, job *river.Job[reconcileJobArgs]) error {
	s := w.s
	_, err := s.Reconcile(ctx, job.Args.ConnectionID)
	if ferr := s.flushHealthHistory(ctx); ferr != nil {
		s.log.WarnContext(ctx, "integrations: health history", slog.Any("error", ferr))
	}
	switch {
	case err == nil, errors.Is(err, errReconcileRunning), errors.Is(err, ErrNotFound):
		// Reconciled, being reconciled elsewhere, or deleted since.
		return nil
	case ctx.Err() != nil:
		return err
	}
	// Reconcile logged the failure and kept it in the report; the next
	// schedule tries again.
	return nil
}

// addIntegrationWorkers registers the integration jobs' workers.
func (s *Server) addIntegrationWorkers(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &integrationCheckWorker{s: s}); err != nil {
		return err
	}
	if err := river.AddWorkerSafely(workers, &reconcileScheduleWorker{s: s}); err != nil {
		return err
	}
	return river.AddWorkerSafely(workers, &reconcileWorker{s: s})
}

// periodicJobs returns the integration schedule: nothing when no provider
// has a URL, and only the jobs whose interval is positive.
func (s *Server) periodicJobs() []*river.PeriodicJob {
	if len(s.out.urls) == 0 {
		return nil
	}
	var jobs []*river.PeriodicJob
	if d := s.cfg.IntegrationCheckInterval; d > 0 {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(d),
			func() (river.JobArgs, *river.InsertOpts) { return integrationCheckArgs{}, nil },
			&river.PeriodicJobOpts{ID: "integration_check"}))
	}
	if d := s.cfg.ReconcileInterval; d > 0 {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(d),
			func() (river.JobArgs, *river.InsertOpts) { return reconcileScheduleArgs{}, nil },
			&river.PeriodicJobOpts{ID: "integration_reconcile_schedule"}))
	}
	return jobs
}

// reconcileLease is a row that a reconciliation holds on its connection.
// Platform-wide, like the health history: not tenant-owned.
type reconcileLease struct {
	bun.BaseModel `bun:"table:integration_reconcile_leases"`

	ConnectionID uuid.UUID `bun:"connection_id,pk,type:uuid"`
	Holder       uuid.UUID `bun:"holder,type:uuid"`
	// ExpiresAt is in Unix nanoseconds, compared as a number on both
	// databases.
	ExpiresAt int64 `bun:"expires_at"`
}

// acquireReconcileLease takes the lease of a connection for
// reconcileLeaseTTL, unless another holder has it and it has not expired.
// It returns the release function, or errReconcileRunning. The insert or
// takeover is one statement, atomic on both databases.
func (s *Server) acquireReconcileLease(ctx context.Context, connID uuid.UUID) (release func(), err error) {
	holder := uuid.Must(uuid.NewV7())
	now := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO integration_reconcile_leases (connection_id, holder, expires_at)
		VALUES (?, ?, ?) ON CONFLICT (connection_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE integration_reconcile_leases.expires_at < ?`, connID, holder, now.Add(reconcileLeaseTTL).UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("server: reconcile lease: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("server: reconcile lease: %w", err)
	} else if n == 0 {
		return nil, errReconcileRunning
	}
	return func() {
		// Released even when ctx is done; an error leaves it to expire.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := s.db.NewDelete().Model((*reconcileLease)(nil)).Where("connection_id = ?", connID).
			Where("holder = ?", holder).Exec(rctx); err != nil {
			s.log.Warn("integrations: releasing a reconcile lease", slog.String("connection", connID.String()),
				slog.Any("error", err))
		}
	}, nil
}

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261225000002",
		Comment: "integration reconcile leases",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			idType := "TEXT"
			if m.DB().Dialect().Name() == dialect.PG {
				idType = "UUID"
			}
			_, err := m.DB().ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS integration_reconcile_leases (
				connection_id %[1]s PRIMARY KEY,
				holder %[1]s NOT NULL,
				expires_at BIGINT NOT NULL)`, idType))
			if err != nil {
				return fmt.Errorf("server: migrate reconcile leases: %w", err)
			}
			return nil
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS integration_reconcile_leases")
			return err
		},
	})
}

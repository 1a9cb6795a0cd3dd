package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/tenancy"
)

// riverDriver returns the River driver over the *sql.DB that Bun uses.
func riverDriver(db *bun.DB) riverdriver.Driver[*sql.Tx] {
	if db.Dialect().Name() == dialect.PG {
		return riverdatabasesql.New(db.DB)
	}
	return riversqlite.New(db.DB)
}

// jobDriver returns the driver of the server's job clients. On Postgres,
// when the database URL is known, it adds a pgx listener (LISTEN/NOTIFY on
// a connection of its own, in the same search path as Bun's pool), so that
// an inserted job wakes idle workers at once instead of at the next poll;
// close is then the listener pool's Close. Otherwise River polls.
func (s *Server) jobDriver(ctx context.Context) (drv riverdriver.Driver[*sql.Tx], close func(), err error) {
	if s.db.Dialect().Name() != dialect.PG || !sqldb.IsPostgres(s.cfg.DatabaseURL) {
		return riverDriver(s.db), func() {}, nil
	}
	pc, err := pgxpool.ParseConfig(s.cfg.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("server: job listener: %w", err)
	}
	var path string
	if err := s.db.QueryRowContext(ctx, "SHOW search_path").Scan(&path); err != nil {
		return nil, nil, fmt.Errorf("server: job listener: %w", err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = path
	pc.MinConns, pc.MaxConns = 0, 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("server: job listener: %w", err)
	}
	return riverdatabasesql.NewWithPgxListener(s.db.DB, pool), pool.Close, nil
}

// migrateRiver runs River's own migrations (its job, leader and queue
// tables) in the database's current schema.
func migrateRiver(ctx context.Context, db *bun.DB) error {
	m, err := rivermigrate.New(riverDriver(db), &rivermigrate.Config{Logger: quietLogger(slog.Default())})
	if err != nil {
		return fmt.Errorf("server: migrate river: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("server: migrate river: %w", err)
	}
	return nil
}

// riverVersions returns the versions of River's migrations applied to db
// and all those this build knows. Before River's first migration there are
// none applied.
func riverVersions(ctx context.Context, db *bun.DB) (applied, all []int, err error) {
	m, err := rivermigrate.New(riverDriver(db), &rivermigrate.Config{Logger: quietLogger(slog.Default())})
	if err != nil {
		return nil, nil, fmt.Errorf("server: river migrations: %w", err)
	}
	for _, v := range m.AllVersions() {
		all = append(all, v.Version)
	}
	existing, err := m.ExistingVersions(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("server: river migrations: %w", err)
	}
	for _, v := range existing {
		applied = append(applied, v.Version)
	}
	return applied, all, nil
}

// webhookJobArgs is the River job that processes one stored webhook event.
type webhookJobArgs struct {
	EventID  uuid.UUID `json:"event_id"`
	TenantID uuid.UUID `json:"tenant_id"`
	// AttemptOffset counts the event's attempts made before this job (by
	// the batch job that first processed it): the job's attempt n is the
	// event's attempt AttemptOffset+n.
	AttemptOffset int `json:"attempt_offset,omitempty"`
}

// Kind implements river.JobArgs.
func (webhookJobArgs) Kind() string { return "webhook_event" }

// retryPolicy is River's retry policy: exponential backoff with jitter
// (cenkalti/backoff), from base up to max between attempts.
type retryPolicy struct {
	base, max time.Duration
}

// NextRetry implements river.ClientRetryPolicy.
func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(p.delay(job.Attempt))
}

// delay is the wait after the attempt-th failed attempt (from 1).
func (p retryPolicy) delay(attempt int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = p.base, p.max, 0
	b.Multiplier, b.RandomizationFactor = 2, 0.5
	b.Reset()
	d := b.InitialInterval
	for range max(attempt, 1) {
		d = b.NextBackOff()
	}
	return d
}

// retryPolicy is the configured retry policy of jobs.
func (s *Server) retryPolicy() retryPolicy {
	return retryPolicy{base: s.cfg.WebhookRetryBase, max: s.cfg.WebhookRetryMax}
}

// quietLogger passes on only warnings and errors: River logs every fetch
// and election at info.
func quietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// newJobClient builds the River client: with workers when work is true,
// insert-only otherwise.
func (s *Server) newJobClient(work bool) (*river.Client[*sql.Tx], error) {
	cfg := s.cfg
	rc := &river.Config{
		Logger:      quietLogger(s.log),
		MaxAttempts: cfg.WebhookMaxAttempts,
		RetryPolicy: s.retryPolicy(),
		// A job left running by a process that died is worked again after
		// twice the timeout (River's rescuer).
		JobTimeout:           cfg.WebhookJobTimeout,
		RescueStuckJobsAfter: 2 * cfg.WebhookJobTimeout,
		// Spans and metrics of every job; trace context from insert to work.
		Middleware: s.jobMiddleware(),
		// Completed jobs are kept one day: the events table is the record.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		// A short cooldown lets a notified or busy worker fetch again soon;
		// on the inserting client it is also the shortest time between two
		// insert notifications of a queue (River's default, 100ms, would
		// leave jobs inserted in between waiting for the next one).
		FetchCooldown: min(max(cfg.WorkerPollInterval/2, time.Millisecond), 5*time.Millisecond),
	}
	if work {
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely(workers, &webhookWorker{s: s}); err != nil {
			return nil, err
		}
		if err := river.AddWorkerSafely(workers, &webhookBatchWorker{s: s}); err != nil {
			return nil, err
		}
		if err := s.addIntegrationWorkers(workers); err != nil {
			return nil, err
		}
		// Only the elected leader among the clients that work jobs inserts
		// these; any worker works them.
		rc.PeriodicJobs = s.periodicJobs()
		rc.Workers = workers
		rc.FetchPollInterval = max(cfg.WorkerPollInterval, rc.FetchCooldown)
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.WorkerConcurrency}}
	}
	c, err := river.NewClient(s.integ.driver, rc)
	if err != nil {
		return nil, fmt.Errorf("server: job client: %w", err)
	}
	return c, nil
}

// StartWorkers starts working webhook and integration jobs in the
// background until [Server.StopWorkers] or [Server.Close] (ctx gives its
// values, not its cancellation: stopping is graceful). The integration
// schedule (health checks and reconciliations) runs only where workers do. It is called by [Server.Serve]
// unless workers are off, and by [Server.RunWorkers].
func (s *Server) StartWorkers(ctx context.Context) error {
	s.integ.mu.Lock()
	defer s.integ.mu.Unlock()
	if s.integ.worker != nil {
		return nil
	}
	c, err := s.newJobClient(true)
	if err != nil {
		return err
	}
	if err := c.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("server: start workers: %w", err)
	}
	s.integ.worker = c
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.integ.stopPrune = cancel
	go s.pruneLoop(pctx)
	s.log.Info("workers started", slog.Int("concurrency", s.cfg.WorkerConcurrency),
		slog.Int("max_attempts", s.cfg.WebhookMaxAttempts))
	return nil
}

// StopWorkers stops the workers gracefully: jobs in progress finish, or are
// cancelled when ctx is done first (River then works them again later).
func (s *Server) StopWorkers(ctx context.Context) error {
	s.integ.mu.Lock()
	c := s.integ.worker
	s.integ.worker = nil
	if s.integ.stopPrune != nil {
		s.integ.stopPrune()
		s.integ.stopPrune = nil
	}
	s.integ.mu.Unlock()
	if c == nil {
		return nil
	}
	err := c.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return c.StopAndCancel(context.Background())
	}
	return err
}

// RunWorkers works jobs until ctx is done, then stops within the shutdown
// grace. It is the worker command's loop: no HTTP API is served.
func (s *Server) RunWorkers(ctx context.Context) error {
	if err := s.StartWorkers(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	return s.StopWorkers(sctx)
}

// enqueue inserts the job of a stored event in tx, so that the event and its
// job commit together.
func (s *Server) enqueue(ctx context.Context, tx bun.Tx, ev *WebhookEvent) error {
	_, err := s.integ.jobs.InsertTx(ctx, tx.Tx, webhookJobArgs{EventID: ev.ID, TenantID: ev.TenantID}, nil)
	if err != nil {
		return fmt.Errorf("server: enqueue event: %w", err)
	}
	return nil
}

// workersOn reports whether serve also works jobs.
func (c *Config) workersOn() bool {
	switch c.Workers {
	case "off", "false", "0":
		return false
	}
	return true
}

func (c *Config) validateWorkers() error {
	switch c.Workers {
	case "", "on", "off", "true", "false", "1", "0":
	default:
		return fmt.Errorf("%w: SAASKIT_WORKERS must be on or off, not %q", ErrConfig, c.Workers)
	}
	if c.WorkerConcurrency < 0 || c.WebhookMaxAttempts < 0 || c.WorkerPollInterval < 0 ||
		c.WebhookRetryBase < 0 || c.WebhookRetryMax < 0 || c.WebhookJobTimeout < 0 || c.PaymentGrace < 0 {
		return fmt.Errorf("%w: worker and webhook settings must not be negative", ErrConfig)
	}
	return nil
}

// pruneInterval is how often workers delete old processed events.
const pruneInterval = time.Hour

// pruneLoop deletes processed and skipped events older than
// Config.WebhookRetention, at start and then every pruneInterval, until ctx
// is done. Several processes may run it; the deletes are idempotent.
func (s *Server) pruneLoop(ctx context.Context) {
	if s.cfg.WebhookRetention < 0 {
		return
	}
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		if n, err := s.pruneEvents(ctx, s.now().Add(-s.cfg.WebhookRetention)); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "webhooks: pruning old events", slog.Any("error", err))
		} else if n > 0 {
			s.log.InfoContext(ctx, "webhooks: pruned old events", slog.Int64("deleted", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneEvents deletes every tenant's processed and skipped events received
// before before, and returns how many. Failed events stay (the dead letter)
// until replayed or deleted with their connection.
func (s *Server) pruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx.RunInTx(tenancy.System(ctx), nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*WebhookEvent)(nil)).
			Where("status IN (?)", bun.In([]string{EventProcessed, EventSkipped})).
			Where("received_at < ?", before).Exec(ctx)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/tenancy"
)

// maxBatchJob bounds the events of one batch job, and so the size of its
// transaction.
const maxBatchJob = 100

// batchSplitAttempt is the attempt of a batch job from which, when its
// transaction keeps failing as a whole, it hands each unprocessed event to
// a job of its own instead of retrying.
const batchSplitAttempt = 3

// webhookBatchArgs is the River job that processes events received
// together (one group commit or one batch request), all of one tenant.
//
// River's cost is per job: inserting, fetching and completing one job
// costs more than storing one event. A job for each group of events keeps
// that cost per group, and its worker applies the group in one transaction
// with a savepoint for each event, so that one event's failure undoes only
// its own work. A failed event gets a job of its own ([webhookJobArgs]),
// which retries it with backoff up to the configured attempts.
type webhookBatchArgs struct {
	TenantID uuid.UUID   `json:"tenant_id"`
	EventIDs []uuid.UUID `json:"event_ids"`
}

// Kind implements river.JobArgs.
func (webhookBatchArgs) Kind() string { return "webhook_batch" }

// batchJobs returns the jobs of the stored events ids of tenant.
func batchJobs(tenant uuid.UUID, ids []uuid.UUID) []river.InsertManyParams {
	params := make([]river.InsertManyParams, 0, (len(ids)+maxBatchJob-1)/maxBatchJob)
	for len(ids) > 0 {
		n := min(len(ids), maxBatchJob)
		params = append(params, river.InsertManyParams{Args: webhookBatchArgs{TenantID: tenant, EventIDs: ids[:n]}})
		ids = ids[n:]
	}
	return params
}

// applyBatch applies evs in tx through one batchStore and marks them
// done. Any failure but a cancelled ctx returns errRedo.
func (s *Server) applyBatch(ctx context.Context, tx bun.Tx, evs []*WebhookEvent, changed *[]*tenancy.Tenant, errRedo error) error {
	st := newBatchStore(s, tx)
	f := new(prefetch)
	for _, ev := range evs {
		if p, ok := providers[ev.Provider]; ok && p.prefetch != nil {
			p.prefetch(ev, f)
		}
	}
	redo := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err() // stopping: the whole job runs again
		}
		return fmt.Errorf("%w: %v", errRedo, err)
	}
	if err := st.load(ctx, f); err != nil {
		return redo(err)
	}
	for _, ev := range evs {
		t, err := s.applyEvent(ctx, tx, st, ev, 1)
		if err != nil {
			return redo(err)
		}
		if t != nil {
			*changed = append(*changed, t)
		}
	}
	if err := st.flush(ctx); err != nil {
		return redo(err)
	}
	if err := s.markDone(ctx, tx, evs); err != nil {
		return redo(err)
	}
	return nil
}

// webhookBatchWorker processes a batch job.
type webhookBatchWorker struct {
	river.WorkerDefaults[webhookBatchArgs]
	s *Server
}

// Work applies the job's events in one transaction. Events already
// processed or skipped are left alone, so a job worked twice (after a crash
// before River recorded its completion) applies each effect once.
func (w *webhookBatchWorker) Work(ctx context.Context, job *river.Job[webhookBatchArgs]) error {
	s := w.s
	ctx, err := s.jobTenant(ctx, job.Args.TenantID)
	if err != nil {
		return err
	}
	type failure struct {
		ev     *WebhookEvent
		status string
		err    error
	}
	var failed []failure
	var changed []*tenancy.Tenant
	// Events are first applied together: what they read is loaded at once
	// and what they write is written a table at a time (batchStore). If one
	// fails, or a write does, the transaction is undone and the job's events
	// applied again one by one, each under a savepoint.
	errRedo := errors.New("redo with savepoints")
	run := func(safe bool) error {
		return s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			failed, changed = failed[:0], changed[:0]
			evs, err := s.lockEvents(ctx, tx, job.Args.EventIDs)
			if err != nil {
				return err
			}
			todo := evs[:0]
			for _, ev := range evs {
				if ev.Status != EventReceived && ev.Status != EventProcessing {
					continue // done, or failed and left for replay
				}
				if ev.Attempts > 0 {
					continue // its own job has it (after an earlier run of this one)
				}
				todo = append(todo, ev)
			}
			if !safe {
				return s.applyBatch(ctx, tx, todo, &changed, errRedo)
			}
			var retries []river.InsertManyParams
			for _, ev := range todo {
				sp, err := tx.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				t, perr := s.applyEvent(ctx, sp, txStore{s, sp}, ev, 1)
				if perr == nil {
					perr = s.markDone(ctx, sp, []*WebhookEvent{ev})
				}
				if perr == nil {
					if err := sp.Commit(); err != nil {
						return err
					}
					if t != nil {
						changed = append(changed, t)
					}
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err() // stopping: the whole job runs again
				}
				if err := sp.Rollback(); err != nil {
					return err
				}
				status := EventProcessing
				if errors.Is(perr, ErrPermanent) || s.cfg.WebhookMaxAttempts <= 1 {
					status = EventFailed
				} else {
					retries = append(retries, river.InsertManyParams{
						Args: webhookJobArgs{EventID: ev.ID, TenantID: ev.TenantID, AttemptOffset: 1},
						InsertOpts: &river.InsertOpts{
							MaxAttempts: s.cfg.WebhookMaxAttempts - 1,
							ScheduledAt: time.Now().Add(s.retryPolicy().delay(1)),
						},
					})
				}
				if err := s.markFailure(ctx, tx, ev.ID, 1, status, perr); err != nil {
					return err
				}
				failed = append(failed, failure{ev, status, perr})
			}
			if len(retries) > 0 {
				if _, err := s.integ.jobs.InsertManyFastTx(ctx, tx.Tx, retries); err != nil {
					return fmt.Errorf("server: enqueue retries: %w", err)
				}
			}
			return nil
		})
	}
	err = run(false)
	if errors.Is(err, errRedo) {
		err = run(true)
	}
	if err == nil {
		for _, t := range changed {
			s.forgetTenant(t)
		}
		for _, f := range failed {
			s.logFailure(ctx, f.ev.Provider, f.ev.ID, 1, f.status, f.err)
		}
		return nil
	}
	if job.Attempt < batchSplitAttempt || ctx.Err() != nil {
		return err
	}
	// The transaction as a whole keeps failing: give every event still
	// waiting a job of its own, so that one cannot hold back the others.
	s.log.WarnContext(ctx, "webhooks: batch job failed; splitting it", slog.Int("events", len(job.Args.EventIDs)),
		slog.Int("attempt", job.Attempt), slog.Any("error", err))
	return s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var ids []uuid.UUID
		err := tx.NewSelect().Model((*WebhookEvent)(nil)).Column("id").
			Where("id IN (?)", bun.In(job.Args.EventIDs)).Where("status IN (?)", bun.In([]string{EventReceived, EventProcessing})).
			Where("attempts = 0").Scan(ctx, &ids)
		if err != nil || len(ids) == 0 {
			return err
		}
		params := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			params[i] = river.InsertManyParams{Args: webhookJobArgs{EventID: id, TenantID: job.Args.TenantID}}
		}
		_, err = s.integ.jobs.InsertManyFastTx(ctx, tx.Tx, params)
		return err
	})
}

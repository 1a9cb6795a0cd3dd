package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/tenancy"
)

// ErrPermanent marks a processing error that no retry can fix (a payload
// the provider's handler cannot use): the event fails at once.
var ErrPermanent = errors.New("server: permanent processing error")

// maxLastError bounds the stored last error.
const maxLastError = 2000

// webhookWorker is the River worker that processes stored webhook events.
type webhookWorker struct {
	river.WorkerDefaults[webhookJobArgs]
	s *Server
}

// Work processes one event in one transaction with its effect and audit
// event. An event already processed or skipped is left alone, so that a job
// run twice (after a crash between the commit and River's completion)
// applies its effect once.
func (w *webhookWorker) Work(ctx context.Context, job *river.Job[webhookJobArgs]) error {
	s := w.s
	ctx, err := s.jobTenant(ctx, job.Args.TenantID)
	if err != nil {
		return err
	}
	attempt := job.Args.AttemptOffset + job.Attempt
	var provider string
	var tenantChanged *tenancy.Tenant
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		evs, err := s.lockEvents(ctx, tx, []uuid.UUID{job.Args.EventID})
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return fmt.Errorf("%w: event %s not found", ErrPermanent, job.Args.EventID)
		}
		ev := evs[0]
		provider = ev.Provider
		if ev.Status == EventProcessed || ev.Status == EventSkipped {
			return nil
		}
		if tenantChanged, err = s.applyEvent(ctx, tx, txStore{s, tx}, ev, attempt); err != nil {
			return err
		}
		return s.markDone(ctx, tx, evs)
	})
	if tenantChanged != nil {
		s.forgetTenant(tenantChanged)
	}
	if err == nil {
		return nil
	}
	permanent := errors.Is(err, ErrPermanent)
	last := permanent || job.Attempt >= job.MaxAttempts
	status := EventProcessing
	if last {
		status = EventFailed
	}
	ferr := s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return s.markFailure(ctx, tx, job.Args.EventID, attempt, status, err)
	})
	if ferr != nil {
		s.log.ErrorContext(ctx, "webhooks: recording a failed attempt", slog.Any("error", ferr))
	}
	s.logFailure(ctx, provider, job.Args.EventID, attempt, status, err)
	if permanent {
		return river.JobCancel(err)
	}
	return err
}

// jobTenant returns ctx with the tenant of a job; a job whose tenant is
// gone is cancelled.
func (s *Server) jobTenant(ctx context.Context, id uuid.UUID) (context.Context, error) {
	t, err := s.lookup.LookupTenant(ctx, id.String())
	if errors.Is(err, tenancy.ErrTenantNotFound) {
		return ctx, river.JobCancel(err)
	}
	if err != nil {
		return ctx, err
	}
	return tenancy.WithTenant(ctx, t), nil
}

// lockEvents reads the events ids of ctx's tenant in tx, locked for update
// on Postgres (SQLite's write transaction holds the database).
func (s *Server) lockEvents(ctx context.Context, tx bun.Tx, ids []uuid.UUID) ([]*WebhookEvent, error) {
	var evs []*WebhookEvent
	q := tx.NewSelect().Model(&evs).Where("we.id IN (?)", bun.In(ids)).Order("we.id")
	if tx.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	return evs, q.Scan(ctx)
}

// applyEvent processes ev in tx: the provider's handler applies its effect
// with its audit events through st, and ev's outcome is set (processed, or
// skipped for a type the provider does not handle) for markDone to write.
// It returns the tenant a handler changed, for the cached lookup to forget
// after the commit.
func (s *Server) applyEvent(ctx context.Context, tx bun.Tx, st syncStore, ev *WebhookEvent, attempt int) (*tenancy.Tenant, error) {
	p, ok := providers[ev.Provider]
	if !ok {
		return nil, fmt.Errorf("%w: unknown provider %q", ErrPermanent, ev.Provider)
	}
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorIntegration, ID: ev.Provider})
	pc := &processing{s: s, tx: tx, st: st, ev: ev}
	handled, err := p.handle(ctx, pc)
	if err != nil {
		return nil, err
	}
	if hook := s.integ.hook; hook != nil {
		if err := hook(ctx, ev, attempt); err != nil {
			return nil, err
		}
	}
	ev.Status, ev.Attempts = EventProcessed, attempt
	if !handled {
		ev.Status = EventSkipped
	}
	return pc.tenant, nil
}

// markDone writes the outcomes applyEvent set on evs, with one UPDATE for
// each outcome and attempt.
func (s *Server) markDone(ctx context.Context, tx bun.IDB, evs []*WebhookEvent) error {
	type outcome struct {
		status   string
		attempts int
	}
	groups := map[outcome][]uuid.UUID{}
	var order []outcome
	now := s.now()
	for _, ev := range evs {
		if ev.Status != EventProcessed && ev.Status != EventSkipped {
			continue
		}
		ev.LastError, ev.ProcessedAt, ev.UpdatedAt = "", &now, now
		o := outcome{ev.Status, ev.Attempts}
		if _, ok := groups[o]; !ok {
			order = append(order, o)
		}
		groups[o] = append(groups[o], ev.ID)
	}
	for _, o := range order {
		_, err := tx.NewUpdate().Model((*WebhookEvent)(nil)).
			Set("status = ?", o.status).Set("attempts = ?", o.attempts).Set("last_error = ''").
			Set("processed_at = ?", now).Set("updated_at = ?", now).
			Where("id IN (?)", bun.In(groups[o])).Exec(ctx)
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) logFailure(ctx context.Context, provider string, id uuid.UUID, attempt int, status string, err error) {
	level := slog.LevelInfo
	if status == EventFailed {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "webhooks: processing failed", slog.String("provider", provider),
		slog.String("event", id.String()), slog.Int("attempt", attempt),
		slog.String("status", status), slog.Any("error", err))
}

// markFailure records a failed attempt on event id in tx (the attempt's
// own work rolled back).
func (s *Server) markFailure(ctx context.Context, tx bun.Tx, id uuid.UUID, attempt int, status string, cause error) error {
	msg := cause.Error()
	if len(msg) > maxLastError {
		msg = msg[:maxLastError]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	_, err := tx.NewUpdate().Model((*WebhookEvent)(nil)).
		Set("status = ?", status).Set("attempts = ?", attempt).Set("last_error = ?", msg).Set("updated_at = ?", s.now()).
		Where("id = ?", id).Where("status NOT IN (?)", bun.In([]string{EventProcessed, EventSkipped})).
		Exec(ctx)
	return err
}

// processing is what a provider's handler works with: the transaction and
// the event, in a context that carries the tenant and the integration
// actor.
type processing struct {
	s  *Server
	tx bun.Tx
	st syncStore
	ev *WebhookEvent
	// tenant is set by a handler that changed the tenant row, so that the
	// cached lookup forgets it after the commit.
	tenant *tenancy.Tenant
}

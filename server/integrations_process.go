package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

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
	t, err := s.lookup.LookupTenant(ctx, job.Args.TenantID.String())
	if errors.Is(err, tenancy.ErrTenantNotFound) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	ctx = tenancy.WithTenant(ctx, t)
	var provider string
	var tenantChanged *tenancy.Tenant
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ev := new(WebhookEvent)
		q := tx.NewSelect().Model(ev).Where("we.id = ?", job.Args.EventID)
		if tx.Dialect().Name() == dialect.PG {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: event %s not found", ErrPermanent, job.Args.EventID)
			}
			return err
		}
		provider = ev.Provider
		if ev.Status == EventProcessed || ev.Status == EventSkipped {
			return nil
		}
		if hook := s.integ.hook; hook != nil {
			if err := hook(ctx, ev, job.Attempt); err != nil {
				return err
			}
		}
		p, ok := providers[ev.Provider]
		if !ok {
			return fmt.Errorf("%w: unknown provider %q", ErrPermanent, ev.Provider)
		}
		ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorIntegration, ID: ev.Provider})
		pc := &processing{s: s, tx: tx, ev: ev}
		handled, err := p.handle(ctx, pc)
		if err != nil {
			return err
		}
		tenantChanged = pc.tenant
		now := s.now()
		ev.Status, ev.Attempts, ev.LastError, ev.ProcessedAt, ev.UpdatedAt = EventProcessed, job.Attempt, "", &now, now
		if !handled {
			ev.Status = EventSkipped
		}
		_, err = tx.NewUpdate().Model(ev).Column("status", "attempts", "last_error", "processed_at", "updated_at").WherePK().Exec(ctx)
		return err
	})
	if tenantChanged != nil {
		s.lookup.Forget(tenantChanged.ID.String())
		s.lookup.Forget(tenantChanged.Slug)
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
	if ferr := s.markFailure(ctx, job, status, err); ferr != nil {
		s.log.ErrorContext(ctx, "webhooks: recording a failed attempt", slog.Any("error", ferr))
	}
	level := slog.LevelInfo
	if last {
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "webhooks: processing failed", slog.String("provider", provider),
		slog.String("event", job.Args.EventID.String()), slog.Int("attempt", job.Attempt),
		slog.String("status", status), slog.Any("error", err))
	if permanent {
		return river.JobCancel(err)
	}
	return err
}

// markFailure records a failed attempt on the event in its own transaction
// (the attempt's own rolled back).
func (s *Server) markFailure(ctx context.Context, job *river.Job[webhookJobArgs], status string, cause error) error {
	msg := cause.Error()
	if len(msg) > maxLastError {
		msg = msg[:maxLastError]
		for !utf8.ValidString(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	return s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewUpdate().Model((*WebhookEvent)(nil)).
			Set("status = ?", status).Set("attempts = ?", job.Attempt).Set("last_error = ?", msg).Set("updated_at = ?", s.now()).
			Where("id = ?", job.Args.EventID).Where("status NOT IN (?)", bun.In([]string{EventProcessed, EventSkipped})).
			Exec(ctx)
		return err
	})
}

// processing is what a provider's handler works with: the transaction and
// the event, in a context that carries the tenant and the integration
// actor.
type processing struct {
	s  *Server
	tx bun.Tx
	ev *WebhookEvent
	// tenant is set by a handler that changed the tenant row, so that the
	// cached lookup forgets it after the commit.
	tenant *tenancy.Tenant
}

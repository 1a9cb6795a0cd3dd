package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// DefaultStatusRecent is how many failed events and job errors a status
// report lists when StatusOptions.Recent is zero.
const DefaultStatusRecent = 10

// StatusOptions tune [ReadStatus].
type StatusOptions struct {
	// Recent bounds the failed events and the job errors listed. Zero
	// means DefaultStatusRecent.
	Recent int
	// Now is the report's time; zero means time.Now.
	Now time.Time
}

// StatusReport is an operator's summary of a deployment, read from the
// shared database (so every replica, and the saaskit status command,
// answer the same): the job queue, the providers' health, the webhook
// events by status and the recent failures.
type StatusReport struct {
	GeneratedAt time.Time `json:"generated_at"`
	Database    string    `json:"database" doc:"sqlite or pg."`
	// Jobs counts the jobs that are not completed or cancelled.
	Jobs []JobCount `json:"jobs" doc:"Jobs by kind, queue and state (available, scheduled, running, retryable, discarded), completed and cancelled ones left out."`
	// Providers is the stored health of every provider observed so far.
	Providers []ProviderHealth `json:"providers" doc:"The last stored health snapshot of each provider."`
	// FailingProviders names the providers whose state is degraded or
	// down, or whose breaker is not closed.
	FailingProviders []string       `json:"failing_providers"`
	WebhookEvents    []WebhookCount `json:"webhook_events" doc:"Stored webhook events by provider and status."`
	// FailedEvents are the newest dead-lettered events.
	FailedEvents []FailedEvent `json:"failed_events" doc:"The newest failed (dead-lettered) webhook events with their last error."`
	// JobErrors are the newest jobs whose last attempt failed and that are
	// not completed (retryable or discarded ones, mostly).
	JobErrors []JobError `json:"job_errors" doc:"The newest jobs, not completed, whose last attempt failed, with its error."`
}

// JobCount is a number of jobs of one kind, queue and state.
type JobCount struct {
	Kind  string `json:"kind"`
	Queue string `json:"queue"`
	State string `json:"state"`
	Count int64  `json:"count"`
}

// WebhookCount is a number of webhook events of one provider and status.
type WebhookCount struct {
	Provider string `json:"provider"`
	Status   string `json:"status"`
	Count    int64  `json:"count"`
}

// FailedEvent is a dead-lettered webhook event.
type FailedEvent struct {
	ID         uuid.UUID `json:"id"`
	TenantID   uuid.UUID `json:"tenant_id"`
	Provider   string    `json:"provider"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error"`
	ReceivedAt time.Time `json:"received_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// JobError is a job whose last attempt failed.
type JobError struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Queue       string     `json:"queue"`
	State       string     `json:"state"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	Error       string     `json:"error"`
	At          *time.Time `json:"at,omitempty" doc:"When the attempt failed."`
}

// ReadStatus reads a [StatusReport] through tx with system access (every
// tenant's events; on Postgres the row-level security policy lets such a
// transaction read them).
func ReadStatus(ctx context.Context, tx *tenancy.TxRunner, opts StatusOptions) (*StatusReport, error) {
	if opts.Recent <= 0 {
		opts.Recent = DefaultStatusRecent
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	rep := &StatusReport{GeneratedAt: opts.Now.UTC(), Database: tx.DB.Dialect().Name().String(),
		Jobs: []JobCount{}, Providers: []ProviderHealth{}, FailingProviders: []string{},
		WebhookEvents: []WebhookCount{}, FailedEvents: []FailedEvent{}, JobErrors: []JobError{}}
	err := tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		jobs, err := queueCounts(ctx, db)
		if err != nil {
			return fmt.Errorf("jobs: %w", err)
		}
		rep.Jobs = append(rep.Jobs, jobs...)
		var snaps []healthSnapshot
		if err := db.NewSelect().Model(&snaps).Order("provider").Scan(ctx); err != nil {
			return fmt.Errorf("provider health: %w", err)
		}
		for _, sn := range snaps {
			h := sn.view()
			rep.Providers = append(rep.Providers, h)
			if h.State == HealthDegraded || h.State == HealthDown || (h.Breaker != "" && h.Breaker != "closed") {
				rep.FailingProviders = append(rep.FailingProviders, h.Provider)
			}
		}
		if err := db.NewSelect().Model((*WebhookEvent)(nil)).Column("provider", "status").ColumnExpr("count(*) AS count").
			Group("provider", "status").Order("provider", "status").Scan(ctx, &rep.WebhookEvents); err != nil {
			return fmt.Errorf("webhook events: %w", err)
		}
		var failed []WebhookEvent
		if err := db.NewSelect().Model(&failed).ExcludeColumn("payload").Where("we.status = ?", EventFailed).
			Order("we.updated_at DESC", "we.id DESC").Limit(int64(opts.Recent)).Scan(ctx); err != nil {
			return fmt.Errorf("failed events: %w", err)
		}
		for _, e := range failed {
			rep.FailedEvents = append(rep.FailedEvents, FailedEvent{ID: e.ID, TenantID: e.TenantID, Provider: e.Provider,
				EventID: e.EventID, Type: e.Type, Attempts: e.Attempts, LastError: e.LastError,
				ReceivedAt: e.ReceivedAt, UpdatedAt: e.UpdatedAt})
		}
		if rep.JobErrors, err = recentJobErrors(ctx, db, opts.Recent); err != nil {
			return fmt.Errorf("job errors: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("server: status: %w (is the database migrated? saaskit migrate up)", err)
	}
	return rep, nil
}

// recentJobErrors lists the newest jobs, not completed, whose last attempt
// failed, with that attempt's error.
func recentJobErrors(ctx context.Context, db bun.IDB, limit int) ([]JobError, error) {
	// River keeps each attempt's error in a JSON array: jsonb[] on
	// Postgres, a JSON text on SQLite.
	last := `errors[array_upper(errors, 1)]->>'error', errors[array_upper(errors, 1)]->>'at'`
	has := `errors IS NOT NULL AND array_length(errors, 1) > 0`
	if db.Dialect().Name() != dialect.PG {
		last = `json_extract(errors, '$[#-1].error'), json_extract(errors, '$[#-1].at')`
		has = `errors IS NOT NULL AND json_array_length(errors) > 0`
	}
	rows, err := db.QueryContext(ctx, `SELECT id, kind, queue, state, attempt, max_attempts, `+last+` FROM river_job
		WHERE state NOT IN ('completed', 'cancelled') AND `+has+` ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []JobError{}
	for rows.Next() {
		var je JobError
		var msg, at *string
		if err := rows.Scan(&je.ID, &je.Kind, &je.Queue, &je.State, &je.Attempt, &je.MaxAttempts, &msg, &at); err != nil {
			return nil, err
		}
		if msg != nil {
			je.Error = *msg
		}
		if at != nil {
			if t, err := time.Parse(time.RFC3339Nano, *at); err == nil {
				t = t.UTC()
				je.At = &t
			}
		}
		out = append(out, je)
	}
	return out, rows.Err()
}

// WriteText writes the report as a readable summary.
func (r *StatusReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	p("saaskit status at %s (%s)\n", r.GeneratedAt.Format(time.RFC3339), r.Database)

	p("\nJob queue (completed and cancelled jobs not counted)\n")
	if len(r.Jobs) == 0 {
		p("  no jobs waiting, running or failed\n")
	} else {
		p("  KIND\tQUEUE\tAVAILABLE\tSCHEDULED\tRUNNING\tRETRYABLE\tDISCARDED\n")
		type key struct{ kind, queue string }
		by := map[key]map[string]int64{}
		var keys []key
		for _, j := range r.Jobs {
			k := key{j.Kind, j.Queue}
			if by[k] == nil {
				by[k] = map[string]int64{}
				keys = append(keys, k)
			}
			by[k][j.State] += j.Count
		}
		for _, k := range keys {
			c := by[k]
			p("  %s\t%s\t%d\t%d\t%d\t%d\t%d\n", k.kind, k.queue, c["available"]+c["pending"], c["scheduled"], c["running"], c["retryable"], c["discarded"])
		}
	}

	p("\nProviders\n")
	if len(r.Providers) == 0 {
		p("  no provider health recorded yet\n")
	} else {
		p("  PROVIDER\tSTATE\tBREAKER\tERROR RATE\tLAST FAILURE\tLAST ERROR\n")
		for _, h := range r.Providers {
			name := h.Provider
			if slices.Contains(r.FailingProviders, h.Provider) {
				name += " (FAILING)"
			}
			p("  %s\t%s\t%s\t%.0f%%\t%s\t%s\n", name, h.State, h.Breaker, 100*h.ErrorRate, timeOrDash(h.LastFailure), oneLine(h.LastError, 80))
		}
	}

	p("\nWebhook events\n")
	if len(r.WebhookEvents) == 0 {
		p("  none stored\n")
	} else {
		p("  PROVIDER\tSTATUS\tCOUNT\n")
		for _, c := range r.WebhookEvents {
			p("  %s\t%s\t%d\n", c.Provider, c.Status, c.Count)
		}
	}

	p("\nRecent failed webhook events\n")
	if len(r.FailedEvents) == 0 {
		p("  none\n")
	} else {
		p("  UPDATED\tPROVIDER\tEVENT\tTYPE\tATTEMPTS\tLAST ERROR\n")
		for _, e := range r.FailedEvents {
			p("  %s\t%s\t%s\t%s\t%d\t%s\n", e.UpdatedAt.UTC().Format(time.RFC3339), e.Provider, e.EventID, e.Type, e.Attempts, oneLine(e.LastError, 100))
		}
	}

	p("\nRecent job errors\n")
	if len(r.JobErrors) == 0 {
		p("  none\n")
	} else {
		p("  JOB\tKIND\tSTATE\tATTEMPT\tAT\tERROR\n")
		for _, j := range r.JobErrors {
			p("  %d\t%s\t%s\t%d/%d\t%s\t%s\n", j.ID, j.Kind, j.State, j.Attempt, j.MaxAttempts, timeOrDash(j.At), oneLine(j.Error, 100))
		}
	}
	return tw.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine keeps a message on one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

type statusInput struct {
	Recent int `query:"recent" minimum:"1" maximum:"100" default:"10" doc:"How many failed events and job errors to list."`
}

type statusOutput struct {
	Body *StatusReport
}

// registerStatus adds GET /api/admin/status/, the status report for
// superadmins.
func (s *Server) registerStatus(api huma.API) {
	register(s, api, huma.Operation{
		OperationID: "admin-status", Method: http.MethodGet, Path: "/api/admin/status/", Tags: []string{"Admin"},
		Summary:     "Platform status: job queue, provider health, webhook events, recent failures (superadmin)",
		Description: "The same report as the saaskit status command, read from the shared database.",
		Security:    bearerAuth,
	}, func(ctx context.Context, in *statusInput) (*statusOutput, error) {
		p, err := principal(ctx)
		if err != nil {
			return nil, err
		}
		if !p.Superadmin {
			return nil, fmt.Errorf("%w: the status report is for superadmins", authn.ErrForbidden)
		}
		rep, err := ReadStatus(ctx, s.tx, StatusOptions{Recent: in.Recent, Now: s.now()})
		if err != nil {
			return nil, err
		}
		return &statusOutput{Body: rep}, nil
	})
}

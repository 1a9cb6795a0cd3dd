package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	resilient "github.com/saaskit/saaskit/integrations"
	"github.com/saaskit/saaskit/tenancy"
)

// ActionReconciled is the audit action of a reconciliation that changed
// something; its changes count what it created, updated and removed.
const ActionReconciled = "integration.reconciled"

// ErrNoProviderURL is returned when a connection's provider has no base URL
// in SAASKIT_INTEGRATION_URLS, so nothing can be pulled from it.
var ErrNoProviderURL = errors.New("server: the provider has no URL configured (SAASKIT_INTEGRATION_URLS)")

// errReconcileRunning is returned when the connection is being reconciled.
var errReconcileRunning = fmt.Errorf("%w: a reconciliation of this connection is running", ErrConflict)

// reconcileMaxPages bounds the pages pulled from a provider (of 100 items).
const reconcileMaxPages = 1000

// ReconcileChange is one repair a reconciliation made.
type ReconcileChange struct {
	Kind       string `json:"kind" enum:"user,billing"`
	ExternalID string `json:"external_id"`
	Action     string `json:"action" enum:"created,updated,removed,skipped"`
	// Reason says why an object was skipped.
	Reason string `json:"reason,omitempty"`
}

// ReconcileReport is what a reconciliation of a connection found and
// repaired.
type ReconcileReport struct {
	ConnectionID uuid.UUID         `json:"connection_id"`
	Provider     string            `json:"provider"`
	StartedAt    time.Time         `json:"started_at"`
	FinishedAt   time.Time         `json:"finished_at"`
	Fetched      int               `json:"fetched" doc:"External objects listed."`
	Created      int               `json:"created"`
	Updated      int               `json:"updated"`
	Removed      int               `json:"removed"`
	Unchanged    int               `json:"unchanged"`
	Skipped      int               `json:"skipped" doc:"Objects the provider's handler refused (an invalid email, an owner to remove)."`
	Changes      []ReconcileChange `json:"changes" doc:"The repairs, up to 100."`
	Error        string            `json:"error,omitempty"`
}

func (r *ReconcileReport) add(kind, id, action string) {
	switch action {
	case "created":
		r.Created++
	case "updated":
		r.Updated++
	case "removed":
		r.Removed++
	case "":
		return // skipped, counted by skip
	default:
		r.Unchanged++
		return
	}
	if len(r.Changes) < 100 {
		r.Changes = append(r.Changes, ReconcileChange{Kind: kind, ExternalID: id, Action: action})
	}
}

func (r *ReconcileReport) skip(kind, id string, err error) {
	r.Skipped++
	if len(r.Changes) < 100 {
		r.Changes = append(r.Changes, ReconcileChange{Kind: kind, ExternalID: id, Action: "skipped", Reason: publicMessage(err)})
	}
}

func (o *outbound) lastReport(id uuid.UUID) *ReconcileReport {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reports[id]
}

// externalPage is a page of a provider's list.
type externalPage struct {
	Data       []json.RawMessage `json:"data"`
	NextCursor string            `json:"next_cursor"`
}

// pullAll lists every item of a provider collection through the outbound
// client, page by page.
func (s *Server) pullAll(ctx context.Context, provider, path string) ([]json.RawMessage, error) {
	base, ok := s.out.urls[provider]
	if !ok {
		return nil, ErrNoProviderURL
	}
	ctx = providerContext(ctx, provider)
	var out []json.RawMessage
	cursor := ""
	for range reconcileMaxPages {
		var p externalPage
		u := base + path + "?limit=100"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		if err := s.out.client.GetJSON(ctx, u, &p); err != nil {
			return nil, err
		}
		out = append(out, p.Data...)
		if p.NextCursor == "" || p.NextCursor == cursor {
			return out, nil
		}
		cursor = p.NextCursor
	}
	return nil, fmt.Errorf("server: %s%s has more than %d pages", provider, path, reconcileMaxPages)
}

// Reconcile pulls the users (user-service) or subscriptions
// (payment-service) of a connection's account through the outbound client
// and repairs what missed webhooks left out, in one transaction: it runs
// each external object through the provider's event handler as if its
// latest webhook had arrived (objects already applied at that version are
// left alone), and removes the members whose external users are gone.
// Repairs are audited with the integration as actor. It returns the
// report, also kept for the health API. Upstream failures are the
// outbound client's errors (resilient.ErrCircuitOpen, *StatusError).
func (s *Server) Reconcile(ctx context.Context, connID uuid.UUID) (*ReconcileReport, error) {
	conn := new(IntegrationConnection)
	if err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		c, err := getConnection(ctx, db, connID)
		conn = c
		return err
	}); err != nil {
		return nil, err
	}
	// The lease is the database's: a job or a manual reconciliation on
	// another replica holding it makes this one answer errReconcileRunning.
	release, err := s.acquireReconcileLease(ctx, connID)
	if err != nil {
		return nil, err
	}
	defer release()

	rep := &ReconcileReport{ConnectionID: conn.ID, Provider: conn.Provider, StartedAt: s.now(), Changes: []ReconcileChange{}}
	err = s.reconcile(ctx, conn, rep)
	rep.FinishedAt = s.now()
	if err != nil {
		// Nothing was committed: report no repairs.
		*rep = ReconcileReport{ConnectionID: rep.ConnectionID, Provider: rep.Provider, StartedAt: rep.StartedAt,
			FinishedAt: rep.FinishedAt, Fetched: rep.Fetched, Changes: []ReconcileChange{}, Error: err.Error()}
	}
	s.out.mu.Lock()
	s.out.reports[conn.ID] = rep
	s.out.mu.Unlock()
	level := slog.LevelInfo
	switch {
	case err != nil && ctx.Err() != nil:
		level = slog.LevelDebug // stopped by shutdown or the caller
	case err != nil:
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "integrations: reconciled", slog.String("provider", conn.Provider),
		slog.String("connection", conn.ID.String()), slog.Int("fetched", rep.Fetched), slog.Int("created", rep.Created),
		slog.Int("updated", rep.Updated), slog.Int("removed", rep.Removed), slog.Any("error", err))
	return rep, err
}

func (s *Server) reconcile(ctx context.Context, conn *IntegrationConnection, rep *ReconcileReport) error {
	p, ok := providers[conn.Provider]
	if !ok {
		return fmt.Errorf("%w: unknown provider %q", ErrPermanent, conn.Provider)
	}
	var items []json.RawMessage
	var err error
	switch conn.Provider {
	case ProviderUserService:
		items, err = s.pullAll(ctx, conn.Provider, "/v1/users")
	case ProviderPaymentService:
		items, err = s.pullAll(ctx, conn.Provider, "/v1/subscriptions")
	}
	if err != nil {
		return err
	}
	rep.Fetched = len(items)
	t, err := s.lookup.LookupTenant(ctx, conn.TenantID.String())
	if err != nil {
		return err
	}
	ctx = tenancy.WithTenant(ctx, t)
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorIntegration, ID: conn.Provider})
	var changed *tenancy.Tenant
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		apply := func(kind, linkID, typ string, data json.RawMessage) (string, error) {
			before, err := loadLink(ctx, tx, conn.ID, kind, linkID)
			if err != nil {
				return "", err
			}
			body, _ := json.Marshal(map[string]any{"id": "reconcile", "type": typ, "data": data})
			now := s.now()
			ev := &WebhookEvent{ID: uuid.Must(uuid.NewV7()), ConnectionID: conn.ID, Provider: conn.Provider,
				EventID: "reconcile", Type: typ, Payload: string(body), OccurredAt: &now}
			ev.TenantID = conn.TenantID
			pc := &processing{s: s, tx: tx, st: txStore{s, tx}, ev: ev}
			if _, err := p.handle(ctx, pc); err != nil {
				if errors.Is(err, ErrPermanent) {
					rep.skip(kind, linkID, err)
					return "", nil
				}
				return "", err
			}
			if pc.tenant != nil {
				changed = pc.tenant
			}
			after, err := loadLink(ctx, tx, conn.ID, kind, linkID)
			switch {
			case err != nil:
				return "", err
			case after == nil || (before != nil && before.Version.Equal(after.Version)):
				return "unchanged", nil
			case typ == "user.deleted":
				return "removed", nil
			case before == nil || before.Deleted:
				return "created", nil
			case kind == "billing" && before.State == after.State:
				return "unchanged", nil
			}
			return "updated", nil
		}
		var err error
		switch conn.Provider {
		case ProviderUserService:
			err = s.reconcileUsers(ctx, tx, conn, items, rep, apply)
		default:
			err = s.reconcileBilling(ctx, tx, conn, items, rep, apply)
		}
		if err != nil || rep.Created+rep.Updated+rep.Removed == 0 {
			return err
		}
		// The summary commits with the repairs it counts.
		return s.record(ctx, tx, &audit.Event{TenantID: conn.TenantID, Action: ActionReconciled,
			ResourceType: "integration_connection", ResourceID: conn.ID.String(), Changes: map[string]audit.Change{
				"created": {After: rep.Created}, "updated": {After: rep.Updated}, "removed": {After: rep.Removed},
				"skipped": {After: rep.Skipped}}})
	})
	if changed != nil {
		s.lookup.Forget(changed.ID.String())
		s.lookup.Forget(changed.Slug)
	}
	return err
}

type applyFunc func(kind, linkID, typ string, data json.RawMessage) (string, error)

func (s *Server) reconcileUsers(ctx context.Context, tx bun.Tx, conn *IntegrationConnection, items []json.RawMessage, rep *ReconcileReport, apply applyFunc) error {
	seen := map[string]bool{}
	for _, raw := range items {
		var u externalUser
		if err := json.Unmarshal(raw, &u); err != nil || u.ID == "" {
			return fmt.Errorf("server: reconcile: bad user from %s: %.100s", conn.Provider, raw)
		}
		seen[u.ID] = true
		action, err := apply("user", u.ID, "user.updated", raw)
		if err != nil {
			return fmt.Errorf("server: reconcile user %s: %w", u.ID, err)
		}
		rep.add("user", u.ID, action)
	}
	var links []*integrationLink
	if err := tx.NewSelect().Model(&links).Where("il.connection_id = ?", conn.ID).Where("il.kind = ?", "user").
		Where("il.deleted = ?", false).Scan(ctx); err != nil {
		return err
	}
	for _, l := range links {
		if seen[l.ExternalID] {
			continue
		}
		gone := s.now()
		if !gone.After(l.Version) {
			gone = l.Version.Add(time.Microsecond)
		}
		data, _ := json.Marshal(externalUser{ID: l.ExternalID, UpdatedAt: &gone})
		action, err := apply("user", l.ExternalID, "user.deleted", data)
		if err != nil {
			return fmt.Errorf("server: reconcile removed user %s: %w", l.ExternalID, err)
		}
		rep.add("user", l.ExternalID, action)
	}
	return nil
}

// reconcileBilling applies the subscription the tenant is on: the one the
// billing link names if it is still listed, else the newest that is not
// canceled, else the newest.
func (s *Server) reconcileBilling(ctx context.Context, tx bun.Tx, conn *IntegrationConnection, items []json.RawMessage, rep *ReconcileReport, apply applyFunc) error {
	link, err := loadLink(ctx, tx, conn.ID, "billing", "tenant")
	if err != nil {
		return err
	}
	var pick json.RawMessage
	var best externalBilling
	for _, raw := range items {
		var b externalBilling
		if err := json.Unmarshal(raw, &b); err != nil || b.ID == "" {
			return fmt.Errorf("server: reconcile: bad subscription from %s: %.100s", conn.Provider, raw)
		}
		if link != nil && link.InternalID == b.ID {
			pick, best = raw, b
			break
		}
		if pick == nil || newerSubscription(b, best) {
			pick, best = raw, b
		}
	}
	if pick == nil {
		return nil
	}
	action, err := apply("billing", "tenant", "subscription.updated", pick)
	if err != nil {
		return fmt.Errorf("server: reconcile subscription %s: %w", best.ID, err)
	}
	rep.add("billing", best.ID, action)
	return nil
}

// newerSubscription reports whether a is preferred over b: not canceled
// first, then the most recently updated.
func newerSubscription(a, b externalBilling) bool {
	if (a.Status == "canceled") != (b.Status == "canceled") {
		return b.Status == "canceled"
	}
	return a.UpdatedAt != nil && (b.UpdatedAt == nil || a.UpdatedAt.After(*b.UpdatedAt))
}

// ReconcileAll reconciles every connection whose provider has a URL, one
// after another; it returns the errors joined.
func (s *Server) ReconcileAll(ctx context.Context) error {
	var conns []*IntegrationConnection
	err := s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(&conns).OrderExpr("ic.id").Scan(ctx)
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range conns {
		if _, ok := s.out.urls[c.Provider]; !ok {
			continue
		}
		if _, err := s.Reconcile(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("server: reconcile %s: %w", c.ID, err))
		}
	}
	if err := s.flushHealthHistory(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type reconcileOutput struct {
	Body ReconcileReport
}

func (s *Server) handleReconcile(ctx context.Context, in *connectionIDInput) (*reconcileOutput, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	// The connection must be the tenant's: read it in the tenant's scope.
	tenantID, _ := tenancy.IDFromContext(ctx)
	if err := s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		c, err := getConnection(ctx, db, in.ID)
		if err == nil && c.TenantID != tenantID {
			return ErrNotFound
		}
		return err
	}); err != nil {
		return nil, err
	}
	rep, err := s.Reconcile(ctx, in.ID)
	switch {
	case err == nil:
		return &reconcileOutput{Body: *rep}, nil
	case errors.Is(err, ErrNoProviderURL):
		return nil, huma.Error503ServiceUnavailable("the provider's API is not configured on this server")
	case errors.Is(err, resilient.ErrCircuitOpen):
		return nil, huma.Error503ServiceUnavailable("the provider is down (circuit open); try again later")
	}
	var se *resilient.StatusError
	var te *resilient.TransportError
	if errors.As(err, &se) || errors.As(err, &te) {
		return nil, huma.Error502BadGateway("the provider failed: " + err.Error())
	}
	return nil, err
}

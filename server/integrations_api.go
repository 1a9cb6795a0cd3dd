package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
	"github.com/saaskit/saaskit/webhooks"
)

// Audit actions of integration connections and events.
const (
	ActionConnectionCreated = "integration.connection_created"
	ActionConnectionRotated = "integration.secret_rotated"
	ActionConnectionDeleted = "integration.connection_deleted"
	ActionEventReplayed     = "integration.event_replayed"
)

// ConnectionView is an integration connection as the API shows it. Secret is
// present only in the answers that create or rotate it.
type ConnectionView struct {
	ID              uuid.UUID `json:"id"`
	Provider        string    `json:"provider"`
	ExternalAccount string    `json:"external_account"`
	WebhookURL      string    `json:"webhook_url" doc:"Path that receives this connection's events; append batch/ for batches."`
	ActiveSecrets   int       `json:"active_secrets" doc:"Secrets that currently verify signatures (2 during a rotation)."`
	Secret          string    `json:"secret,omitempty" doc:"The new signing secret (Standard Webhooks whsec_); shown once."`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func connectionView(c *IntegrationConnection) ConnectionView {
	return ConnectionView{ID: c.ID, Provider: c.Provider, ExternalAccount: c.ExternalAccount,
		WebhookURL:    "/api/integrations/webhooks/" + c.Provider + "/" + c.ID.String() + "/",
		ActiveSecrets: len(c.secretList()), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// EventView is a stored webhook event as the API shows it.
type EventView struct {
	ID           uuid.UUID       `json:"id"`
	ConnectionID uuid.UUID       `json:"connection_id"`
	Provider     string          `json:"provider"`
	EventID      string          `json:"event_id"`
	Type         string          `json:"type"`
	Status       string          `json:"status" enum:"received,processing,processed,failed,skipped"`
	Attempts     int             `json:"attempts"`
	LastError    string          `json:"last_error"`
	OccurredAt   *time.Time      `json:"occurred_at"`
	ReceivedAt   time.Time       `json:"received_at"`
	ProcessedAt  *time.Time      `json:"processed_at"`
	Payload      json.RawMessage `json:"payload,omitempty" doc:"The event as received; in the detail only."`
}

func eventView(e *WebhookEvent, payload bool) EventView {
	v := EventView{ID: e.ID, ConnectionID: e.ConnectionID, Provider: e.Provider, EventID: e.EventID, Type: e.Type,
		Status: e.Status, Attempts: e.Attempts, LastError: e.LastError, OccurredAt: e.OccurredAt,
		ReceivedAt: e.ReceivedAt, ProcessedAt: e.ProcessedAt}
	if payload && json.Valid([]byte(e.Payload)) {
		v.Payload = json.RawMessage(e.Payload)
	}
	return v
}

type connectionIDInput struct {
	ID uuid.UUID `path:"id"`
}

type connectionOutput struct {
	Body ConnectionView
}

type createConnectionInput struct {
	Body struct {
		Provider        string `json:"provider" enum:"user-service,payment-service"`
		ExternalAccount string `json:"external_account" minLength:"1" maxLength:"200" doc:"The account at the provider that this tenant is."`
	}
}

type rotateSecretInput struct {
	ID   uuid.UUID `path:"id"`
	Body struct {
		RetirePrevious bool `json:"retire_previous,omitempty" doc:"Drop every older secret now instead of keeping the last one for the rotation."`
	}
}

type listEventsInput struct {
	Limit          int       `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Items per page."`
	Cursor         string    `query:"cursor" maxLength:"512" doc:"next_cursor of the previous page."`
	Status         string    `query:"status" enum:"received,processing,processed,failed,skipped"`
	Provider       string    `query:"provider" maxLength:"100"`
	Type           string    `query:"type" maxLength:"255"`
	ReceivedAfter  time.Time `query:"received_after" doc:"Only events received after this time (RFC 3339)."`
	ReceivedBefore time.Time `query:"received_before" doc:"Only events received before this time (RFC 3339)."`
}

type eventIDInput struct {
	ID uuid.UUID `path:"id"`
}

type eventOutput struct {
	Body EventView
}

func (s *Server) registerIntegrations(api huma.API) {
	tags := []string{"integrations"}
	register(s, api, huma.Operation{
		OperationID: "list-integration-providers", Method: http.MethodGet, Path: "/api/integrations/providers/", Tags: tags,
		Summary: "The providers webhooks are received from (admin)", Security: bearerAuth,
	}, func(ctx context.Context, _ *struct{}) (*struct{ Body []*integrationProvider }, error) {
		if _, err := s.integrationAdmin(ctx); err != nil {
			return nil, err
		}
		out := &struct{ Body []*integrationProvider }{}
		for _, n := range providerNames() {
			out.Body = append(out.Body, providers[n])
		}
		return out, nil
	})
	register(s, api, huma.Operation{
		OperationID: "create-integration-connection", Method: http.MethodPost, Path: "/api/integrations/connections/", Tags: tags,
		Summary: "Connect an external account to the current tenant (admin)", Security: bearerAuth,
		DefaultStatus: http.StatusCreated, Errors: []int{http.StatusConflict},
	}, s.handleCreateConnection)
	register(s, api, huma.Operation{
		OperationID: "list-integration-connections", Method: http.MethodGet, Path: "/api/integrations/connections/", Tags: tags,
		Summary: "The current tenant's connections (admin)", Security: bearerAuth,
	}, s.handleListConnections)
	register(s, api, huma.Operation{
		OperationID: "rotate-integration-secret", Method: http.MethodPost, Path: "/api/integrations/connections/{id}/rotate-secret/", Tags: tags,
		Summary: "Add a new signing secret; the previous one keeps verifying until retired (admin)", Security: bearerAuth,
	}, s.handleRotateSecret)
	register(s, api, huma.Operation{
		OperationID: "delete-integration-connection", Method: http.MethodDelete, Path: "/api/integrations/connections/{id}/", Tags: tags,
		Summary: "Delete a connection and its events (admin)", Security: bearerAuth, DefaultStatus: http.StatusNoContent,
	}, s.handleDeleteConnection)
	register(s, api, huma.Operation{
		OperationID: "list-webhook-events", Method: http.MethodGet, Path: "/api/integrations/events/", Tags: tags,
		Summary: "The current tenant's received webhook events, newest first (admin)", Security: bearerAuth,
	}, s.handleListEvents)
	register(s, api, huma.Operation{
		OperationID: "get-webhook-event", Method: http.MethodGet, Path: "/api/integrations/events/{id}/", Tags: tags,
		Summary: "A webhook event with its attempts and last error (admin)", Security: bearerAuth,
	}, s.handleGetEvent)
	register(s, api, huma.Operation{
		OperationID: "replay-webhook-event", Method: http.MethodPost, Path: "/api/integrations/events/{id}/replay/", Tags: tags,
		Summary: "Process an event again (admin); processing is idempotent", Security: bearerAuth,
		DefaultStatus: http.StatusAccepted,
	}, s.handleReplayEvent)
}

// integrationAdmin returns the tenant context of an admin or owner.
func (s *Server) integrationAdmin(ctx context.Context) (context.Context, error) {
	ctx, _, err := s.tenantContext(ctx)
	if err != nil {
		return ctx, err
	}
	return ctx, authn.Authorize(ctx, authn.RoleAdmin)
}

// newSigningSecret returns a Standard Webhooks secret: whsec_ and 32 random
// bytes in base64.
func newSigningSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return webhooks.StandardSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

func marshalSecrets(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Server) handleCreateConnection(ctx context.Context, in *createConnectionInput) (*connectionOutput, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := providers[in.Body.Provider]; !ok {
		return nil, invalid("body.provider", "unknown provider", in.Body.Provider)
	}
	account := strings.TrimSpace(in.Body.ExternalAccount)
	if account == "" {
		return nil, invalid("body.external_account", "must not be blank", in.Body.ExternalAccount)
	}
	now, secret := s.now(), newSigningSecret()
	c := &IntegrationConnection{ID: uuid.Must(uuid.NewV7()), Provider: in.Body.Provider, ExternalAccount: account,
		Secrets: marshalSecrets([]string{secret}), CreatedAt: now, UpdatedAt: now}
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		n, err := tx.NewSelect().Model((*IntegrationConnection)(nil)).Apply(tenancy.Scope(ctx)).
			Where("provider = ?", c.Provider).Where("external_account = ?", account).Count(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: this account is already connected", ErrConflict)
		}
		if _, err := tx.NewInsert().Model(c).Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: c.TenantID, Action: ActionConnectionCreated,
			ResourceType: "integration_connection", ResourceID: c.ID.String(),
			Changes: map[string]audit.Change{"provider": {After: c.Provider}, "external_account": {After: account}}})
	})
	if err != nil {
		return nil, err
	}
	v := connectionView(c)
	v.Secret = secret
	return &connectionOutput{Body: v}, nil
}

func (s *Server) handleListConnections(ctx context.Context, _ *struct{}) (*struct{ Body []ConnectionView }, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var rows []*IntegrationConnection
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		return db.NewSelect().Model(&rows).OrderExpr("ic.id").Limit(1000).Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	out := &struct{ Body []ConnectionView }{Body: make([]ConnectionView, 0, len(rows))}
	for _, c := range rows {
		out.Body = append(out.Body, connectionView(c))
	}
	return out, nil
}

func getConnection(ctx context.Context, db bun.IDB, id uuid.UUID) (*IntegrationConnection, error) {
	c := new(IntegrationConnection)
	err := db.NewSelect().Model(c).Where("ic.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return c, err
}

func (s *Server) handleRotateSecret(ctx context.Context, in *rotateSecretInput) (*connectionOutput, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	secret := newSigningSecret()
	var c *IntegrationConnection
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if c, err = getConnection(ctx, tx, in.ID); err != nil {
			return err
		}
		secrets := []string{secret}
		if old := c.secretList(); len(old) > 0 && !in.Body.RetirePrevious {
			secrets = append(secrets, old[0])
		}
		c.Secrets, c.UpdatedAt = marshalSecrets(secrets), s.now()
		if _, err := tx.NewUpdate().Model(c).Column("secrets", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: c.TenantID, Action: ActionConnectionRotated,
			ResourceType: "integration_connection", ResourceID: c.ID.String(),
			Changes: map[string]audit.Change{"active_secrets": {After: len(secrets)}}})
	})
	if err != nil {
		return nil, err
	}
	s.integ.conns.forget(c.ID)
	v := connectionView(c)
	v.Secret = secret
	return &connectionOutput{Body: v}, nil
}

func (s *Server) handleDeleteConnection(ctx context.Context, in *connectionIDInput) (*struct{}, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		c, err := getConnection(ctx, tx, in.ID)
		if err != nil {
			return err
		}
		// Links and events go with the connection (ON DELETE CASCADE).
		if _, err := tx.NewDelete().Model(c).WherePK().Exec(ctx); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: c.TenantID, Action: ActionConnectionDeleted,
			ResourceType: "integration_connection", ResourceID: c.ID.String(),
			Changes: map[string]audit.Change{"provider": {Before: c.Provider}, "external_account": {Before: c.ExternalAccount}}})
	})
	if err == nil {
		s.integ.conns.forget(in.ID)
	}
	return nil, err
}

func (s *Server) handleListEvents(ctx context.Context, in *listEventsInput) (*struct{ Body Page[EventView] }, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	cur, err := decodeCursor(in.Cursor, "-id")
	if err != nil {
		return nil, invalid("query.cursor", publicMessage(err), in.Cursor)
	}
	var rows []*WebhookEvent
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		q := db.NewSelect().Model(&rows).ExcludeColumn("payload")
		if in.Status != "" {
			q = q.Where("we.status = ?", in.Status)
		}
		if in.Provider != "" {
			q = q.Where("we.provider = ?", in.Provider)
		}
		if in.Type != "" {
			q = q.Where("we.type = ?", in.Type)
		}
		if !in.ReceivedAfter.IsZero() {
			q = q.Where("we.received_at > ?", in.ReceivedAfter.UTC())
		}
		if !in.ReceivedBefore.IsZero() {
			q = q.Where("we.received_at < ?", in.ReceivedBefore.UTC())
		}
		if cur != nil {
			q = q.Where("we.id < ?", cur.ID)
		}
		return q.OrderExpr("we.id DESC").Limit(int64(in.Limit + 1)).Scan(ctx)
	})
	if err != nil {
		return nil, err
	}
	out := &struct{ Body Page[EventView] }{}
	out.Body.Items = make([]EventView, 0, min(len(rows), in.Limit))
	for i, e := range rows {
		if i == in.Limit {
			next := encodeCursor(cursor{Ordering: "-id", ID: rows[i-1].ID})
			out.Body.NextCursor = &next
			break
		}
		out.Body.Items = append(out.Body.Items, eventView(e, false))
	}
	return out, nil
}

func getEvent(ctx context.Context, db bun.IDB, id uuid.UUID) (*WebhookEvent, error) {
	e := new(WebhookEvent)
	err := db.NewSelect().Model(e).Where("we.id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return e, err
}

func (s *Server) handleGetEvent(ctx context.Context, in *eventIDInput) (*eventOutput, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var e *WebhookEvent
	err = s.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
		e, err = getEvent(ctx, db, in.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &eventOutput{Body: eventView(e, true)}, nil
}

// handleReplayEvent sets the event back to received and enqueues its job in
// one transaction. Processing is effect-idempotent: replaying an event whose
// effect is applied changes nothing but its status.
func (s *Server) handleReplayEvent(ctx context.Context, in *eventIDInput) (*eventOutput, error) {
	ctx, err := s.integrationAdmin(ctx)
	if err != nil {
		return nil, err
	}
	var e *WebhookEvent
	err = s.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if e, err = getEvent(ctx, tx, in.ID); err != nil {
			return err
		}
		before := e.Status
		e.Status, e.UpdatedAt = EventReceived, s.now()
		if _, err := tx.NewUpdate().Model(e).Column("status", "updated_at").WherePK().Exec(ctx); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, e); err != nil {
			return err
		}
		return s.record(ctx, tx, &audit.Event{TenantID: e.TenantID, Action: ActionEventReplayed,
			ResourceType: "webhook_event", ResourceID: e.ID.String(),
			Changes: map[string]audit.Change{"status": {Before: before, After: EventReceived}}})
	})
	if err != nil {
		return nil, err
	}
	return &eventOutput{Body: eventView(e, false)}, nil
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"

	"github.com/saaskit/saaskit/tenancy"
)

// Statuses of a stored webhook event.
const (
	EventReceived   = "received"   // stored, its job not yet done
	EventProcessing = "processing" // an attempt failed; it will be retried
	EventProcessed  = "processed"  // its effect is applied
	EventFailed     = "failed"     // every attempt failed: the dead letter
	EventSkipped    = "skipped"    // its type is not one the provider handles
)

// IntegrationConnection maps an account of an external provider to a tenant,
// with the secrets that sign that account's webhooks. It is tenant-owned.
type IntegrationConnection struct {
	bun.BaseModel `bun:"table:integration_connections,alias:ic"`
	tenancy.Scoped

	ID              uuid.UUID `bun:"id,pk,type:uuid"`
	Provider        string    `bun:"provider,notnull"`
	ExternalAccount string    `bun:"external_account,notnull"`
	// Secrets are the active signing secrets, newest first, as JSON.
	Secrets   string    `bun:"secrets,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

func (c *IntegrationConnection) secretList() []string {
	var out []string
	json.Unmarshal([]byte(c.Secrets), &out) //nolint:errcheck // written by the server
	return out
}

// WebhookEvent is one received webhook event and the state of its
// processing. It is tenant-owned: the tenant is the connection's.
type WebhookEvent struct {
	bun.BaseModel `bun:"table:webhook_events,alias:we"`
	tenancy.Scoped

	ID           uuid.UUID  `bun:"id,pk,type:uuid"`
	ConnectionID uuid.UUID  `bun:"connection_id,type:uuid,notnull"`
	Provider     string     `bun:"provider,notnull"`
	EventID      string     `bun:"event_id,notnull"`
	Type         string     `bun:"type,notnull"`
	Payload      string     `bun:"payload,notnull"`
	OccurredAt   *time.Time `bun:"occurred_at"`
	Status       string     `bun:"status,notnull"`
	Attempts     int        `bun:"attempts,notnull"`
	LastError    string     `bun:"last_error,notnull"`
	ReceivedAt   time.Time  `bun:"received_at,notnull"`
	ProcessedAt  *time.Time `bun:"processed_at"`
	UpdatedAt    time.Time  `bun:"updated_at,notnull"`
}

// integrationLink remembers what an external object became internally and
// the newest version of it applied, so that an event older than that
// version changes nothing.
type integrationLink struct {
	bun.BaseModel `bun:"table:integration_links,alias:il"`
	tenancy.Scoped

	ConnectionID uuid.UUID `bun:"connection_id,pk,type:uuid"`
	Kind         string    `bun:"kind,pk"`
	ExternalID   string    `bun:"external_id,pk"`
	InternalID   string    `bun:"internal_id,notnull"`
	Version      time.Time `bun:"version,notnull"`
	State        string    `bun:"state,notnull"`
	Deleted      bool      `bun:"deleted,notnull"`
	UpdatedAt    time.Time `bun:"updated_at,notnull"`
}

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261210000001",
		Comment: "integration connections, webhook events, integration links",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			db := m.DB()
			idType, tsType := "TEXT", "TIMESTAMP"
			if db.Dialect().Name() == dialect.PG {
				idType, tsType = "UUID", "TIMESTAMPTZ"
			}
			stmts := []string{
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS integration_connections (
					id %[1]s PRIMARY KEY,
					tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
					provider TEXT NOT NULL,
					external_account TEXT NOT NULL,
					secrets TEXT NOT NULL,
					created_at %[2]s NOT NULL,
					updated_at %[2]s NOT NULL,
					UNIQUE (tenant_id, provider, external_account))`, idType, tsType),
				// Events are unique per connection (and provider, which the
				// connection fixes): two tenants' accounts may reuse ids.
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS webhook_events (
					id %[1]s PRIMARY KEY,
					tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
					connection_id %[1]s NOT NULL REFERENCES integration_connections(id) ON DELETE CASCADE,
					provider TEXT NOT NULL,
					event_id TEXT NOT NULL,
					type TEXT NOT NULL,
					payload TEXT NOT NULL,
					occurred_at %[2]s,
					status TEXT NOT NULL CHECK (status IN ('received', 'processing', 'processed', 'failed', 'skipped')),
					attempts INTEGER NOT NULL DEFAULT 0,
					last_error TEXT NOT NULL DEFAULT '',
					received_at %[2]s NOT NULL,
					processed_at %[2]s,
					updated_at %[2]s NOT NULL,
					UNIQUE (connection_id, provider, event_id))`, idType, tsType),
				`CREATE INDEX IF NOT EXISTS webhook_events_tenant ON webhook_events (tenant_id, id)`,
				`CREATE INDEX IF NOT EXISTS webhook_events_tenant_status ON webhook_events (tenant_id, status, id)`,
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS integration_links (
					tenant_id %[1]s NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
					connection_id %[1]s NOT NULL REFERENCES integration_connections(id) ON DELETE CASCADE,
					kind TEXT NOT NULL,
					external_id TEXT NOT NULL,
					internal_id TEXT NOT NULL DEFAULT '',
					version %[2]s NOT NULL,
					state TEXT NOT NULL DEFAULT '',
					deleted BOOLEAN NOT NULL DEFAULT FALSE,
					updated_at %[2]s NOT NULL,
					PRIMARY KEY (connection_id, kind, external_id))`, idType, tsType),
			}
			for _, s := range stmts {
				if _, err := db.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("server: migrate integrations: %w", err)
				}
			}
			for _, t := range []string{"integration_connections", "webhook_events", "integration_links"} {
				if err := tenancy.EnableRLS(ctx, db, t); err != nil {
					return err
				}
			}
			return nil
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			for _, t := range []string{"integration_links", "webhook_events", "integration_connections"} {
				if _, err := m.DB().ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

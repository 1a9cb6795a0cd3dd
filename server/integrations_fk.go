package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// Webhook events and integration links belong to a connection, and so to
// its tenant. They were created with two foreign keys each, one to the
// tenant and one to the connection: two checks for every row inserted, on
// the hottest inserts of the server (a row an event received, a row an
// event applied). One foreign key to (id, tenant_id) of the connection
// checks both at once and more: a row's tenant must be its connection's.
// Deleting a tenant still deletes them, through its connections. (On
// SQLite, turning foreign keys off altogether made saaskit bench -scenario
// webhook-batch 4-20% faster; one check instead of two measured within the
// noise of runs, on both databases.)
func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20261227000001",
		Comment: "webhook events and integration links: one foreign key to the connection and its tenant",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			return m.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := tx.ExecContext(ctx, `CREATE UNIQUE INDEX IF NOT EXISTS integration_connections_id_tenant
					ON integration_connections (id, tenant_id)`); err != nil {
					return fmt.Errorf("server: migrate connection keys: %w", err)
				}
				return rekeyIntegrationTables(ctx, tx, true)
			})
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			return m.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if err := rekeyIntegrationTables(ctx, tx, false); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS integration_connections_id_tenant`)
				return err
			})
		},
	})
}

// integrationTableDef is a table of the integrations whose foreign keys
// the migration changes: its columns (with their constraints but the
// foreign keys), its other table constraints and its indexes.
type integrationTableDef struct {
	name    string
	columns string // %[1]s: the id type, %[2]s: the time type
	extra   string
	indexes []string
}

var integrationTables = []integrationTableDef{
	{
		name: "webhook_events",
		columns: `id %[1]s PRIMARY KEY,
			tenant_id %[1]s NOT NULL,
			connection_id %[1]s NOT NULL,
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
			updated_at %[2]s NOT NULL`,
		extra: `UNIQUE (connection_id, provider, event_id)`,
		indexes: []string{
			`CREATE INDEX webhook_events_tenant ON webhook_events (tenant_id, id)`,
			`CREATE INDEX webhook_events_tenant_status ON webhook_events (tenant_id, status, id)`,
		},
	},
	{
		name: "integration_links",
		columns: `tenant_id %[1]s NOT NULL,
			connection_id %[1]s NOT NULL,
			kind TEXT NOT NULL,
			external_id TEXT NOT NULL,
			internal_id TEXT NOT NULL DEFAULT '',
			version %[2]s NOT NULL,
			state TEXT NOT NULL DEFAULT '',
			deleted BOOLEAN NOT NULL DEFAULT FALSE,
			updated_at %[2]s NOT NULL`,
		extra: `PRIMARY KEY (connection_id, kind, external_id)`,
	},
}

// columnNames lists t's columns, comma-separated.
func (t integrationTableDef) columnNames() string {
	var names []string
	for _, c := range strings.Split(t.columns, ",\n") {
		names = append(names, strings.Fields(c)[0])
	}
	return strings.Join(names, ", ")
}

// Foreign keys of the integration tables: joined to the connection and
// its tenant at once (up), or to each apart, as first created (down).
const (
	fkJoined = `FOREIGN KEY (connection_id, tenant_id) REFERENCES integration_connections (id, tenant_id) ON DELETE CASCADE`
	fkApart  = `FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
			FOREIGN KEY (connection_id) REFERENCES integration_connections (id) ON DELETE CASCADE`
)

// rekeyIntegrationTables gives the integration tables the joined foreign
// key (joined) or the two apart. Postgres alters the constraints in place;
// SQLite, which cannot, copies each table into a new one.
func rekeyIntegrationTables(ctx context.Context, tx bun.Tx, joined bool) error {
	fk := fkApart
	if joined {
		fk = fkJoined
	}
	if tx.Dialect().Name() == dialect.PG {
		for _, t := range integrationTables {
			var names []string
			err := tx.NewRaw(`SELECT conname FROM pg_constraint WHERE conrelid = ?::regclass AND contype = 'f'`, t.name).Scan(ctx, &names)
			if err != nil {
				return fmt.Errorf("server: migrate %s keys: %w", t.name, err)
			}
			for _, n := range names {
				if _, err := tx.ExecContext(ctx, "ALTER TABLE ? DROP CONSTRAINT ?", bun.Ident(t.name), bun.Ident(n)); err != nil {
					return fmt.Errorf("server: migrate %s keys: %w", t.name, err)
				}
			}
			for _, c := range strings.Split(fk, ",\n") {
				if _, err := tx.ExecContext(ctx, "ALTER TABLE ? ADD "+strings.TrimSpace(c), bun.Ident(t.name)); err != nil {
					return fmt.Errorf("server: migrate %s keys: %w", t.name, err)
				}
			}
		}
		return nil
	}
	for _, t := range integrationTables {
		cols := fmt.Sprintf(t.columns, "TEXT", "TIMESTAMP")
		stmts := []string{
			fmt.Sprintf("CREATE TABLE %s_rekeyed (\n\t\t\t%s,\n\t\t\t%s,\n\t\t\t%s)", t.name, cols, fk, t.extra),
			fmt.Sprintf("INSERT INTO %[1]s_rekeyed (%[2]s) SELECT %[2]s FROM %[1]s", t.name, t.columnNames()),
			"DROP TABLE " + t.name,
			fmt.Sprintf("ALTER TABLE %[1]s_rekeyed RENAME TO %[1]s", t.name),
		}
		stmts = append(stmts, t.indexes...)
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("server: migrate %s keys: %w", t.name, err)
			}
		}
	}
	return nil
}

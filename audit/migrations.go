package audit

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// MigrationTable is the bun/migrate table that records which of
// [Migrations] ran; its lock table is MigrationTable + "_locks".
const MigrationTable = "audit_migrations"

// Migrations creates the audit tables: audit_events (the events, as
// recorded), audit_chain (their per-tenant hash chains, appended by
// [Store.Seal]), audit_heads (one head per chain), audit_pending (on
// Postgres: the events not yet chained), audit_trees, audit_tree_hashes and
// audit_checkpoints (the Merkle trees and their signed checkpoints), with
// triggers that refuse UPDATE and DELETE (and, on Postgres, TRUNCATE) on the
// append-only ones. Run them with [Migrate], or with a migrator of your own
// that uses [MigrationTable].
var Migrations = migrate.NewMigrations()

func init() {
	Migrations.Add(migrate.Migration{
		Name:    "20250601000001",
		Comment: "audit_tables",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			return migrateUp(ctx, m.DB())
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			return migrateDown(ctx, m.DB())
		},
	})
}

// appendOnly lists the tables whose rows are never updated or deleted.
var appendOnly = []string{"audit_events", "audit_chain", "audit_tree_hashes", "audit_checkpoints"}

// On SQLite, audit_events is a plain rowid table without secondary indexes:
// a request's write transaction adds one row at the right edge of one
// B-tree. pos is the rowid, which grows in commit order because SQLite
// serializes writers and the table refuses deletes.
var sqliteUp = []string{
	`CREATE TABLE audit_events (
	pos INTEGER PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	id TEXT NOT NULL,
	actor_type TEXT NOT NULL,
	actor_id TEXT NOT NULL,
	action TEXT NOT NULL,
	resource_type TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	changes TEXT NOT NULL,
	request_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	user_agent TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL
)`,
	`CREATE TABLE audit_chain (
	tenant_id TEXT NOT NULL,
	seq INTEGER NOT NULL CHECK (seq > 0),
	pos INTEGER NOT NULL UNIQUE,
	event_id TEXT NOT NULL,
	prev_hash BLOB NOT NULL,
	hash BLOB NOT NULL,
	PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID`,
	`CREATE INDEX audit_chain_event_idx ON audit_chain (tenant_id, event_id)`,
	`CREATE TABLE audit_heads (
	tenant_id TEXT PRIMARY KEY,
	seq INTEGER NOT NULL,
	hash BLOB NOT NULL
)`,
	`CREATE TABLE audit_trees (
	tenant_id TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	hash BLOB NOT NULL
)`,
	`CREATE TABLE audit_tree_hashes (
	tenant_id TEXT NOT NULL,
	idx INTEGER NOT NULL,
	hash BLOB NOT NULL,
	PRIMARY KEY (tenant_id, idx)
)`,
	`CREATE TABLE audit_checkpoints (
	tenant_id TEXT NOT NULL,
	id TEXT NOT NULL,
	size INTEGER NOT NULL,
	root_hash BLOB NOT NULL,
	note TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (tenant_id, id)
)`,
	`CREATE INDEX audit_checkpoints_size_idx ON audit_checkpoints (tenant_id, size)`,
}

// On Postgres, transactions commit out of pos order, so a trigger notes
// every new event in audit_pending, which the sealer empties.
var pgUp = []string{
	`CREATE TABLE audit_events (
	pos bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id uuid NOT NULL,
	id uuid NOT NULL,
	actor_type text NOT NULL,
	actor_id text NOT NULL,
	action text NOT NULL,
	resource_type text NOT NULL,
	resource_id text NOT NULL,
	changes text NOT NULL,
	request_id text NOT NULL,
	ip text NOT NULL,
	user_agent text NOT NULL,
	created_at timestamptz NOT NULL,
	UNIQUE (tenant_id, id)
)`,
	`CREATE INDEX audit_events_resource_idx ON audit_events (tenant_id, resource_type, resource_id)`,
	`CREATE INDEX audit_events_actor_idx ON audit_events (tenant_id, actor_id)`,
	`CREATE INDEX audit_events_action_idx ON audit_events (tenant_id, action)`,
	`CREATE TABLE audit_pending (
	pos bigint PRIMARY KEY
)`,
	`CREATE FUNCTION audit_note_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO audit_pending (pos) VALUES (NEW.pos);
	RETURN NULL;
END
$$`,
	`CREATE TRIGGER audit_events_pending AFTER INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_note_pending()`,
	`CREATE TABLE audit_chain (
	tenant_id uuid NOT NULL,
	seq bigint NOT NULL CHECK (seq > 0),
	pos bigint NOT NULL UNIQUE,
	event_id uuid NOT NULL,
	prev_hash bytea NOT NULL,
	hash bytea NOT NULL,
	PRIMARY KEY (tenant_id, seq)
)`,
	`CREATE INDEX audit_chain_event_idx ON audit_chain (tenant_id, event_id)`,
	`CREATE TABLE audit_heads (
	tenant_id uuid PRIMARY KEY,
	seq bigint NOT NULL,
	hash bytea NOT NULL
)`,
	`CREATE TABLE audit_trees (
	tenant_id uuid PRIMARY KEY,
	size bigint NOT NULL,
	hash bytea NOT NULL
)`,
	`CREATE TABLE audit_tree_hashes (
	tenant_id uuid NOT NULL,
	idx bigint NOT NULL,
	hash bytea NOT NULL,
	PRIMARY KEY (tenant_id, idx)
)`,
	`CREATE TABLE audit_checkpoints (
	tenant_id uuid NOT NULL,
	id uuid NOT NULL,
	size bigint NOT NULL,
	root_hash bytea NOT NULL,
	note text NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, id)
)`,
	`CREATE INDEX audit_checkpoints_size_idx ON audit_checkpoints (tenant_id, size)`,
	`CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit: % on % refused: the table is append-only', TG_OP, TG_TABLE_NAME
		USING ERRCODE = 'insufficient_privilege';
END
$$`,
}

func init() {
	for _, t := range appendOnly {
		sqliteUp = append(sqliteUp,
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_update BEFORE UPDATE ON %[1]s
BEGIN SELECT RAISE(ABORT, 'audit: UPDATE on %[1]s refused: the table is append-only'); END`, t),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_delete BEFORE DELETE ON %[1]s
BEGIN SELECT RAISE(ABORT, 'audit: DELETE on %[1]s refused: the table is append-only'); END`, t))
		pgUp = append(pgUp,
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_update BEFORE UPDATE ON %[1]s FOR EACH ROW EXECUTE FUNCTION audit_append_only()`, t),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_delete BEFORE DELETE ON %[1]s FOR EACH ROW EXECUTE FUNCTION audit_append_only()`, t),
			fmt.Sprintf(`CREATE TRIGGER %[1]s_no_truncate BEFORE TRUNCATE ON %[1]s FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()`, t))
	}
}

var down = []string{
	`DROP TABLE IF EXISTS audit_checkpoints`,
	`DROP TABLE IF EXISTS audit_tree_hashes`,
	`DROP TABLE IF EXISTS audit_trees`,
	`DROP TABLE IF EXISTS audit_heads`,
	`DROP TABLE IF EXISTS audit_chain`,
	`DROP TABLE IF EXISTS audit_pending`,
	`DROP TABLE IF EXISTS audit_events`,
}

func migrateUp(ctx context.Context, db *bun.DB) error {
	stmts := sqliteUp
	if db.Dialect().Name() == dialect.PG {
		stmts = pgUp
	}
	return execAll(ctx, db, stmts)
}

func migrateDown(ctx context.Context, db *bun.DB) error {
	stmts := down
	if db.Dialect().Name() == dialect.PG {
		stmts = append(stmts, `DROP FUNCTION IF EXISTS audit_append_only()`, `DROP FUNCTION IF EXISTS audit_note_pending()`)
	}
	return execAll(ctx, db, stmts)
}

func execAll(ctx context.Context, db *bun.DB, stmts []string) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("audit: migrate: %w", err)
			}
		}
		return nil
	})
}

// Migrate applies [Migrations] to db, recording them in [MigrationTable]. It
// is safe to run at every start: applied migrations are skipped.
func Migrate(ctx context.Context, db *bun.DB) error {
	m := migrate.NewMigrator(db, Migrations,
		migrate.WithTableName(MigrationTable),
		migrate.WithLocksTableName(MigrationTable+"_locks"),
		migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	defer m.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // best effort
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	return nil
}

// RestrictRole grants the Postgres role the application connects as what the
// audit log needs and nothing more: SELECT and INSERT on the append-only
// tables, with UPDATE, DELETE and TRUNCATE revoked, SELECT, INSERT and
// UPDATE on the chain heads and tree state, and SELECT, INSERT and DELETE
// on audit_pending (which [Store.Seal] empties). Run it as the tables' owner after
// [Migrate]. The triggers refuse changes from the owner too; the revocation
// also keeps TRUNCATE and trigger changes out of the application's reach.
// On SQLite, which has no roles, it does nothing.
func RestrictRole(ctx context.Context, db bun.IDB, role string) error {
	if db.Dialect().Name() != dialect.PG {
		return nil
	}
	if role == "" {
		return fmt.Errorf("audit: restrict role: empty role name")
	}
	r := bun.Ident(role)
	stmts := []struct {
		q    string
		args []any
	}{
		{"REVOKE ALL ON audit_events, audit_chain, audit_pending, audit_tree_hashes, audit_checkpoints, audit_heads, audit_trees FROM ?", []any{r}},
		{"GRANT SELECT, INSERT ON audit_events, audit_chain, audit_tree_hashes, audit_checkpoints TO ?", []any{r}},
		{"GRANT SELECT, INSERT, UPDATE ON audit_heads, audit_trees TO ?", []any{r}},
		{"GRANT SELECT, INSERT, DELETE ON audit_pending TO ?", []any{r}},
	}
	for _, s := range stmts {
		if _, err := db.NewRaw(s.q, s.args...).Exec(ctx); err != nil {
			return fmt.Errorf("audit: restrict role: %w", err)
		}
	}
	return nil
}

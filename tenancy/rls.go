package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// ErrInvalidRole means a Postgres role name is not a plain identifier
// (letters, digits and underscores, not starting with a digit, at most 63
// bytes).
var ErrInvalidRole = errors.New("tenancy: invalid role name")

// PolicyName is the name of the row-level security policy [EnableRLS] creates.
const PolicyName = "tenant_isolation"

// SettingName is the Postgres setting that carries the tenant id of a
// transaction; the RLS policy reads it with current_setting.
const SettingName = "app.tenant_id"

// SystemSettingName is the Postgres setting that marks a transaction run
// with [System] access and no tenant: the policy of [EnableRLS] lets such a
// transaction see every tenant's rows, as the application hooks do. It is
// set only from the context, never from request data.
const SystemSettingName = "app.system"

var roleRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

func checkRole(role string) error {
	if !roleRE.MatchString(role) {
		return fmt.Errorf("%w: %q", ErrInvalidRole, role)
	}
	return nil
}

func isPG(db bun.IDB) bool { return db.Dialect().Name() == dialect.PG }

// TxRunner runs tenant-scoped transactions. On Postgres each transaction first
// sets [SettingName] to the context's tenant id (empty without one), which the
// policies of [EnableRLS] read, and, when Role is set, switches to that role
// for the transaction (as SET LOCAL ROLE), so that row-level security applies
// even when the pool connects as the tables' owner or a superuser. Both are
// done in one statement. On SQLite it is a plain transaction.
//
// The zero Role means the connection's own role is used; [CheckRLS] says
// whether that role is subject to row-level security.
type TxRunner struct {
	DB *bun.DB
	// Role is the Postgres role the transaction runs as; see [EnsureAppRole].
	// Empty means no role switch.
	Role string
}

// RunInTx begins a transaction, sets it up for the context's tenant as the
// type doc describes, runs fn, and commits when fn returns nil. It rolls back
// when fn returns an error or panics (the panic goes on).
func (r *TxRunner) RunInTx(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx bun.Tx) error) (err error) {
	if r.Role != "" {
		if err := checkRole(r.Role); err != nil {
			return err
		}
	}
	tx, err := r.DB.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if isPG(r.DB) {
		if err := r.setup(ctx, tx); err != nil {
			return err
		}
	}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	done = true
	return tx.Commit()
}

// Read runs fn for reading. On SQLite it runs fn on the database directly, with
// no transaction: reads in WAL mode run concurrently, and SQLite transactions
// here are write (IMMEDIATE) transactions. On Postgres fn runs in a read-only
// transaction set up as for [TxRunner.RunInTx].
//
// On Postgres the transaction is begun and set up in one round trip (BEGIN
// and the settings sent together over the simple protocol), so that a read
// costs three round trips (begin and set up, fn's query, commit) instead of
// four.
func (r *TxRunner) Read(ctx context.Context, fn func(ctx context.Context, db bun.IDB) error) error {
	if !isPG(r.DB) {
		return fn(ctx, r.DB)
	}
	if r.Role != "" {
		if err := checkRole(r.Role); err != nil {
			return err
		}
	}
	conn, err := r.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN READ ONLY; "+r.setupSQL(ctx)); err != nil {
		// A failed BEGIN may still have opened the transaction.
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck
		return fmt.Errorf("tenancy: set up tenant transaction: %w", err)
	}
	committed := false
	defer func() { // on error or panic
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck
		}
	}()
	if err := fn(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}

// setupSQL is the statement that sets the tenant, the system flag and the
// role for the current transaction, with the values inlined: the tenant id
// is a UUID, the flag a constant and the role a checked identifier, so no
// value needs quoting beyond the literal quotes.
func (r *TxRunner) setupSQL(ctx context.Context) string {
	tid, system := "", "off"
	if id, ok := IDFromContext(ctx); ok {
		tid = id.String()
	} else if IsSystem(ctx) {
		system = "on"
	}
	q := "SELECT set_config('" + SettingName + "', '" + tid + "', true), set_config('" + SystemSettingName + "', '" + system + "', true)"
	if r.Role != "" {
		q += ", set_config('role', '" + r.Role + "', true)"
	}
	return q
}

func (r *TxRunner) setup(ctx context.Context, tx bun.Tx) error {
	tid, system := "", "off"
	if id, ok := IDFromContext(ctx); ok {
		tid = id.String()
	} else if IsSystem(ctx) {
		system = "on"
	}
	var err error
	if r.Role != "" {
		_, err = tx.ExecContext(ctx, "SELECT set_config(?, ?, true), set_config(?, ?, true), set_config('role', ?, true)", SettingName, tid, SystemSettingName, system, r.Role)
	} else {
		_, err = tx.ExecContext(ctx, "SELECT set_config(?, ?, true), set_config(?, ?, true)", SettingName, tid, SystemSettingName, system)
	}
	if err != nil {
		return fmt.Errorf("tenancy: set up tenant transaction: %w", err)
	}
	return nil
}

// EnableRLS turns on row-level security for a tenant table on Postgres: ENABLE
// and FORCE ROW LEVEL SECURITY (so that the owner is subject to it too) and the
// policy [PolicyName], USING and WITH CHECK
// `tenant_id = NULLIF(current_setting('app.tenant_id', true), ”)::uuid OR
// current_setting('app.system', true) = 'on'`. A transaction without a tenant
// therefore sees no rows and can write none, unless [TxRunner] began it with
// [System] access and no tenant. It
// is idempotent, and a no-op on SQLite. Migrations that create tenant tables
// call it; table may be schema-qualified.
func EnableRLS(ctx context.Context, db bun.IDB, table string) error {
	if !isPG(db) {
		return nil
	}
	ident := bun.Ident(table)
	cond := bun.SafeQuery("tenant_id = NULLIF(current_setting(?, true), '')::uuid OR current_setting(?, true) = 'on'", SettingName, SystemSettingName)
	stmts := []struct {
		q    string
		args []any
	}{
		{"ALTER TABLE ? ENABLE ROW LEVEL SECURITY", []any{ident}},
		{"ALTER TABLE ? FORCE ROW LEVEL SECURITY", []any{ident}},
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("tenancy: enable RLS on %s: %w", table, err)
		}
	}
	var exists bool
	if err := db.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = ?::regclass AND polname = ?)", table, PolicyName).Scan(ctx, &exists); err != nil {
		return fmt.Errorf("tenancy: enable RLS on %s: %w", table, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	if _, err := db.ExecContext(ctx, verb+" POLICY ? ON ? USING (?) WITH CHECK (?)", bun.Ident(PolicyName), ident, cond, cond); err != nil {
		if verb == "CREATE" && sqlState(err) == "42710" { // duplicate_object: created concurrently
			return nil
		}
		return fmt.Errorf("tenancy: enable RLS on %s: %w", table, err)
	}
	return nil
}

// EnsureAppRole prepares the Postgres role that tenant transactions run as
// (see [TxRunner]): it creates it NOLOGIN NOBYPASSRLS when missing, grants it
// to current_user when that is not a superuser (so that the switch to it is
// allowed), and grants it USAGE on current_schema(), SELECT, INSERT, UPDATE and
// DELETE on all its tables, USAGE and SELECT on its sequences, and the same on
// tables and sequences that current_user creates there later. It never grants
// TRUNCATE, DDL or ownership. Callers run it after their migrations; it is
// idempotent and serialised across concurrent callers by an advisory lock. It
// is a no-op on SQLite.
func EnsureAppRole(ctx context.Context, db bun.IDB, role string) error {
	if !isPG(db) {
		return nil
	}
	if err := checkRole(role); err != nil {
		return err
	}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('saaskit.tenancy.ensure_app_role'))"); err != nil {
			return err
		}
		var st struct {
			Exists bool   `bun:"role_exists"`
			Super  bool   `bun:"is_super"`
			Schema string `bun:"schema"`
			Member bool   `bun:"is_member"`
		}
		err := tx.NewRaw(`SELECT
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?) AS role_exists,
			(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_super,
			current_schema() AS schema`, role).Scan(ctx, &st)
		if err != nil {
			return err
		}
		ident := bun.Ident(role)
		if !st.Exists {
			// The DO block tolerates a role created by someone else meanwhile.
			if _, err := tx.ExecContext(ctx, `DO $do$ BEGIN CREATE ROLE "`+role+`" NOLOGIN NOBYPASSRLS; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $do$`); err != nil {
				return err
			}
		}
		if !st.Super {
			if err := tx.NewRaw("SELECT pg_has_role(current_user, ?, 'MEMBER')", role).Scan(ctx, &st.Member); err != nil {
				return err
			}
			if !st.Member {
				if _, err := tx.ExecContext(ctx, "GRANT ? TO CURRENT_USER", ident); err != nil {
					return err
				}
			}
		}
		schema := bun.Ident(st.Schema)
		for _, q := range []string{
			"GRANT USAGE ON SCHEMA ? TO ?",
			"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ? TO ?",
			"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ? TO ?",
			"ALTER DEFAULT PRIVILEGES IN SCHEMA ? GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ?",
			"ALTER DEFAULT PRIVILEGES IN SCHEMA ? GRANT USAGE, SELECT ON SEQUENCES TO ?",
		} {
			if _, err := tx.ExecContext(ctx, q, schema, ident); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenancy: ensure role %s: %w", role, err)
	}
	return nil
}

// RLSMode says whether tenant transactions are subject to Postgres row-level
// security. See [CheckRLS].
type RLSMode int

// RLS modes.
const (
	// RLSUnsupported: the database has no row-level security (SQLite); isolation
	// rests on the [Scoped] hooks and the [Guard].
	RLSUnsupported RLSMode = iota
	// RLSEnforced: the connection's own role is neither superuser nor
	// BYPASSRLS, so the (forced) policies apply to every query.
	RLSEnforced
	// RLSEnforcedViaRole: the connection's role bypasses RLS, but tenant
	// transactions switch to a role that does not.
	RLSEnforcedViaRole
	// RLSBypassed: queries run as a role that bypasses row-level security.
	RLSBypassed
)

// String returns the mode's name.
func (m RLSMode) String() string {
	switch m {
	case RLSUnsupported:
		return "unsupported"
	case RLSEnforced:
		return "enforced"
	case RLSEnforcedViaRole:
		return "enforced-via-role"
	case RLSBypassed:
		return "bypassed"
	}
	return fmt.Sprintf("RLSMode(%d)", int(m))
}

// CheckRLS reports which [RLSMode] holds for tenant transactions run by a
// [TxRunner] with the given role (empty for none) on db. A server calls it at
// start and warns loudly on [RLSBypassed].
func CheckRLS(ctx context.Context, db *bun.DB, role string) (RLSMode, error) {
	if !isPG(db) {
		return RLSUnsupported, nil
	}
	var cur struct {
		Super  bool `bun:"rolsuper"`
		Bypass bool `bun:"rolbypassrls"`
	}
	if err := db.NewRaw("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Scan(ctx, &cur); err != nil {
		return RLSBypassed, fmt.Errorf("tenancy: check RLS: %w", err)
	}
	if !cur.Super && !cur.Bypass {
		return RLSEnforced, nil
	}
	if role == "" {
		return RLSBypassed, nil
	}
	var r struct {
		Super  bool `bun:"rolsuper"`
		Bypass bool `bun:"rolbypassrls"`
		Member bool `bun:"member"`
	}
	err := db.NewRaw("SELECT rolsuper, rolbypassrls, pg_has_role(current_user, oid, 'MEMBER') AS member FROM pg_roles WHERE rolname = ?", role).Scan(ctx, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return RLSBypassed, nil
	}
	if err != nil {
		return RLSBypassed, fmt.Errorf("tenancy: check RLS: %w", err)
	}
	if r.Super || r.Bypass || !r.Member {
		return RLSBypassed, nil
	}
	return RLSEnforcedViaRole, nil
}

// sqlState returns the SQLSTATE of a Postgres error, or "" (without
// importing a driver: pgx and lib/pq errors both have SQLState).
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

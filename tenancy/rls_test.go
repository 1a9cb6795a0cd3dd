package tenancy_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

// appRole is the unprivileged role of the tests; roles are cluster-wide and
// EnsureAppRole is idempotent, so parallel tests share it.
const appRole = "saaskit_app"

type rlsItem struct {
	bun.BaseModel `bun:"table:rls_items"`
	tenancy.Scoped
	ID   int64  `bun:"id,pk,autoincrement"`
	Name string `bun:"name,notnull"`
}

// migrateItems is a migration as a package owning a tenant table writes it.
func migrateItems(ctx context.Context, db bun.IDB) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewCreateTable().Model((*rlsItem)(nil)).IfNotExists().Exec(ctx); err != nil {
			return err
		}
		return tenancy.EnableRLS(ctx, tx, "rls_items")
	})
}

func TestRLS(t *testing.T) {
	db := dbtest.Postgres(t)
	t.Parallel()
	ctx := t.Context()
	if err := migrateItems(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.EnableRLS(ctx, db, "rls_items"); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := tenancy.EnsureAppRole(ctx, db, appRole); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.EnsureAppRole(ctx, db, appRole); err != nil { // idempotent
		t.Fatal(err)
	}
	a := &tenancy.Tenant{ID: uuid.Must(uuid.NewV7()), Slug: "a"}
	b := &tenancy.Tenant{ID: uuid.Must(uuid.NewV7()), Slug: "b"}
	rows := []rlsItem{
		{Scoped: tenancy.Scoped{TenantID: a.ID}, Name: "a1"},
		{Scoped: tenancy.Scoped{TenantID: a.ID}, Name: "a2"},
		{Scoped: tenancy.Scoped{TenantID: b.ID}, Name: "b1"},
	}
	// As the superuser of the tests, which bypasses RLS.
	if _, err := db.NewInsert().Model(&rows).Exec(tenancy.System(ctx)); err != nil {
		t.Fatal(err)
	}

	r := &tenancy.TxRunner{DB: db.DB, Role: appRole}
	names := func(ctx context.Context, q bun.IDB) []string {
		t.Helper()
		var out []string
		if err := q.NewRaw("SELECT name FROM rls_items ORDER BY name").Scan(ctx, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}

	err := r.RunInTx(tenancy.WithTenant(ctx, a), nil, func(ctx context.Context, tx bun.Tx) error {
		if got := names(ctx, tx); len(got) != 2 || got[0] != "a1" || got[1] != "a2" {
			t.Errorf("tenant A sees %v", got)
		}
		var role string
		if err := tx.NewRaw("SELECT current_user").Scan(ctx, &role); err != nil {
			return err
		}
		if role != appRole {
			t.Errorf("current_user = %q, want %q", role, appRole)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = r.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if got := names(ctx, tx); len(got) != 0 {
			t.Errorf("no tenant sees %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = r.Read(tenancy.WithTenant(ctx, b), func(ctx context.Context, q bun.IDB) error {
		if got := names(ctx, q); len(got) != 1 || got[0] != "b1" {
			t.Errorf("tenant B (read) sees %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// System access without a tenant sees every tenant's rows, in both forms.
	sys := tenancy.System(ctx)
	err = r.Read(sys, func(ctx context.Context, q bun.IDB) error {
		if got := names(ctx, q); len(got) != 3 {
			t.Errorf("system (read) sees %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.RunInTx(sys, nil, func(ctx context.Context, tx bun.Tx) error {
		if got := names(ctx, tx); len(got) != 3 {
			t.Errorf("system (tx) sees %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A read is read-only, and an error in it ends its transaction: the
	// pooled connection comes back clean, as its own role, with no tenant.
	err = r.Read(tenancy.WithTenant(ctx, a), func(ctx context.Context, q bun.IDB) error {
		_, err := q.ExecContext(ctx, "INSERT INTO rls_items (tenant_id, name) VALUES (?, 'ro')", a.ID)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write inside Read: err = %v, want a read-only transaction error", err)
	}
	probe := db.DB
	conns := make([]bun.Conn, 0, 8)
	for range 8 { // look at several pooled connections
		c, err := probe.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var user, tid string
		var inTx bool
		if err := c.QueryRowContext(ctx, "SELECT current_user, coalesce(current_setting('app.tenant_id', true), ''), current_setting('transaction_read_only') = 'on'").Scan(&user, &tid, &inTx); err != nil {
			t.Fatal(err)
		}
		if user == appRole || tid != "" || inTx {
			t.Errorf("pooled connection left dirty: user %s, tenant %q, in transaction %v", user, tid, inTx)
		}
	}
	for _, c := range conns {
		c.Close()
	}

	// Writing a row of B inside A's transaction breaks the policy.
	err = r.RunInTx(tenancy.WithTenant(ctx, a), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO rls_items (tenant_id, name) VALUES (?, 'evil')", b.ID)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("insert of B's row inside A's transaction: err = %v, want a row-level security violation", err)
	}
	// Updating B's rows from A's transaction touches none.
	err = r.RunInTx(tenancy.WithTenant(ctx, a), nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE rls_items SET name = 'x' WHERE tenant_id = ?", b.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("update of B's rows inside A's transaction affected %d", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A panic rolls back.
	func() {
		defer func() { _ = recover() }()
		_ = r.RunInTx(tenancy.WithTenant(ctx, a), nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO rls_items (tenant_id, name) VALUES (?, 'a3')", a.ID); err != nil {
				t.Error(err)
			}
			panic("boom")
		})
	}()
	var n int
	if err := db.NewRaw("SELECT count(*) FROM rls_items WHERE name = 'a3'").Scan(ctx, &n); err != nil || n != 0 {
		t.Errorf("row of a panicked transaction: count %d, %v", n, err)
	}

	// The role also sees the global tenants table through EnsureAppRole's grants.
	if err := tenancy.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	if err := tenancy.EnsureAppRole(ctx, db, appRole); err != nil {
		t.Fatal(err)
	}
	err = r.Read(ctx, func(ctx context.Context, q bun.IDB) error {
		_, err := tenancy.NewStore().GetBySlug(ctx, q, "nobody")
		if !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Errorf("GetBySlug as the app role: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	mode, err := tenancy.CheckRLS(ctx, db.DB, appRole)
	if err != nil || mode != tenancy.RLSEnforcedViaRole {
		t.Errorf("CheckRLS(superuser, role) = %v, %v", mode, err)
	}
	mode, err = tenancy.CheckRLS(ctx, db.DB, "")
	if err != nil || mode != tenancy.RLSBypassed {
		t.Errorf("CheckRLS(superuser, no role) = %v, %v", mode, err)
	}
}

func TestTxRunnerSQLite(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := t.Context()
	if err := migrateItems(ctx, db); err != nil {
		t.Fatal(err)
	}
	if mode, err := tenancy.CheckRLS(ctx, db.DB, appRole); err != nil || mode != tenancy.RLSUnsupported {
		t.Errorf("CheckRLS on SQLite = %v, %v", mode, err)
	}
	if err := tenancy.EnsureAppRole(ctx, db, appRole); err != nil {
		t.Fatal(err)
	}
	a := &tenancy.Tenant{ID: uuid.Must(uuid.NewV7()), Slug: "a"}
	r := &tenancy.TxRunner{DB: db.DB, Role: appRole}
	ctxA := tenancy.WithTenant(ctx, a)
	boom := errors.New("boom")
	err := r.RunInTx(ctxA, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&rlsItem{Name: "rolled back"}).Exec(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("RunInTx = %v", err)
	}
	if err := r.RunInTx(ctxA, &sql.TxOptions{}, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(&rlsItem{Name: "kept"}).Exec(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err = r.Read(ctxA, func(ctx context.Context, q bun.IDB) error {
		var items []rlsItem
		if err := q.NewSelect().Model(&items).Scan(ctx); err != nil {
			return err
		}
		if len(items) != 1 || items[0].Name != "kept" {
			t.Errorf("items = %+v", items)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := (&tenancy.TxRunner{DB: db.DB, Role: `x"; DROP`}).RunInTx(ctx, nil, nil); !errors.Is(err, tenancy.ErrInvalidRole) {
		t.Errorf("bad role: %v", err)
	}
}

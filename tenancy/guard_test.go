package tenancy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

func TestGuard(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a, b := setup(t, db)
		insertMembers(t, db, a, "a1@x")
		insertMembers(t, db, b, "b1@x")
		g := tenancy.NewGuard("members")
		db.AddQueryHook(g)
		ctx := t.Context()
		ctxA := tenancy.WithTenant(ctx, a)

		stopped := func(name string, err error, want error) {
			t.Helper()
			if !errors.Is(err, want) || !errors.Is(err, context.Canceled) {
				t.Errorf("%s: err = %v, want %v and context.Canceled", name, err, want)
			}
		}

		var ms []member
		stopped("NewRaw", db.NewRaw("SELECT * FROM members").Scan(ctx, &ms), tenancy.ErrNoTenant)
		_, err := db.QueryContext(ctx, `SELECT email FROM "members"`)
		stopped("QueryContext", err, tenancy.ErrNoTenant)
		_, err = db.ExecContext(ctx, "DELETE FROM members")
		stopped("ExecContext", err, tenancy.ErrNoTenant)
		var n int
		stopped("schema-qualified", db.NewRaw("SELECT count(*) FROM main.members").Scan(ctx, &n), tenancy.ErrNoTenant)
		_, err = db.NewSelect().Model((*member)(nil)).Count(ctx)
		stopped("model Count without tenant", err, tenancy.ErrNoTenant)

		// Inside a transaction too; the transaction stays usable.
		err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			stopped("in tx", tx.NewRaw("SELECT * FROM members").Scan(ctx, &ms), tenancy.ErrNoTenant)
			return tx.NewRaw("SELECT count(*) FROM tenants").Scan(ctx, &n)
		})
		if err != nil {
			t.Fatalf("transaction after a stopped query: %v", err)
		}
		if n != 2 {
			t.Errorf("tenants count = %d, want 2", n)
		}

		// Model Count with a tenant but without Scope would count every tenant.
		_, err = db.NewSelect().Model((*member)(nil)).Count(ctxA)
		stopped("unscoped Count", err, tenancy.ErrUnscoped)
		n2, err := db.NewSelect().Model((*member)(nil)).Apply(tenancy.Scope(ctxA)).Count(ctxA)
		if err != nil || n2 != 1 {
			t.Errorf("scoped Count = %d, %v", n2, err)
		}

		// With a tenant or system access raw SQL passes.
		ms = nil
		if err := db.NewRaw("SELECT * FROM members WHERE tenant_id = ?", a.ID).Scan(ctxA, &ms); err != nil || len(ms) != 1 {
			t.Errorf("raw with tenant: %d rows, %v", len(ms), err)
		}
		rows, err := db.QueryContext(tenancy.System(ctx), "SELECT email FROM members")
		if err != nil {
			t.Fatalf("raw with system: %v", err)
		}
		rows.Close()
		// Tables that are not guarded pass; a name that merely contains a
		// guarded one does not trip it.
		if err := db.NewRaw("SELECT count(*) FROM tenants WHERE name <> 'members'").Scan(ctx, &n); err != nil {
			t.Errorf("query on tenants: %v", err)
		}
		// Model scans with a tenant pass.
		ms = nil
		if err := db.NewSelect().Model(&ms).Scan(ctxA); err != nil || len(ms) != 1 {
			t.Errorf("model scan with guard: %d rows, %v", len(ms), err)
		}
		if _, err := db.NewInsert().Model(&member{Email: "a2@x"}).Exec(ctxA); err != nil {
			t.Errorf("insert with guard: %v", err)
		}
	})
}

func TestGuardTables(t *testing.T) {
	g := tenancy.NewGuard("Members", `"public"."invites"`)
	g.Add("audit_events")
	g.Add("members")
	if got := strings.Join(g.Tables(), ","); got != "audit_events,invites,members" {
		t.Errorf("Tables() = %s", got)
	}
}

package tenancy_test

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

type member struct {
	bun.BaseModel `bun:"table:members,alias:m"`
	tenancy.Scoped
	ID    int64  `bun:"id,pk,autoincrement"`
	Email string `bun:"email,notnull"`
}

// setup creates the tenants and members tables and two tenants, a and b.
func setup(t *testing.T, db *dbtest.DB) (a, b *tenancy.Tenant) {
	t.Helper()
	ctx := t.Context()
	if err := tenancy.Migrate(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*member)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	s := tenancy.NewStore()
	a = &tenancy.Tenant{Slug: "tenant-a", Name: "A"}
	b = &tenancy.Tenant{Slug: "tenant-b", Name: "B"}
	for _, tn := range []*tenancy.Tenant{a, b} {
		if err := s.Create(ctx, db, tn); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func insertMembers(t *testing.T, db bun.IDB, tn *tenancy.Tenant, emails ...string) []member {
	t.Helper()
	ms := make([]member, len(emails))
	for i, e := range emails {
		ms[i].Email = e
	}
	if _, err := db.NewInsert().Model(&ms).Exec(tenancy.WithTenant(t.Context(), tn)); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.TenantID != tn.ID {
			t.Fatalf("inserted member tenant = %s, want %s", m.TenantID, tn.ID)
		}
	}
	return ms
}

func emails(ms []member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Email)
	}
	sort.Strings(out)
	return out
}

func TestScopedSelect(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a, b := setup(t, db)
		insertMembers(t, db, a, "a1@x", "a2@x")
		bm := insertMembers(t, db, b, "b1@x")
		ctxA := tenancy.WithTenant(t.Context(), a)

		var ms []member
		if err := db.NewSelect().Model(&ms).Scan(ctxA); err != nil {
			t.Fatal(err)
		}
		if got := emails(ms); len(got) != 2 || got[0] != "a1@x" || got[1] != "a2@x" {
			t.Errorf("tenant A sees %v", got)
		}

		var ptrs []*member
		if err := db.NewSelect().Model(&ptrs).Scan(ctxA); err != nil {
			t.Fatal(err)
		}
		if len(ptrs) != 2 {
			t.Errorf("[]*member: %d rows, want 2", len(ptrs))
		}

		one := member{ID: bm[0].ID}
		err := db.NewSelect().Model(&one).WherePK().Scan(ctxA)
		if err == nil {
			t.Errorf("tenant A selected B's row %+v", one)
		}

		// Tenant wins over System.
		ms = nil
		if err := db.NewSelect().Model(&ms).Scan(tenancy.System(ctxA)); err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 {
			t.Errorf("system+tenant A sees %d rows, want 2", len(ms))
		}

		// System alone sees all.
		ms = nil
		if err := db.NewSelect().Model(&ms).Scan(tenancy.System(t.Context())); err != nil {
			t.Fatal(err)
		}
		if len(ms) != 3 {
			t.Errorf("system sees %d rows, want 3", len(ms))
		}

		// No tenant: fails closed.
		ms = nil
		err = db.NewSelect().Model(&ms).Scan(t.Context())
		if !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("select without tenant: err = %v, want ErrNoTenant", err)
		}
		if len(ms) != 0 {
			t.Errorf("select without tenant returned %d rows", len(ms))
		}

		// Scope for Count, which skips the model hooks.
		n, err := db.NewSelect().Model((*member)(nil)).Apply(tenancy.Scope(ctxA)).Count(ctxA)
		if err != nil || n != 2 {
			t.Errorf("scoped count = %d, %v; want 2", n, err)
		}
		_, err = db.NewSelect().Model((*member)(nil)).Apply(tenancy.Scope(t.Context())).Count(t.Context())
		if !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("scoped count without tenant: err = %v, want ErrNoTenant", err)
		}
	})
}

func TestScopedUpdateDelete(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a, b := setup(t, db)
		insertMembers(t, db, a, "a1@x")
		bm := insertMembers(t, db, b, "b1@x", "b2@x")
		ctxA := tenancy.WithTenant(t.Context(), a)
		ctxB := tenancy.WithTenant(t.Context(), b)

		// Update B's row by primary key under A: touches nothing.
		victim := member{ID: bm[0].ID, Email: "hacked@x"}
		res, err := db.NewUpdate().Model(&victim).Column("email").WherePK().Exec(ctxA)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("update of B's row under A affected %d rows", n)
		}
		// Whole-model update carrying B's tenant id under A is refused.
		victim = bm[0]
		victim.Email = "hacked@x"
		if _, err := db.NewUpdate().Model(&victim).WherePK().Exec(ctxA); !errors.Is(err, tenancy.ErrTenantMismatch) {
			t.Errorf("update with B's tenant id under A: err = %v, want ErrTenantMismatch", err)
		}
		// Bare update by condition under A.
		res, err = db.NewUpdate().Model((*member)(nil)).Set("email = ?", "all@x").Where("1 = 1").Exec(ctxA)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("bulk update under A affected %d rows, want 1", n)
		}

		// Delete B's row by primary key under A: touches nothing.
		res, err = db.NewDelete().Model(&member{ID: bm[1].ID}).WherePK().Exec(ctxA)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 0 {
			t.Errorf("delete of B's row under A affected %d rows", n)
		}

		var got []member
		if err := db.NewSelect().Model(&got).Order("id").Scan(ctxB); err != nil {
			t.Fatal(err)
		}
		if e := emails(got); len(e) != 2 || e[0] != "b1@x" || e[1] != "b2@x" {
			t.Errorf("B's rows after A's attempts: %v", e)
		}

		// Under B the same update and delete work.
		upd := member{ID: bm[0].ID, Email: "b1-new@x"}
		res, err = db.NewUpdate().Model(&upd).WherePK().Exec(ctxB)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 || upd.TenantID != b.ID {
			t.Errorf("update under B: %d rows, tenant %s", n, upd.TenantID)
		}
		res, err = db.NewDelete().Model(&member{ID: bm[1].ID}).WherePK().Exec(ctxB)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("delete under B affected %d rows, want 1", n)
		}

		// No tenant: fails closed.
		if _, err := db.NewUpdate().Model(&upd).WherePK().Exec(t.Context()); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("update without tenant: err = %v", err)
		}
		if _, err := db.NewDelete().Model(&upd).WherePK().Exec(t.Context()); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("delete without tenant: err = %v", err)
		}
	})
}

func TestScopedInsert(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a, b := setup(t, db)
		ctx := t.Context()
		ctxA := tenancy.WithTenant(ctx, a)

		// Bulk insert of pointers stamps every row.
		ps := []*member{{Email: "p1@x"}, {Email: "p2@x"}}
		if _, err := db.NewInsert().Model(&ps).Exec(ctxA); err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.TenantID != a.ID {
				t.Errorf("pointer slice row tenant = %s", p.TenantID)
			}
		}

		// A row of B under A is refused, and so is a slice holding one.
		if _, err := db.NewInsert().Model(&member{Scoped: tenancy.Scoped{TenantID: b.ID}, Email: "x@x"}).Exec(ctxA); !errors.Is(err, tenancy.ErrTenantMismatch) {
			t.Errorf("insert of B's row under A: err = %v", err)
		}
		mixed := []member{{Email: "ok@x"}, {Scoped: tenancy.Scoped{TenantID: b.ID}, Email: "bad@x"}}
		if _, err := db.NewInsert().Model(&mixed).Exec(ctxA); !errors.Is(err, tenancy.ErrTenantMismatch) {
			t.Errorf("insert of mixed slice under A: err = %v", err)
		}

		// No tenant.
		if _, err := db.NewInsert().Model(&member{Email: "y@x"}).Exec(ctx); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("insert without tenant: err = %v", err)
		}
		// System must name the tenant itself.
		if _, err := db.NewInsert().Model(&member{Email: "y@x"}).Exec(tenancy.System(ctx)); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Errorf("system insert without TenantID: err = %v", err)
		}
		if _, err := db.NewInsert().Model(&member{Scoped: tenancy.Scoped{TenantID: b.ID}, Email: "sys@x"}).Exec(tenancy.System(ctx)); err != nil {
			t.Errorf("system insert with TenantID: %v", err)
		}

		var all []member
		if err := db.NewSelect().Model(&all).Scan(tenancy.System(ctx)); err != nil {
			t.Fatal(err)
		}
		if e := emails(all); len(e) != 3 || e[0] != "p1@x" || e[1] != "p2@x" || e[2] != "sys@x" {
			t.Errorf("rows after inserts: %v", e)
		}

		// The stored tenant id is the canonical text form on both databases, so
		// raw SQL can compare it with a string.
		var n int
		if err := db.NewRaw("SELECT count(*) FROM members WHERE CAST(tenant_id AS TEXT) = ?", a.ID.String()).Scan(tenancy.System(ctx), &n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("raw text comparison found %d rows, want 2", n)
		}
	})
}

func TestTenantRoundTrip(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a, _ := setup(t, db)
		var raw string
		if err := db.NewRaw("SELECT CAST(id AS TEXT) FROM tenants WHERE slug = ?", "tenant-a").Scan(t.Context(), &raw); err != nil {
			t.Fatal(err)
		}
		if raw != a.ID.String() {
			t.Errorf("stored id %q, want %q", raw, a.ID.String())
		}
		if _, err := uuid.Parse(raw); err != nil {
			t.Error(err)
		}
		_ = context.Background
	})
}

package tenancy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

type plainMember struct {
	bun.BaseModel `bun:"table:members,alias:m"`
	TenantID      uuid.UUID `bun:"tenant_id,type:uuid"`
	ID            int64     `bun:"id,pk,autoincrement"`
	Email         string    `bun:"email,notnull"`
}

// BenchmarkSelect compares a select by primary key on a Scoped model (hook,
// and the guard installed) with the same select on a model without Scoped.
func BenchmarkSelect(b *testing.B) {
	db := dbtest.SQLite(b)
	ctx := context.Background()
	if err := tenancy.Migrate(ctx, db.DB); err != nil {
		b.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*member)(nil)).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	a := &tenancy.Tenant{Slug: "bench", Name: "Bench"}
	if err := tenancy.NewStore().Create(ctx, db, a); err != nil {
		b.Fatal(err)
	}
	ctxA := tenancy.WithTenant(ctx, a)
	m := &member{Email: "x@x"}
	if _, err := db.NewInsert().Model(m).Exec(ctxA); err != nil {
		b.Fatal(err)
	}
	b.Run("unscoped", func(b *testing.B) {
		for b.Loop() {
			var p plainMember
			if err := db.NewSelect().Model(&p).Where("id = ?", m.ID).Scan(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scoped", func(b *testing.B) {
		for b.Loop() {
			var s member
			if err := db.NewSelect().Model(&s).Where("id = ?", m.ID).Scan(ctxA); err != nil {
				b.Fatal(err)
			}
		}
	})
	db.AddQueryHook(tenancy.NewGuard("members"))
	b.Run("scoped+guard", func(b *testing.B) {
		for b.Loop() {
			var s member
			if err := db.NewSelect().Model(&s).Where("id = ?", m.ID).Scan(ctxA); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGuardRaw measures the guard on raw SQL without a tenant (the scan
// runs) on a typical query, without touching a database.
func BenchmarkGuardRaw(b *testing.B) {
	g := tenancy.NewGuard("members", "invitations", "projects")
	ev := &bun.QueryEvent{Query: `SELECT "u"."id", "u"."email", "u"."full_name" FROM "users" AS "u" WHERE ("u"."email" = 'someone@example.com') LIMIT 1`}
	ctx := context.Background()
	for b.Loop() {
		g.BeforeQuery(ctx, ev)
	}
}

// BenchmarkMiddleware measures the middleware with a warm CachedLookup.
func BenchmarkMiddleware(b *testing.B) {
	db := dbtest.SQLite(b)
	ctx := context.Background()
	if err := tenancy.Migrate(ctx, db.DB); err != nil {
		b.Fatal(err)
	}
	if err := tenancy.NewStore().Create(ctx, db, &tenancy.Tenant{Slug: "acme", Name: "Acme"}); err != nil {
		b.Fatal(err)
	}
	mw := tenancy.Middleware(tenancy.HeaderResolver(""), &tenancy.CachedLookup{DB: db})
	next := mw(httpOK{})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant", "acme")
	w := httptest.NewRecorder()
	for b.Loop() {
		next.ServeHTTP(w, r)
	}
}

type httpOK struct{}

func (httpOK) ServeHTTP(w http.ResponseWriter, r *http.Request) {}

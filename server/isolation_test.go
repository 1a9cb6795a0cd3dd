package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

// TestIsolationMatrix: two tenants, every role of tenant A, every
// tenant-scoped endpoint and method, aimed at tenant B's ids. Every attempt
// is answered 404 and B's data is the same afterwards.
func TestIsolationMatrix(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		aOwner := s.register("owner@a.example.com", "Tenant A")
		aSessions := map[string]session{
			"owner": aOwner,
			"admin": s.addMember(aOwner, "admin@a.example.com", "admin"),
			"user":  s.addMember(aOwner, "user@a.example.com", "user"),
		}
		bOwner := s.register("owner@b.example.com", "Tenant B")
		bUser := s.addMember(bOwner, "user@b.example.com", "user")

		snapshot := func() string {
			users := s.must(http.StatusOK, "GET", "/api/users/?limit=100", bOwner.Access, nil).Body
			tenant := s.must(http.StatusOK, "GET", "/api/tenants/"+bOwner.TenantID+"/", bOwner.Access, nil).Body
			return string(users) + string(tenant)
		}
		before := snapshot()

		type attempt struct {
			method, path string
			body         any
		}
		attempts := []attempt{
			{"GET", "/api/users/" + bUser.UserID + "/", nil},
			{"GET", "/api/users/" + bOwner.UserID + "/", nil},
			{"PATCH", "/api/users/" + bUser.UserID + "/", map[string]any{"role": "admin"}},
			{"PATCH", "/api/users/" + bUser.UserID + "/", map[string]any{"is_active": false}},
			{"PUT", "/api/users/" + bUser.UserID + "/", map[string]any{"full_name": "x", "role": "admin", "is_active": true}},
			{"DELETE", "/api/users/" + bUser.UserID + "/", nil},
			{"DELETE", "/api/users/" + bOwner.UserID + "/", nil},
			{"GET", "/api/tenants/" + bOwner.TenantID + "/", nil},
			{"PATCH", "/api/tenants/" + bOwner.TenantID + "/", map[string]any{"name": "Taken"}},
			{"PUT", "/api/tenants/" + bOwner.TenantID + "/", map[string]any{"name": "Taken", "slug": "taken"}},
			{"DELETE", "/api/tenants/" + bOwner.TenantID + "/", nil},
		}
		for role, sess := range aSessions {
			for _, a := range attempts {
				r := s.do(a.method, a.path, sess.Access, a.body)
				if r.Status != http.StatusNotFound {
					t.Errorf("%s of A: %s %s = %d, want 404: %s", role, a.method, a.path, r.Status, r.Body)
				}
			}
			// Lists show A's data only.
			var page struct{ Items []map[string]any }
			s.must(http.StatusOK, "GET", "/api/users/?limit=100", sess.Access, nil).decode(t, &page)
			for _, it := range page.Items {
				if it["id"] == bUser.UserID || it["id"] == bOwner.UserID {
					t.Errorf("%s of A lists B's member %v", role, it)
				}
			}
			s.must(http.StatusOK, "GET", "/api/tenants/", sess.Access, nil).decode(t, &page)
			if len(page.Items) != 1 || page.Items[0]["id"] != aOwner.TenantID {
				t.Errorf("%s of A lists tenants %v", role, page.Items)
			}
			// Logging in to B with A's credentials fails.
			problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": role + "@a.example.com", "password": testPassword, "tenant": bOwner.TenantID}), http.StatusUnauthorized)
		}
		if after := snapshot(); after != before {
			t.Errorf("tenant B changed:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// TestRLSThroughServerConnection: on Postgres the server's tenant
// transactions run as the unprivileged role, so a raw query without a WHERE
// sees one tenant's members, and none without a tenant.
func TestRLSThroughServerConnection(t *testing.T) {
	db := dbtest.Postgres(t)
	s := newTestServer(t, db)
	a := s.register("owner@rls-a.example.com", "RLS A")
	s.addMember(a, "member@rls-a.example.com", "user")
	b := s.register("owner@rls-b.example.com", "RLS B")
	if s.srv.tx.Role != "saaskit_app" {
		t.Fatalf("tenant transactions run without the app role (role %q)", s.srv.tx.Role)
	}
	ta, err := s.srv.tenants.Get(tenancy.System(t.Context()), db, uuid.MustParse(a.TenantID))
	if err != nil {
		t.Fatal(err)
	}
	count := func(ctx context.Context) (n int, user string) {
		t.Helper()
		err := s.srv.tx.Read(ctx, func(ctx context.Context, db bun.IDB) error {
			if err := db.QueryRowContext(ctx, "SELECT current_user").Scan(&user); err != nil {
				return err
			}
			// No WHERE: only row-level security limits the rows.
			return db.QueryRowContext(ctx, "SELECT count(*) FROM members").Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, user
	}
	if n, user := count(tenancy.WithTenant(t.Context(), ta)); n != 2 || user != "saaskit_app" {
		t.Errorf("tenant A's transaction sees %d members as %s, want 2 as saaskit_app", n, user)
	}
	// With no tenant the guard refuses raw SQL on members; bypass it with
	// the database's own connection and only the RLS settings of an empty
	// tenant.
	var n int
	err = s.srv.db.RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(tenancy.System(ctx), "SELECT set_config('app.tenant_id', '', true), set_config('role', 'saaskit_app', true)"); err != nil {
			return err
		}
		return tx.QueryRowContext(tenancy.System(ctx), "SELECT count(*) FROM members").Scan(&n)
	})
	if err != nil || n != 0 {
		t.Errorf("no tenant: %d members visible (err %v), want 0", n, err)
	}
	_ = b
}

package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

func TestRegisterLoginRefreshLogout(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		r := s.must(http.StatusCreated, "POST", "/api/auth/register/", "", map[string]any{
			"email": "Ada@Example.com", "password": testPassword, "full_name": "Ada", "tenant_name": "Analytical Engines",
		})
		var reg struct {
			User    map[string]any `json:"user"`
			Tenant  map[string]any `json:"tenant"`
			Access  string         `json:"access"`
			Refresh string         `json:"refresh"`
		}
		r.decode(t, &reg)
		if reg.User["email"] != "ada@example.com" || reg.User["role"] != "owner" || reg.User["is_active"] != true {
			t.Errorf("user = %v", reg.User)
		}
		for _, k := range []string{"id", "email", "full_name", "role", "is_active", "created_at", "updated_at"} {
			if _, ok := reg.User[k]; !ok {
				t.Errorf("user lacks %q", k)
			}
		}
		if reg.Tenant["slug"] != "analytical-engines" || reg.Tenant["status"] != "active" || reg.Tenant["plan"] != "free" {
			t.Errorf("tenant = %v", reg.Tenant)
		}
		if reg.Access == "" || reg.Refresh == "" {
			t.Fatal("no tokens")
		}

		// A second tenant of the same name gets a slug with a suffix, in
		// the same registration transaction (on Postgres, past the failed
		// insert of the taken slug).
		r = s.must(http.StatusCreated, "POST", "/api/auth/register/", "", map[string]any{
			"email": "charles@example.com", "password": testPassword, "full_name": "Charles", "tenant_name": "Analytical Engines",
		})
		var second struct {
			Tenant map[string]any `json:"tenant"`
		}
		r.decode(t, &second)
		if slug, _ := second.Tenant["slug"].(string); !strings.HasPrefix(slug, "analytical-engines-") {
			t.Errorf("second tenant of the name: slug %q", slug)
		}

		// Login, with and without the tenant; the same shape from token/.
		for _, path := range []string{"/api/auth/login/", "/api/auth/token/", "/api/auth/login"} {
			r = s.must(http.StatusOK, "POST", path, "", map[string]any{"email": "ada@example.com", "password": testPassword})
			m := r.JSON()
			if m["token_type"] != "Bearer" || m["expires_in"].(float64) != 900 || m["access"] == "" || m["refresh"] == "" {
				t.Errorf("%s: %v", path, m)
			}
		}
		s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "ada@example.com", "password": testPassword, "tenant": "analytical-engines"})
		s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "ada@example.com", "password": testPassword, "tenant": reg.Tenant["id"]})

		// Wrong password and unknown email answer alike.
		bad := problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "ada@example.com", "password": "wrong-password-1"}), http.StatusUnauthorized)
		unknown := problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "nobody@example.com", "password": "wrong-password-1"}), http.StatusUnauthorized)
		if bad["detail"] != unknown["detail"] {
			t.Errorf("answers differ: %v vs %v", bad, unknown)
		}
		problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "ada@example.com", "password": testPassword, "tenant": "no-such-tenant"}), http.StatusUnauthorized)

		// Profile.
		r = s.must(http.StatusOK, "GET", "/api/auth/profile/", reg.Access, nil)
		if p := r.JSON(); p["email"] != "ada@example.com" || p["role"] != "owner" || p["is_superadmin"] != false {
			t.Errorf("profile = %v", p)
		}

		// Refresh rotates: a new refresh token each time, and the old one
		// within the grace still works.
		r = s.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": reg.Refresh})
		next := r.JSON()["refresh"].(string)
		if next == reg.Refresh {
			t.Fatal("refresh token not rotated")
		}
		s.must(http.StatusOK, "GET", "/api/auth/profile/", r.JSON()["access"].(string), nil)

		// Logout revokes the family: the newest token no longer refreshes.
		s.must(http.StatusNoContent, "POST", "/api/auth/logout/", "", map[string]any{"refresh": next})
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": next}), http.StatusUnauthorized)
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": "skr_garbage"}), http.StatusUnauthorized)
	})
}

func TestRefreshReuseAfterGraceRevokesFamily(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db, func(c *Config) { c.RefreshReuseGrace = -1 })
		sess := s.register("reuse@example.com", "Reuse")
		r := s.must(http.StatusOK, "POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": sess.Refresh})
		next := r.JSON()["refresh"].(string)
		// The rotated token is presented again: theft is assumed.
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": sess.Refresh}), http.StatusUnauthorized)
		// The whole family is revoked, the legitimate newest token too.
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": next}), http.StatusUnauthorized)
	})
}

func TestPasswordChangeRevokesSessions(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		sess := s.register("pw@example.com", "Pw")
		other := s.login("pw@example.com", "")

		p := problemOf(t, s.do("PATCH", "/api/auth/profile/", sess.Access, map[string]any{"password": "a-new-password-2"}), http.StatusUnprocessableEntity)
		if !strings.Contains(string(mustJSON(p)), "current_password") {
			t.Errorf("problem does not name current_password: %v", p)
		}
		problemOf(t, s.do("PATCH", "/api/auth/profile/", sess.Access, map[string]any{"password": "a-new-password-2", "current_password": "not-the-password"}), http.StatusUnprocessableEntity)
		s.must(http.StatusOK, "PATCH", "/api/auth/profile/", sess.Access, map[string]any{"password": "a-new-password-2", "current_password": testPassword, "full_name": "Renamed"})

		for _, tok := range []string{sess.Refresh, other.Refresh} {
			problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": tok}), http.StatusUnauthorized)
		}
		problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "pw@example.com", "password": testPassword}), http.StatusUnauthorized)
		s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "pw@example.com", "password": "a-new-password-2"})
		r := s.must(http.StatusOK, "GET", "/api/auth/profile/", sess.Access, nil)
		if r.JSON()["full_name"] != "Renamed" {
			t.Errorf("full_name not changed: %s", r.Body)
		}
	})
}

func TestSuperuser(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db, func(c *Config) { c.AdminEmail = "root@example.com"; c.AdminPassword = "" })
		email, pw, err := s.srv.EnsureSuperuser(t.Context())
		if err != nil || email != "root@example.com" || len(pw) < 16 {
			t.Fatalf("EnsureSuperuser = %q, %q, %v", email, pw, err)
		}
		if _, again, err := s.srv.EnsureSuperuser(t.Context()); err != nil || again != "" {
			t.Fatalf("second EnsureSuperuser created another: %q %v", again, err)
		}
		s.register("a@example.com", "Tenant A")
		s.register("b@example.com", "Tenant B")
		r := s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": email, "password": pw})
		root := r.JSON()["access"].(string)
		var page struct{ Items []map[string]any }
		s.must(http.StatusOK, "GET", "/api/tenants/", root, nil).decode(t, &page)
		if len(page.Items) != 2 {
			t.Errorf("superadmin sees %d tenants, want 2", len(page.Items))
		}
		// A superadmin without a tenant has no member list.
		problemOf(t, s.do("GET", "/api/users/", root, nil), http.StatusBadRequest)
	})
}

package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestBadInput: every bad input is a problem+json naming what is wrong, and
// changes nothing.
func TestBadInput(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@bad.example.com", "Bad Input")
		reg := func(over map[string]any) map[string]any {
			b := map[string]any{"email": "new@bad.example.com", "password": testPassword, "full_name": "N", "tenant_name": "New"}
			for k, v := range over {
				if v == nil {
					delete(b, k)
				} else {
					b[k] = v
				}
			}
			return b
		}
		cases := []struct {
			name         string
			method, path string
			token        string
			body         any
			status       int
			mention      string
		}{
			{"malformed JSON", "POST", "/api/auth/register/", "", `{"email": `, 400, ""},
			{"unknown field", "POST", "/api/auth/register/", "", reg(map[string]any{"is_superadmin": true}), 422, "is_superadmin"},
			{"tenant_id field", "POST", "/api/users/", owner.Access, map[string]any{"email": "t@bad.example.com", "full_name": "T", "role": "user", "tenant_id": owner.TenantID}, 422, "tenant_id"},
			{"wrong type", "POST", "/api/auth/register/", "", reg(map[string]any{"email": 42}), 422, "email"},
			{"missing field", "POST", "/api/auth/register/", "", reg(map[string]any{"tenant_name": nil}), 422, "tenant_name"},
			{"invalid email", "POST", "/api/auth/register/", "", reg(map[string]any{"email": "not-an-email"}), 422, "email"},
			{"short password", "POST", "/api/auth/register/", "", reg(map[string]any{"password": "short"}), 422, "password"},
			{"common password", "POST", "/api/auth/register/", "", reg(map[string]any{"password": "password123"}), 422, "password"},
			{"bad slug", "POST", "/api/auth/register/", "", reg(map[string]any{"tenant_slug": "Not A Slug!"}), 422, "tenant_slug"},
			{"duplicate email", "POST", "/api/auth/register/", "", reg(map[string]any{"email": "owner@bad.example.com"}), 409, "email"},
			{"duplicate slug", "POST", "/api/auth/register/", "", reg(map[string]any{"tenant_slug": "bad-input"}), 409, "slug"},
			{"bad role", "POST", "/api/users/", owner.Access, map[string]any{"email": "r@bad.example.com", "full_name": "R", "role": "superadmin"}, 422, "role"},
			{"set superadmin on self", "PATCH", "/api/auth/profile/", owner.Access, map[string]any{"is_superadmin": true}, 422, "is_superadmin"},
			{"set own role on profile", "PATCH", "/api/auth/profile/", owner.Access, map[string]any{"role": "admin"}, 422, "role"},
			{"bad id", "GET", "/api/users/not-a-uuid/", owner.Access, nil, 422, "id"},
			{"oversize body", "POST", "/api/auth/register/", "", `{"email":"` + strings.Repeat("a", 1<<20) + `"}`, 413, ""},
		}
		for _, c := range cases {
			r := s.do(c.method, c.path, c.token, c.body)
			p := problemOf(t, r, c.status)
			if c.mention != "" && !strings.Contains(strings.ToLower(string(mustJSON(p))), c.mention) {
				t.Errorf("%s: problem does not mention %q: %s", c.name, c.mention, r.Body)
			}
		}
		// Nothing was created by the rejected requests.
		var page struct{ Items []map[string]any }
		s.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil).decode(t, &page)
		if len(page.Items) != 1 {
			t.Errorf("members after bad input: %d, want 1", len(page.Items))
		}
		problemOf(t, s.do("POST", "/api/auth/login/", "", map[string]any{"email": "new@bad.example.com", "password": testPassword}), http.StatusUnauthorized)
	})
}

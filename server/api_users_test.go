package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

func TestMembersRoles(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Roles")
		admin := s.addMember(owner, "admin@example.com", "admin")
		user := s.addMember(owner, "user@example.com", "user")

		// A user reads the list but does not change it.
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"next_cursor"`
		}
		s.must(http.StatusOK, "GET", "/api/users/", user.Access, nil).decode(t, &page)
		if len(page.Items) != 3 || page.NextCursor != nil {
			t.Fatalf("list = %+v", page)
		}
		problemOf(t, s.do("POST", "/api/users/", user.Access, map[string]any{"email": "x@example.com", "full_name": "X", "role": "user"}), http.StatusForbidden)
		problemOf(t, s.do("PATCH", "/api/users/"+admin.UserID+"/", user.Access, map[string]any{"role": "user"}), http.StatusForbidden)
		problemOf(t, s.do("DELETE", "/api/users/"+admin.UserID+"/", user.Access, nil), http.StatusForbidden)

		// An admin manages users but not owners.
		s.must(http.StatusOK, "PATCH", "/api/users/"+user.UserID+"/", admin.Access, map[string]any{"role": "admin"})
		s.must(http.StatusOK, "PATCH", "/api/users/"+user.UserID+"/", admin.Access, map[string]any{"role": "user"})
		problemOf(t, s.do("PATCH", "/api/users/"+user.UserID+"/", admin.Access, map[string]any{"role": "owner"}), http.StatusForbidden)
		problemOf(t, s.do("POST", "/api/users/", admin.Access, map[string]any{"email": "o2@example.com", "full_name": "O", "role": "owner"}), http.StatusForbidden)
		problemOf(t, s.do("DELETE", "/api/users/"+owner.UserID+"/", admin.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("PATCH", "/api/users/"+owner.UserID+"/", admin.Access, map[string]any{"full_name": "x"}), http.StatusForbidden)

		// Nobody changes their own role.
		problemOf(t, s.do("PATCH", "/api/users/"+admin.UserID+"/", admin.Access, map[string]any{"role": "owner"}), http.StatusUnprocessableEntity)

		// The last owner stays.
		problemOf(t, s.do("DELETE", "/api/users/"+owner.UserID+"/", owner.Access, nil), http.StatusConflict)
		problemOf(t, s.do("PATCH", "/api/users/"+owner.UserID+"/", owner.Access, map[string]any{"is_active": false}), http.StatusConflict)

		// An owner grants owner; then the first may step down.
		s.must(http.StatusOK, "PATCH", "/api/users/"+admin.UserID+"/", owner.Access, map[string]any{"role": "owner"})
		admin2 := s.login("admin@example.com", owner.TenantID)
		s.must(http.StatusOK, "PATCH", "/api/users/"+owner.UserID+"/", admin2.Access, map[string]any{"role": "admin"})
		// PUT replaces the mutable fields.
		r := s.must(http.StatusOK, "PUT", "/api/users/"+user.UserID+"/", admin2.Access, map[string]any{"full_name": "Put Name", "role": "user", "is_active": true})
		if m := r.JSON(); m["full_name"] != "Put Name" || m["role"] != "user" {
			t.Errorf("PUT = %v", m)
		}

		// Deleting a member ends its sessions in the tenant.
		s.must(http.StatusNoContent, "DELETE", "/api/users/"+user.UserID+"/", admin2.Access, nil)
		problemOf(t, s.do("GET", "/api/users/"+user.UserID+"/", admin2.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": user.Refresh}), http.StatusUnauthorized)

		// An existing identity can join a second tenant.
		other := s.register("other@example.com", "Other")
		r = s.must(http.StatusCreated, "POST", "/api/users/", other.Access, map[string]any{"email": "admin@example.com", "full_name": "ignored", "role": "user"})
		if r.JSON()["full_name"] != "Member admin@example.com" {
			t.Errorf("joined identity's name changed: %s", r.Body)
		}
		problemOf(t, s.do("POST", "/api/users/", other.Access, map[string]any{"email": "admin@example.com", "full_name": "x", "role": "user"}), http.StatusConflict)
	})
}

func TestMembersListPaginationAndFilters(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@list.example.com", "List")
		for i := range 24 {
			role := "user"
			if i%4 == 0 {
				role = "admin"
			}
			s.must(http.StatusCreated, "POST", "/api/users/", owner.Access, map[string]any{
				"email": fmt.Sprintf("m%02d@list.example.com", i), "full_name": fmt.Sprintf("Name %02d", 23-i), "role": role,
			})
		}
		type page struct {
			Items []struct {
				ID       string `json:"id"`
				Email    string `json:"email"`
				FullName string `json:"full_name"`
				Role     string `json:"role"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		walk := func(query string) []string {
			t.Helper()
			var emails []string
			seen := map[string]bool{}
			cur := ""
			for range 20 {
				q := query + "&limit=7"
				if cur != "" {
					q += "&cursor=" + url.QueryEscape(cur)
				}
				var p page
				s.must(http.StatusOK, "GET", "/api/users/?"+q, owner.Access, nil).decode(t, &p)
				if len(p.Items) > 7 {
					t.Fatalf("page of %d", len(p.Items))
				}
				for _, it := range p.Items {
					if seen[it.ID] {
						t.Fatalf("%s listed twice", it.Email)
					}
					seen[it.ID] = true
					emails = append(emails, it.Email)
				}
				if p.NextCursor == nil {
					return emails
				}
				cur = *p.NextCursor
			}
			t.Fatal("pagination does not end")
			return nil
		}
		all := walk("")
		if len(all) != 25 {
			t.Fatalf("walked %d members, want 25", len(all))
		}
		byEmail := walk("ordering=-email")
		for i := 1; i < len(byEmail); i++ {
			if byEmail[i-1] < byEmail[i] {
				t.Fatalf("not descending by email: %v", byEmail)
			}
		}
		if len(walk("ordering=full_name")) != 25 || len(walk("ordering=-created_at")) != 25 {
			t.Fatal("ordered walks lose members")
		}
		if n := len(walk("role=admin")); n != 6 {
			t.Errorf("role=admin: %d members, want 6", n)
		}
		if n := len(walk("role=owner")); n != 1 {
			t.Errorf("role=owner: %d", n)
		}
		if got := walk("email=M1"); len(got) != 10 {
			t.Errorf("email contains m1: %v", got)
		}
		if got := walk("search=name%2005"); len(got) != 1 {
			t.Errorf("search: %v", got)
		}
		if got := walk("email=" + url.QueryEscape("%")); len(got) != 0 {
			t.Errorf("LIKE metacharacter not escaped: %v", got)
		}
		if got := walk("created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z"); len(got) != 25 {
			t.Errorf("created range: %d", len(got))
		}
		if got := walk("created_after=2999-01-01T00:00:00Z"); len(got) != 0 {
			t.Errorf("created_after future: %d", len(got))
		}

		// Bad parameters name themselves.
		for q, loc := range map[string]string{
			"limit=0":              "query.limit",
			"limit=101":            "query.limit",
			"limit=x":              "query.limit",
			"cursor=%21%21":        "query.cursor",
			"ordering=password":    "query.ordering",
			"role=superadmin":      "query.role",
			"tenant_id=x":          "tenant_id",
			"created_after=monday": "query.created_after",
		} {
			p := problemOf(t, s.do("GET", "/api/users/?"+q, owner.Access, nil), http.StatusUnprocessableEntity)
			if !strings.Contains(string(mustJSON(p["errors"])), loc) {
				t.Errorf("%s: errors do not name %s: %v", q, loc, p)
			}
		}
		// A cursor of one ordering is refused by another.
		var p page
		s.must(http.StatusOK, "GET", "/api/users/?limit=2&ordering=email", owner.Access, nil).decode(t, &p)
		problemOf(t, s.do("GET", "/api/users/?cursor="+url.QueryEscape(*p.NextCursor), owner.Access, nil), http.StatusUnprocessableEntity)
	})
}

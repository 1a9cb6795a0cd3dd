package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestBadTokensRefused: every kind of bad token is refused with 401 and a
// Bearer challenge, on a protected endpoint.
func TestBadTokensRefused(t *testing.T) {
	db := dbtest.SQLite(t)
	s := newTestServer(t, db)
	owner := s.register("owner@tokens.example.com", "Tokens")
	kit := authntest.New(t)
	kit.Keys, kit.Issuer = s.srv.keys, s.srv.issuer
	claims := authn.Claims{Subject: uuid.MustParse(owner.UserID), TenantID: uuid.MustParse(owner.TenantID), Role: authn.RoleOwner}
	// The valid token passes, so that the refusals below are the tokens'.
	s.must(http.StatusOK, "GET", "/api/users/", kit.Token(claims), nil)

	stranger, err := authn.GenerateKey("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	tampered := kit.Token(claims)
	parts := strings.Split(tampered, ".")
	parts[1] = parts[1][:len(parts[1])-2] + "xx"
	tampered = strings.Join(parts, ".")

	cases := map[string]string{
		"none":             "",
		"garbage":          "not-a-token",
		"alg none":         kit.AlgNone(claims),
		"HS256 public key": kit.HMACWithPublicKey(claims),
		"wrong iss":        kit.Mint(authntest.Spec{Claims: claims, Issuer: "https://evil.example.com"}),
		"wrong aud":        kit.Mint(authntest.Spec{Claims: claims, Audience: "another-api"}),
		"expired":          kit.Mint(authntest.Spec{Claims: claims, IssuedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-30 * time.Minute)}),
		"not yet valid":    kit.Mint(authntest.Spec{Claims: claims, NotBefore: time.Now().Add(10 * time.Minute)}),
		"missing exp":      kit.Mint(authntest.Spec{Claims: claims, NoExpiry: true}),
		"wrong typ":        kit.Mint(authntest.Spec{Claims: claims, Type: "JWT"}),
		"no typ":           kit.Mint(authntest.Spec{Claims: claims, NoType: true}),
		"unknown kid":      kit.Mint(authntest.Spec{Claims: claims, Key: stranger}),
		"no kid":           kit.Mint(authntest.Spec{Claims: claims, NoKeyID: true}),
		"tampered":         tampered,
	}
	for name, tok := range cases {
		r := s.do("GET", "/api/users/", tok, nil)
		problemOf(t, r, http.StatusUnauthorized)
		if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q", name, ch)
		} else if tok != "" && !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("%s: challenge lacks invalid_token: %q", name, ch)
		}
	}
	// A malformed Authorization header is refused too.
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer a b"} {
		req, _ := http.NewRequest("GET", s.ts.URL+"/api/users/", nil)
		req.Header.Set("Authorization", h)
		resp, err := s.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d %q", h, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// TestSuspendedTenant: a suspended tenant's API answers 403 with a clear
// problem, and a superadmin can suspend and reactivate it.
func TestSuspendedTenant(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db, func(c *Config) { c.AdminEmail = "root@example.com"; c.AdminPassword = "root-password-long" })
		if _, _, err := s.srv.EnsureSuperuser(t.Context()); err != nil {
			t.Fatal(err)
		}
		root := s.must(200, "POST", "/api/auth/login/", "", map[string]any{"email": "root@example.com", "password": "root-password-long"}).JSON()["access"].(string)
		owner := s.register("owner@suspend.example.com", "Suspend")
		// An owner may not change status or plan.
		problemOf(t, s.do("PATCH", "/api/tenants/"+owner.TenantID+"/", owner.Access, map[string]any{"status": "suspended"}), http.StatusForbidden)
		s.must(200, "PATCH", "/api/tenants/"+owner.TenantID+"/", root, map[string]any{"status": "suspended", "plan": "pro"})
		p := problemOf(t, s.do("GET", "/api/users/", owner.Access, nil), http.StatusForbidden)
		if !strings.Contains(p["detail"].(string), "suspended") {
			t.Errorf("problem = %v", p)
		}
		s.must(200, "PATCH", "/api/tenants/"+owner.TenantID+"/", root, map[string]any{"status": "active"})
		s.must(200, "GET", "/api/users/", owner.Access, nil)
	})
}

package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"JWKS: 2 EdDSA keys, Cache-Control: public, max-age=300",
		"admin token  GET /api/admin/report -> 200 admin report for tenant " + tenantID.String(),
		"user token   GET /api/me           -> 200 you are " + bobID.String() + ", user of tenant",
		"user token   GET /api/admin/report -> 403 problem: insufficient role",
		`no token     GET /api/admin/report -> 401 WWW-Authenticate: Bearer realm="saaskit"` + "\n",
		`forged token GET /api/admin/report -> 401 WWW-Authenticate: Bearer realm="saaskit", error="invalid_token"`,
		"key retired, signed the admin token: true",
		"old token    GET /api/admin/report -> 200",
		"new token has a new kid: true, the one published as next before the rotation: true",
		"new token    GET /api/admin/report -> 200",
		"JWKS: 3 EdDSA keys",
		"JWKS lists the old kid: true, the new kid: true",
		"pruned after the longest token lifetime: 1 key",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q\n%s", want, out.String())
		}
	}
}

// TestAPI tests the same handler the way a service tests its own routes:
// authntest mints valid tokens and deliberately broken ones.
func TestAPI(t *testing.T) {
	kit := authntest.New(t)
	h := newAPI(kit.Keys, kit.Verifier)
	tenant := uuid.New()
	admin, _ := kit.Member(tenant, authn.RoleAdmin)
	owner, _ := kit.Member(tenant, authn.RoleOwner)
	user, _ := kit.Member(tenant, authn.RoleUser)
	c := authn.Claims{Subject: uuid.New(), TenantID: tenant, Role: authn.RoleAdmin}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"admin", admin, http.StatusOK},
		{"owner", owner, http.StatusOK},
		{"user", user, http.StatusForbidden},
		{"expired", kit.Expired(c), http.StatusUnauthorized},
		{"alg none", kit.AlgNone(c), http.StatusUnauthorized},
		{"id token", kit.WrongType(c, "JWT"), http.StatusUnauthorized},
		{"unknown key", kit.UnknownKey(c), http.StatusUnauthorized},
		{"hmac with public key", kit.HMACWithPublicKey(c), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/api/admin/report", nil)
			authntest.SetBearer(req, tc.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

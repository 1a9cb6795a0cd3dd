package authn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func TestParseBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, token string
		err           error
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"bearer abc", "abc", nil},
		{"BEARER a-b_c~d+e/f==", "a-b_c~d+e/f==", nil},
		{"", "", authn.ErrTokenMissing},
		{"Bearer", "", authn.ErrTokenMalformed},
		{"Bearer ", "", authn.ErrTokenMalformed},
		{"Bearer  abc", "", authn.ErrTokenMalformed},
		{"Bearer abc ", "", authn.ErrTokenMalformed},
		{"Bearer abc def", "", authn.ErrTokenMalformed},
		{"Bearer abc,def", "", authn.ErrTokenMalformed},
		{"Bearer ==", "", authn.ErrTokenMalformed},
		{"Bearer a=b", "", authn.ErrTokenMalformed},
		{"Bearer abc\t", "", authn.ErrTokenMalformed},
		{"Bearer\tabc", "", authn.ErrTokenMalformed},
		{"Basic dXNlcjpwYXNz", "", authn.ErrTokenMalformed},
		{"Bearerabc", "", authn.ErrTokenMalformed},
		{"Token abc", "", authn.ErrTokenMalformed},
		{"Bearer é", "", authn.ErrTokenMalformed},
	}
	for _, tt := range tests {
		tok, err := authn.ParseBearer(tt.header)
		if tok != tt.token || !errors.Is(err, tt.err) || (tt.err != nil) != (err != nil) {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tt.header, tok, err, tt.token, tt.err)
		}
	}
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := authn.PrincipalFromContext(r.Context())
	if !ok {
		w.Write([]byte("anonymous"))
		return
	}
	w.Write([]byte(p.UserID.String()))
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	h := authn.Middleware(kit.Verifier)(http.HandlerFunc(whoami))
	c := memberClaims()

	tests := []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"valid", "Bearer " + kit.Token(c), 200, ""},
		{"missing", "", 401, `Bearer realm="saaskit"`},
		{"wrong scheme", "Basic dXNlcjpwYXNz", 401, `Bearer realm="saaskit", error="invalid_token", error_description="the access token is malformed"`},
		{"expired", "Bearer " + kit.Expired(c), 401, `Bearer realm="saaskit", error="invalid_token", error_description="the access token expired"`},
		{"alg none", "Bearer " + kit.AlgNone(c), 401, `Bearer realm="saaskit", error="invalid_token", error_description="the access token signature is invalid"`},
		{"wrong typ", "Bearer " + kit.WrongType(c, "JWT"), 401, `Bearer realm="saaskit", error="invalid_token", error_description="the access token is not valid here"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", "/", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if tt.status == 200 {
				if rec.Body.String() != c.Subject.String() {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc["status"] != 401.0 {
				t.Fatalf("problem %s (%v)", rec.Body, err)
			}
		})
	}
}

func TestMiddlewareRevokedHookFailure(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	boom := errors.New("database down")
	kit.Verifier.Revoked = func(context.Context, *authn.Principal) error { return boom }
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	authntest.SetBearer(req, kit.Token(memberClaims()))
	authn.Middleware(kit.Verifier)(http.HandlerFunc(whoami)).ServeHTTP(rec, req)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "database") {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestMiddlewareOptional(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	h := authn.MiddlewareOptional(kit.Verifier)(http.HandlerFunc(whoami))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || rec.Body.String() != "anonymous" {
		t.Fatalf("no header: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("GET", "/", nil)
	authntest.SetBearer(req, kit.Expired(memberClaims()))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("bad token: %d", rec.Code)
	}
}

func TestRequire(t *testing.T) {
	t.Parallel()
	kit := authntest.New(t)
	tenant := uuid.New()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	tests := []struct {
		name   string
		claims *authn.Claims
		guard  func(http.Handler) http.Handler
		status int
	}{
		{"no principal", nil, authn.Require(authn.RoleUser), 401},
		{"user needs user", &authn.Claims{TenantID: tenant, Role: authn.RoleUser}, authn.Require(authn.RoleUser), 204},
		{"user needs admin", &authn.Claims{TenantID: tenant, Role: authn.RoleUser}, authn.Require(authn.RoleAdmin), 403},
		{"admin needs admin", &authn.Claims{TenantID: tenant, Role: authn.RoleAdmin}, authn.Require(authn.RoleAdmin), 204},
		{"admin needs owner", &authn.Claims{TenantID: tenant, Role: authn.RoleAdmin}, authn.Require(authn.RoleOwner), 403},
		{"owner needs admin", &authn.Claims{TenantID: tenant, Role: authn.RoleOwner}, authn.Require(authn.RoleAdmin), 204},
		{"superadmin is no tenant role", &authn.Claims{Superadmin: true}, authn.Require(authn.RoleUser), 403},
		{"superadmin user needs owner", &authn.Claims{TenantID: tenant, Role: authn.RoleUser, Superadmin: true}, authn.Require(authn.RoleOwner), 403},
		{"superadmin", &authn.Claims{Superadmin: true}, authn.RequireSuperadmin(), 204},
		{"owner is no superadmin", &authn.Claims{TenantID: tenant, Role: authn.RoleOwner}, authn.RequireSuperadmin(), 403},
		{"superadmin needs principal", nil, authn.RequireSuperadmin(), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := authn.MiddlewareOptional(kit.Verifier)(tt.guard(ok))
			req := httptest.NewRequest("GET", "/", nil)
			if tt.claims != nil {
				c := *tt.claims
				c.Subject = uuid.New()
				authntest.SetBearer(req, kit.Token(c))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 204 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") != `Bearer realm="saaskit"` {
				t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

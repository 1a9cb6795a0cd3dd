package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/internal/sqldb"
)

// TestServeAsUnprivilegedLogin runs the server connected as a login role
// that owns nothing, with its migrations run through
// SAASKIT_MIGRATE_DATABASE_URL (the tables' owner): the server starts,
// registers a tenant, and its login cannot read another tenant's rows by
// raw SQL.
func TestServeAsUnprivilegedLogin(t *testing.T) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	app, login := "app_"+suffix, "login_"+suffix
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE %s NOLOGIN NOBYPASSRLS`, app),
		fmt.Sprintf(`CREATE ROLE %s LOGIN NOBYPASSRLS IN ROLE %s`, login, app),
		fmt.Sprintf(`GRANT USAGE ON SCHEMA %s TO %s`, db.Schema, app),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{`DROP OWNED BY %s`, `DROP ROLE %s`} {
			db.ExecContext(ctx, fmt.Sprintf(q, login))
			db.ExecContext(ctx, fmt.Sprintf(q, app))
		}
	})
	withPath := func(raw, user string) string {
		u, err := neturl.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			u.User = neturl.User(user)
		}
		q := u.Query()
		q.Set("search_path", db.Schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	cfg := Config{DatabaseURL: withPath(db.URL, login), MigrateDatabaseURL: withPath(db.URL, ""), DBAppRole: app,
		RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0", AuditSigningKey: testAuditKey(), Workers: "off", HashConcurrency: 2}
	cfg.Defaults()
	srv, err := New(ctx, cfg, Options{NoAccessLog: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("serving as %s: %v", login, err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	ts := &testServer{t: t, srv: srv, ts: hs}
	a := ts.register("a@example.com", "Tenant A")
	ts.register("b@example.com", "Tenant B")
	ts.must(http.StatusOK, "GET", "/api/users/", a.Access, nil)

	var who string
	if err := srv.DB().QueryRowContext(ctx, "SELECT current_user").Scan(&who); err != nil || who != login {
		t.Fatalf("server connected as %q (%v), want %s", who, err, login)
	}
	// Raw SQL as the login, outside the server's guard and any tenant
	// transaction, sees no tenant's members (row-level security).
	raw, err := sqldb.Open(ctx, cfg.DatabaseURL, sqldb.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM members").Scan(&n); err != nil || n != 0 {
		t.Fatalf("raw count of members as the login: %d (%v), want 0", n, err)
	}
	if err := raw.QueryRowContext(ctx, "SELECT count(*) FROM signing_keys").Scan(&n); err != nil || n == 0 {
		t.Fatalf("signing keys as the login: %d (%v), want the server's", n, err)
	}
}

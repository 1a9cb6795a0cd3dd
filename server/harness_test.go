package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

// testServer is a server on a test database behind a real HTTP listener.
var testAuditKey = sync.OnceValue(func() string {
	skey, _, err := audit.GenerateNoteKey("saaskit-test")
	if err != nil {
		panic(err)
	}
	return skey
})

type testServer struct {
	t   *testing.T
	srv *Server
	ts  *httptest.Server
	db  *dbtest.DB
}

func newTestServer(t *testing.T, db *dbtest.DB, mutate ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerOpts(t, db, Options{}, mutate...)
}

// newTestServerOpts is newTestServer with server options (the database and
// logger are the test's). Rate limits are off unless mutate sets them, so
// that tests making many requests are not refused.
func newTestServerOpts(t *testing.T, db *dbtest.DB, opts Options, mutate ...func(*Config)) *testServer {
	t.Helper()
	cfg := Config{DatabaseURL: db.URL, HashConcurrency: 4, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0",
		AuditSigningKey: testAuditKey()}
	cfg.Defaults()
	for _, m := range mutate {
		m(&cfg)
	}
	opts.DB, opts.NoAccessLog = db.DB, true
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testServer{t: t, srv: srv, ts: ts, db: db}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) JSON() map[string]any {
	var m map[string]any
	json.Unmarshal(r.Body, &m)
	return m
}

func (r *response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// do sends body (a string is sent as it is, anything else as JSON).
func (s *testServer) do(method, path, token string, body any) *response {
	s.t.Helper()
	return s.doH(method, path, token, body, nil)
}

// doH is do with extra request headers.
func (s *testServer) doH(method, path, token string, body any, hdr http.Header) *response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.ts.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := s.ts.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// must sends a request and fails the test unless the status is want.
func (s *testServer) must(want int, method, path, token string, body any) *response {
	s.t.Helper()
	r := s.do(method, path, token, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

type session struct {
	UserID   string
	TenantID string
	Access   string
	Refresh  string
}

const testPassword = "correct-horse-battery"

// register registers email with a new tenant and returns the owner's session.
func (s *testServer) register(email, tenant string) session {
	s.t.Helper()
	r := s.must(http.StatusCreated, "POST", "/api/auth/register/", "", map[string]any{
		"email": email, "password": testPassword, "full_name": "Owner " + tenant, "tenant_name": tenant,
	})
	var out struct {
		User    struct{ ID string }
		Tenant  struct{ ID string }
		Access  string
		Refresh string
	}
	r.decode(s.t, &out)
	return session{UserID: out.User.ID, TenantID: out.Tenant.ID, Access: out.Access, Refresh: out.Refresh}
}

// addMember creates a member with a password and logs it in to the tenant.
func (s *testServer) addMember(admin session, email, role string) session {
	s.t.Helper()
	r := s.must(http.StatusCreated, "POST", "/api/users/", admin.Access, map[string]any{
		"email": email, "full_name": "Member " + email, "role": role, "password": testPassword,
	})
	id := r.JSON()["id"].(string)
	sess := s.login(email, admin.TenantID)
	sess.UserID = id
	return sess
}

func (s *testServer) login(email, tenant string) session {
	s.t.Helper()
	body := map[string]any{"email": email, "password": testPassword}
	if tenant != "" {
		body["tenant"] = tenant
	}
	r := s.must(http.StatusOK, "POST", "/api/auth/login/", "", body)
	var out struct{ Access, Refresh string }
	r.decode(s.t, &out)
	return session{TenantID: tenant, Access: out.Access, Refresh: out.Refresh}
}

// problemOf checks that r is problem+json with the status and returns it.
func problemOf(t *testing.T, r *response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json: %s", ct, r.Body)
	}
	return r.JSON()
}

func jsonBody(s string) io.Reader { return strings.NewReader(s) }

func decodeInto(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}

// jwtSegment decodes segment i of a compact JWT.
func jwtSegment(tok string, i int) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
}

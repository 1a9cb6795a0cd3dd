package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/uptrace/bun/dialect"
	"riverqueue.com/riverui"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/internal/problem"
	"github.com/saaskit/saaskit/internal/sqldb"
)

// River UI for superadmins.
//
// River's own web UI (riverqueue.com/riverui) shows the job queue: webhook
// events waiting, running, retried and discarded, the periodic integration
// jobs, and lets an operator retry, cancel or delete a job and pause a
// queue. The server mounts it at /admin/riverui/ for superadmins only. It
// reads River's tables through a pgx pool of its own (riverpgxv5), so it is
// served on Postgres only; on SQLite the prefix answers 404 problem+json
// pointing to the events API, which lists the same events with their status,
// attempts and last error and replays them.
//
// A browser cannot attach the API's Bearer header to the pages and scripts
// of the UI, so an admin session carries the access token instead:
// POST /api/admin/session/ with a superadmin's Bearer access token answers
// a cookie holding that token, HttpOnly, SameSite=Strict, Secure when the
// request came over TLS (directly or through a trusted proxy), scoped to
// /admin/ and expiring with the token. The UI handler verifies the token
// of the cookie (or of a Bearer header) on every request with the server's
// verifier, so the session lasts no longer than the token and cannot be
// widened; the cookie is never read by the API under /api/. A front end
// that holds the token opens the session with fetch(...,
// {method: "POST", headers: {Authorization: "Bearer " + access}}) and then
// navigates to /admin/riverui/; DELETE /api/admin/session/ drops the cookie.
// Unsafe methods of the UI (retry, cancel, pause) are also checked by
// net/http's cross-origin protection.

const (
	// riverUIPrefix is where the River UI is mounted (without its slash).
	riverUIPrefix = "/admin/riverui"
	// adminSessionPath is the admin session operation.
	adminSessionPath = "/api/admin/session/"
	// adminCookieName is the admin session cookie; it holds an access token.
	adminCookieName = "saaskit_admin"
	// adminCookiePath scopes the cookie to the admin pages: the API never
	// reads it.
	adminCookiePath = "/admin/"
)

// errRiverUIClosed is returned for a request that arrives after
// [Server.closeRiverUI].
var errRiverUIClosed = errors.New("server: river ui closed")

// riverUIMessage is the answer of the River UI prefix on SQLite.
const riverUIMessage = "the River UI needs Postgres (it reads River's tables with a pgx driver), and this server runs on SQLite; " +
	"webhook events and their processing are in the events API: GET /api/integrations/events/ (filter status=failed for the dead letter), " +
	"GET /api/integrations/events/{id}/, and POST /api/integrations/events/{id}/replay/ to process one again"

// riverUI is the River UI of one mount: built on the first authorized
// request, so that a server whose UI is never opened holds no pool and runs
// none of the UI's background queries.
type riverUI struct {
	s        *Server
	postgres bool
	reason   string // why the UI is unavailable when !postgres
	csrf     *http.CrossOriginProtection

	// base is the context of the UI's background queries: the mount's
	// values, cancelled by close only.
	base context.Context

	mu     sync.Mutex
	h      *riverui.Handler
	pool   *pgxpool.Pool
	cancel context.CancelFunc
	closed bool
}

// riverUIs holds the River UIs mounted for each server, for
// [Server.closeRiverUI]; an entry lives from the mount to the server's
// Close.
var riverUIs = struct {
	sync.Mutex
	m map[*Server][]*riverUI
}{m: map[*Server][]*riverUI{}}

// mountRiverUI registers the admin session operation on the server's API
// (once) and mounts the River UI at /admin/riverui/ on mux, behind
// superadmin authentication. On SQLite the prefix answers 404 problem+json
// that names the events API instead. Nothing connects to the database until
// the UI is first opened. [Server.closeRiverUI] releases what the UI holds.
func (s *Server) mountRiverUI(ctx context.Context, mux *http.ServeMux) error {
	u := &riverUI{s: s, csrf: http.NewCrossOriginProtection(), base: context.WithoutCancel(ctx)}
	switch {
	case s.db.Dialect().Name() != dialect.PG:
		u.reason = riverUIMessage
	case !sqldb.IsPostgres(s.cfg.DatabaseURL):
		u.reason = "the River UI needs SAASKIT_DATABASE_URL to be a postgres:// URL to open its own pgx pool; " +
			"use the events API instead: GET /api/integrations/events/ and POST /api/integrations/events/{id}/replay/"
	default:
		if _, err := pgxpool.ParseConfig(s.cfg.DatabaseURL); err != nil {
			return fmt.Errorf("server: river ui: %w", err)
		}
		u.postgres = true
	}
	if s.api != nil {
		if p := s.api.OpenAPI().Paths[adminSessionPath]; p == nil || p.Post == nil {
			s.registerAdminSession(s.api)
		}
	}
	riverUIs.Lock()
	riverUIs.m[s] = append(riverUIs.m[s], u)
	riverUIs.Unlock()
	mux.Handle(riverUIPrefix+"/", u)
	return nil
}

// closeRiverUI stops the River UIs mounted by [Server.mountRiverUI]: their
// background queries end and their pools close. Requests that arrive later
// answer 503. It is safe to call more than once.
func (s *Server) closeRiverUI() {
	riverUIs.Lock()
	us := riverUIs.m[s]
	delete(riverUIs.m, s)
	riverUIs.Unlock()
	for _, u := range us {
		u.close()
	}
}

func (u *riverUI) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	if u.cancel != nil {
		u.cancel()
	}
	if u.pool != nil {
		u.pool.Close()
	}
	u.h, u.pool, u.cancel = nil, nil, nil
}

// ServeHTTP authenticates a superadmin, then serves the UI (or explains
// why there is none).
func (u *riverUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := u.s
	p, err := s.adminPrincipal(r, true)
	if err != nil {
		s.writeAdminAuthError(w, r, err)
		return
	}
	r = r.WithContext(authn.WithPrincipal(r.Context(), p))
	s.rl.api(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !u.postgres {
			problem.Error(w, http.StatusNotFound, u.reason)
			return
		}
		if err := u.csrf.Check(r); err != nil {
			problem.Error(w, http.StatusForbidden, "cross-origin request refused: the River UI accepts changes from its own pages only")
			return
		}
		h, err := u.handler(r.Context())
		if errors.Is(err, errRiverUIClosed) {
			problem.Error(w, http.StatusServiceUnavailable, "the River UI is closed: the server is shutting down")
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "river ui unavailable", slog.String("request_id", RequestIDFromContext(r.Context())), slog.Any("error", err))
			w.Header().Set("Retry-After", "5")
			problem.Error(w, http.StatusServiceUnavailable, "the River UI is unavailable: its database pool could not be opened")
			return
		}
		h.ServeHTTP(w, r)
	})).ServeHTTP(w, r)
}

// handler returns the River UI handler, building and starting it on first
// use.
func (u *riverUI) handler(ctx context.Context) (*riverui.Handler, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errRiverUIClosed
	}
	if u.h != nil {
		return u.h, nil
	}
	pool, err := u.s.riverUIPool(ctx)
	if err != nil {
		return nil, err
	}
	log := quietLogger(u.s.log)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: log})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: river ui: client: %w", err)
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    log,
		Prefix:    riverUIPrefix,
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: river ui: %w", err)
	}
	// The UI's background queries live until closeRiverUI, not as long as
	// the request that happened to build it, and carry none of its values.
	hctx, cancel := context.WithCancel(u.base)
	if err := h.Start(hctx); err != nil {
		cancel()
		pool.Close()
		return nil, fmt.Errorf("server: river ui: start: %w", err)
	}
	u.h, u.pool, u.cancel = h, pool, cancel
	return h, nil
}

// riverUIPool opens the River UI's pgx pool on SAASKIT_DATABASE_URL, in the
// search path of the server's own connections, so that it finds River's
// tables in the schema where [Migrate] created them.
func (s *Server) riverUIPool(ctx context.Context) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(s.cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("server: river ui pool: %w", err)
	}
	var path string
	if err := s.db.QueryRowContext(ctx, "SHOW search_path").Scan(&path); err != nil {
		return nil, fmt.Errorf("server: river ui pool: %w", err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = path
	pc.ConnConfig.RuntimeParams["application_name"] = "saaskit-riverui"
	pc.MinConns, pc.MaxConns = 0, 4
	pc.MaxConnIdleTime = time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("server: river ui pool: %w", err)
	}
	return pool, nil
}

// adminPrincipal authenticates a superadmin from the Bearer header or, when
// cookie is true and there is no header, from the admin session cookie.
// Errors wrap [authn.ErrTokenMissing] (no credentials), another authn
// token error (a token that does not verify) or [authn.ErrForbidden] (not a
// superadmin).
func (s *Server) adminPrincipal(r *http.Request, cookie bool) (*authn.Principal, error) {
	var token string
	var err error
	if h := r.Header.Get("Authorization"); h != "" || !cookie {
		token, err = authn.ParseBearer(h)
	} else if c, cerr := r.Cookie(adminCookieName); cerr == nil && c.Value != "" {
		token = c.Value
	} else {
		err = authn.ErrTokenMissing
	}
	if err != nil {
		return nil, err
	}
	p, err := s.verifier.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if !p.Superadmin {
		return nil, fmt.Errorf("%w: superadmin required", authn.ErrForbidden)
	}
	return p, nil
}

// writeAdminAuthError answers 403 to an authenticated user who is not a
// superadmin, and 401 with a Bearer challenge (under the anon rate-limit
// scope, as the API does) to a request without valid credentials.
func (s *Server) writeAdminAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, authn.ErrForbidden) {
		problem.Error(w, http.StatusForbidden, "superadmin required: the River UI is for platform operators")
		return
	}
	challenge := `Bearer realm="saaskit"`
	msg := "authentication required: send a superadmin's access token as a Bearer header, or open an admin session with POST " + adminSessionPath
	if !errors.Is(err, authn.ErrTokenMissing) {
		challenge += `, error="invalid_token"`
		msg = "invalid token: " + publicMessage(err) + "; open a new admin session with POST " + adminSessionPath
	}
	s.rl.anon(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", challenge)
		problem.Error(w, http.StatusUnauthorized, msg)
	})).ServeHTTP(w, r)
}

// AdminSessionView is the answer that opens an admin session.
type AdminSessionView struct {
	ExpiresAt time.Time `json:"expires_at" doc:"When the session ends: the expiry of the access token it holds."`
	RiverUI   string    `json:"river_ui,omitempty" doc:"Path of the River UI (Postgres only)."`
}

type adminSessionInput struct {
	tls       bool
	forwarded string // X-Forwarded-Proto
	remote    string
	token     string // the raw bearer token
}

// Resolve keeps what the operation needs beyond its parameters: the raw
// access token for the cookie, and whether the request came over TLS for
// its Secure attribute.
func (in *adminSessionInput) Resolve(ctx huma.Context) []error {
	in.tls = ctx.TLS() != nil
	in.forwarded = ctx.Header("X-Forwarded-Proto")
	in.remote = ctx.RemoteAddr()
	if t, err := authn.ParseBearer(ctx.Header("Authorization")); err == nil {
		in.token = t
	}
	return nil
}

// secure reports whether the request came over TLS, directly or through a
// trusted proxy that says so.
func (s *Server) secure(in *adminSessionInput) bool {
	if in.tls {
		return true
	}
	if in.forwarded != "https" {
		return false
	}
	ap, err := netip.ParseAddrPort(in.remote)
	if err != nil {
		return false
	}
	for _, p := range s.proxies {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

type adminSessionOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
	Body      AdminSessionView
}

type adminSessionEndOutput struct {
	SetCookie http.Cookie `header:"Set-Cookie"`
}

// registerAdminSession registers POST and DELETE /api/admin/session/.
func (s *Server) registerAdminSession(api huma.API) {
	tags := []string{"Admin"}
	register(s, api, huma.Operation{
		OperationID: "admin-session-create", Method: http.MethodPost, Path: adminSessionPath, Tags: tags,
		Summary: "Open an admin session (superadmin): a cookie for the admin pages such as the River UI",
		Description: "Answers a cookie that holds the request's access token: HttpOnly, SameSite=Strict, Secure over TLS, " +
			"scoped to /admin/ and expiring with the token. The admin pages verify it on every request; the API never reads it.",
		Security: bearerAuth,
	}, func(ctx context.Context, in *adminSessionInput) (*adminSessionOutput, error) {
		return s.openAdminSession(ctx, in.token, s.secure(in))
	})
	register(s, api, huma.Operation{
		OperationID: "admin-session-delete", Method: http.MethodDelete, Path: adminSessionPath, Tags: tags,
		Summary: "Close the admin session: the cookie is dropped", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *adminSessionInput) (*adminSessionEndOutput, error) {
		return &adminSessionEndOutput{SetCookie: http.Cookie{Name: adminCookieName, Value: "", Path: adminCookiePath,
			MaxAge: -1, HttpOnly: true, Secure: s.secure(in), SameSite: http.SameSiteStrictMode}}, nil
	})
}

// openAdminSession checks that the caller is a superadmin and answers the
// cookie holding its token.
func (s *Server) openAdminSession(ctx context.Context, token string, secure bool) (*adminSessionOutput, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := authn.AuthorizeSuperadmin(ctx); err != nil {
		return nil, huma.Error403Forbidden("superadmin required: admin sessions are for platform operators")
	}
	if token == "" {
		return nil, authn.ErrUnauthenticated
	}
	ttl := time.Until(p.ExpiresAt)
	if ttl <= 0 {
		return nil, authn.ErrUnauthenticated
	}
	out := &adminSessionOutput{Body: AdminSessionView{ExpiresAt: p.ExpiresAt.UTC()}}
	if s.db.Dialect().Name() == dialect.PG {
		out.Body.RiverUI = riverUIPrefix + "/"
	}
	out.SetCookie = http.Cookie{Name: adminCookieName, Value: token, Path: adminCookiePath,
		Expires: p.ExpiresAt.UTC(), MaxAge: int((ttl + time.Second - 1) / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode}
	return out, nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/cors"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/mod/sumdb/note"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	resilient "github.com/saaskit/saaskit/integrations"
	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/server/apidocs"
	"github.com/saaskit/saaskit/tenancy"
)

// Version is the server's version, set at build time with
// -ldflags "-X github.com/saaskit/saaskit/server.Version=v1.2.3".
var Version = "dev"

// Server is the reference server: the SDK's packages composed into one
// http.Handler over one database.
type Server struct {
	cfg       Config
	db        *bun.DB
	ownsDB    bool
	log       *slog.Logger
	accessLog bool

	tx       *tenancy.TxRunner
	tenants  *tenancy.Store
	lookup   *tenancy.CachedLookup
	keys     *authn.KeySet
	issuer   *authn.Issuer
	verifier *authn.Verifier
	hasher   *authn.Hasher
	policy   authn.PasswordPolicy
	refresh  *authn.RefreshStore

	registry *prometheus.Registry
	metrics  *httpMetrics
	api      huma.API
	handler  http.Handler

	auditStore  *audit.Store
	recorder    audit.Recorder // nil: audit off (Options.DisableAudit)
	signer      note.Signer
	verifierKey string
	proxies     []netip.Prefix
	rl          *limiterState
	integ       *webhookState // webhooks and their jobs
	sso         *ssoService   // single sign-on per tenant
	out         *outbound     // calls to the providers, their health, reconciliation

	tracing *tracing    // OpenTelemetry; off unless the OTEL_ variables or Options.TracerProvider turn it on
	ops     *opsMetrics // job and webhook metrics

	rotateMu sync.Mutex
	now      func() time.Time
}

// Options are the parts of a server that are not configuration values.
type Options struct {
	// DB, when set, is used instead of opening Config.DatabaseURL; the caller
	// closes it.
	DB *bun.DB
	// Logger receives the server's logs; nil means a JSON or text logger on
	// stderr as configured.
	Logger *slog.Logger
	// NoAccessLog turns off the per-request log line (benchmarks).
	NoAccessLog bool
	// SkipMigrate skips migrations on start (the caller ran them).
	SkipMigrate bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AuditRecorder, when set, records the server's audit events in place
	// of the built-in [audit.Store] (for example a wrapper that counts or
	// fails them in tests). Checkpoints and the audit API still read the
	// store's tables.
	AuditRecorder audit.Recorder
	// DisableAudit records no audit events at all. It exists to measure
	// the cost of the audit log (saaskit bench -audit=false) and must not
	// be used in production: changes then leave no trace.
	DisableAudit bool
	// ProcessHook, when set, runs in each attempt to process a webhook
	// event, after the provider's handler and in the attempt's transaction;
	// an error fails the attempt and undoes its work (fault injection in
	// tests).
	ProcessHook func(ctx context.Context, ev *WebhookEvent, attempt int) error
	// Integrations configures the outbound client that checks the
	// providers' health and reconciles connections (breakers are keyed by
	// provider); the zero value is the client's defaults. An Observer set
	// here sees every attempt beside the server's health tracker.
	Integrations resilient.Config
	// TracerProvider, when set, turns tracing on with it, whatever the
	// OTEL_ variables say (an embedder's provider, or an in-memory one in
	// tests); the caller shuts it down. When nil, tracing follows the
	// standard OTEL_ variables and is off without them.
	TracerProvider trace.TracerProvider
}

// New opens the database, migrates it, loads or creates the signing keys and
// builds the HTTP handler.
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: opts.Logger, accessLog: !opts.NoAccessLog, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.auditStore = &audit.Store{Now: s.now, Origin: cfg.AuditOrigin}
	switch {
	case opts.DisableAudit:
	case opts.AuditRecorder != nil:
		s.recorder = opts.AuditRecorder
	default:
		s.recorder = s.auditStore
	}
	// Both databases keep microseconds: an answer written from memory then
	// matches the same row read back.
	clock := s.now
	s.now = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	if s.log == nil {
		s.log = NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	}
	s.log = slog.New(TraceLogHandler(s.log.Handler()))
	s.db = opts.DB
	if s.db == nil {
		db, err := sqldb.Open(ctx, cfg.DatabaseURL, sqldb.Options{Synchronous: cfg.SQLiteSynchronous, MaxOpenConns: cfg.DBMaxConns})
		if err != nil {
			return nil, err
		}
		s.db, s.ownsDB = db, true
	}
	tr, err := newTracing(ctx, os.Getenv, opts.TracerProvider)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.tracing = tr
	if !opts.SkipMigrate {
		if err := s.migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.integ.hook = opts.ProcessHook
	opts.Integrations.HTTPClient = s.tracing.wrapClient(opts.Integrations.HTTPClient)
	if err := s.setupOutbound(opts.Integrations); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) setup(ctx context.Context) error {
	cfg := s.cfg
	role := ""
	if s.db.Dialect().Name() == dialect.PG {
		mode, err := tenancy.CheckRLS(ctx, s.db, cfg.DBAppRole)
		if err != nil {
			return err
		}
		switch mode {
		case tenancy.RLSEnforced:
			s.log.Info("row-level security enforced: connected as an unprivileged role")
		case tenancy.RLSEnforcedViaRole:
			role = cfg.DBAppRole
			s.log.Info("row-level security enforced: tenant transactions SET LOCAL ROLE", slog.String("role", role))
		default:
			s.log.Warn("ROW-LEVEL SECURITY IS BYPASSED: the connection role owns the tables or has BYPASSRLS and no app role is configured; only the application's tenant scoping protects data",
				slog.String("hint", "set SAASKIT_DB_APP_ROLE or connect as an unprivileged role"))
		}
	}
	s.db.AddQueryHook(tenancy.NewGuard("members", "integration_connections", "webhook_events", "integration_links"))
	s.tx = &tenancy.TxRunner{DB: s.db, Role: role}
	s.tenants = &tenancy.Store{Now: s.now}
	s.lookup = &tenancy.CachedLookup{DB: s.db, Store: s.tenants}
	s.hasher = &authn.Hasher{Concurrency: cfg.HashConcurrency}
	s.policy = authn.PasswordPolicy{MinLength: cfg.PasswordMinLength}
	s.refresh = &authn.RefreshStore{TTL: cfg.RefreshTokenTTL, ReuseGrace: cfg.RefreshReuseGrace, Now: s.now}

	keys, err := s.loadKeys(ctx)
	if err != nil {
		return err
	}
	if err := s.loadAuditSigner(ctx); err != nil {
		return err
	}
	if s.proxies, err = parseProxies(cfg.TrustedProxies); err != nil {
		return err
	}
	s.keys = keys
	s.issuer = &authn.Issuer{Keys: keys, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.AccessTokenTTL, Now: s.now}
	s.verifier = &authn.Verifier{Keys: keys, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Now: s.now,
		Cache: authn.NewTokenCache(10000)}

	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(s.db.DB, "main"))
	s.metrics = newHTTPMetrics(s.registry)
	s.ops = newOpsMetrics(s.registry, s.db, s.log)
	if s.tracing.on() {
		s.db.AddQueryHook(s.tracing.queryHook(s.db.Dialect().Name().String()))
	}
	if err := s.setupRateLimits(s.registry); err != nil {
		return err
	}

	mux := http.NewServeMux()
	s.api = s.newAPI(mux)
	s.registerStatus(s.api)
	if err := s.setupIntegrations(ctx, mux); err != nil {
		return err
	}
	if err := s.setupSSO(mux); err != nil {
		return err
	}
	if err := s.mountRiverUI(ctx, mux); err != nil {
		return err
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.Handle("GET /.well-known/jwks.json", authn.JWKSHandler(keys, cfg.AccessTokenTTL))
	docs := apidocs.Handler(apidocs.Config{SpecURL: "/api/openapi.json", Title: "saaskit API", Prefix: "/api/docs"})
	mux.Handle("GET /api/docs", docs)
	mux.Handle("GET /api/docs/", docs)

	var h http.Handler = mux
	h = trailingSlash(h)
	if origins := splitList(cfg.CORSOrigins); len(origins) > 0 {
		h = cors.New(cors.Options{
			AllowedOrigins:   origins,
			AllowedMethods:   []string{"GET", "POST", "PUT", "PATCH", "DELETE"},
			AllowedHeaders:   []string{"Authorization", "Content-Type", "X-Request-ID"},
			ExposedHeaders:   []string{"X-Request-ID", "RateLimit", "RateLimit-Policy", "Retry-After"},
			AllowCredentials: false,
			MaxAge:           600,
		}).Handler(h)
	}
	h = securityHeaders(h)
	s.handler = s.tracing.wrapHandler(s.observe(h))
	return nil
}

// migrate runs the migrations: through Config.MigrateDatabaseURL when set
// (the tables' owner, while the server itself may connect as an
// unprivileged role), else through the server's database.
func (s *Server) migrate(ctx context.Context) error {
	if s.cfg.MigrateDatabaseURL == "" || s.cfg.MigrateDatabaseURL == s.cfg.DatabaseURL {
		return Migrate(ctx, s.db, s.cfg.DBAppRole)
	}
	owner, err := sqldb.Open(ctx, s.cfg.MigrateDatabaseURL, sqldb.Options{MaxOpenConns: 2})
	if err != nil {
		return fmt.Errorf("server: migrations database: %w", err)
	}
	defer owner.Close()
	return Migrate(ctx, owner, s.cfg.DBAppRole)
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// DB returns the server's database.
func (s *Server) DB() *bun.DB { return s.db }

// API returns the huma API, so that an embedder can register more operations.
func (s *Server) API() huma.API { return s.api }

// Close stops the rate limiter, closes its Redis client and closes the
// database if the server opened it.
func (s *Server) Close() error {
	var errs []error
	s.closeRiverUI()
	if s.rl != nil {
		for _, c := range s.rl.closers {
			errs = append(errs, c())
		}
		s.rl.closers = nil
	}
	if s.integ != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
		errs = append(errs, s.StopWorkers(ctx))
		cancel()
		if s.integ.closeDriver != nil {
			s.integ.closeDriver()
		}
	}
	if s.ownsDB && s.db != nil {
		errs = append(errs, s.db.Close())
		s.ownsDB = false
	}
	if s.tracing != nil && s.tracing.shutdown != nil {
		// Flush the spans still batched.
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
		errs = append(errs, s.tracing.shutdown(ctx))
		cancel()
		s.tracing.shutdown = nil
	}
	return errors.Join(errs...)
}

// Run listens on the configured address and serves until ctx is done, then
// shuts down gracefully: it stops accepting, waits for requests in flight up to
// the configured grace, and returns.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done; see [Server.Run].
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go s.rotateLoop(ctx)
	go s.checkpointLoop(ctx)
	if s.cfg.workersOn() {
		if err := s.StartWorkers(ctx); err != nil {
			srv.Close()
			return err
		}
	}
	s.log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("version", Version),
		slog.String("database", s.db.Dialect().Name().String()),
		slog.String("audit_verifier_key", s.verifierKey),
		slog.String("audit_checkpoint_interval", s.cfg.AuditCheckpointInterval.String()),
		slog.String("rate_limits", s.rateLimitStore()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down", slog.Duration("grace", s.cfg.ShutdownGrace))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := s.StopWorkers(sctx); err != nil {
		return fmt.Errorf("server: stop workers: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"status":"ok"}`+"\n")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := s.db.PingContext(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"unavailable","database":"down"}`+"\n")
		return
	}
	io.WriteString(w, `{"status":"ok","database":"up"}`+"\n")
}

// NewLogger returns a slog logger writing JSON or text at the given level.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// TxRunner returns the runner of tenant-scoped transactions the server uses.
func (s *Server) TxRunner() *tenancy.TxRunner { return s.tx }

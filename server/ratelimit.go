package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/ratelimit"
	"github.com/saaskit/saaskit/ratelimit/redislimit"
)

// Rate-limit scopes, as they appear in keys, headers and metrics.
const (
	scopeAPI       = "api"
	scopeAnon      = "anon"
	scopeAuth      = "auth"
	scopeAuthEmail = "auth-email"
)

// authOperations are the operations under the strict auth scope.
var authOperations = map[string]bool{"register": true, "login": true, "token": true}

// rateLimits are the parsed limits of a [Config].
type rateLimits struct {
	api, auth, anon ratelimit.Limit
	plans           map[string]ratelimit.Limit
}

// parseLimit parses "N/duration[,burst]" or "0" (no limit). A duration
// without a number ("m") means one of that unit.
func parseLimit(s string) (ratelimit.Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return ratelimit.Limit{}, nil
	}
	rate, burstText, hasBurst := strings.Cut(s, ",")
	count, period, ok := strings.Cut(rate, "/")
	if !ok {
		return ratelimit.Limit{}, errors.New(`want N/duration[,burst] such as "600/1m" or "10/1m,5", or 0 for no limit`)
	}
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n <= 0 {
		return ratelimit.Limit{}, fmt.Errorf("count %q is not a positive integer", count)
	}
	period = strings.TrimSpace(period)
	if period != "" && (period[0] < '0' || period[0] > '9') {
		period = "1" + period
	}
	d, err := time.ParseDuration(period)
	if err != nil || d <= 0 {
		return ratelimit.Limit{}, fmt.Errorf("period %q is not a positive duration (1s, 1m, 1h)", period)
	}
	burst := 0
	if hasBurst {
		burst, err = strconv.Atoi(strings.TrimSpace(burstText))
		if err != nil || burst <= 0 {
			return ratelimit.Limit{}, fmt.Errorf("burst %q is not a positive integer", burstText)
		}
	}
	return ratelimit.Every(n, d, burst), nil
}

// rateLimits parses the rate-limit settings.
func (c *Config) rateLimits() (*rateLimits, error) {
	var rl rateLimits
	for _, f := range []struct {
		env, v string
		dst    *ratelimit.Limit
	}{
		{"SAASKIT_RATE_LIMIT_API", c.RateLimitAPI, &rl.api},
		{"SAASKIT_RATE_LIMIT_AUTH", c.RateLimitAuth, &rl.auth},
		{"SAASKIT_RATE_LIMIT_ANON", c.RateLimitAnon, &rl.anon},
	} {
		if strings.TrimSpace(f.v) == "" {
			continue // Defaults not applied: no limit
		}
		l, err := parseLimit(f.v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s=%q: %v", ErrConfig, f.env, f.v, err)
		}
		*f.dst = l
	}
	for _, item := range splitList(c.RateLimitPlans) {
		plan, limit, ok := strings.Cut(item, "=")
		plan = strings.TrimSpace(plan)
		if !ok || plan == "" {
			return nil, fmt.Errorf("%w: SAASKIT_RATE_LIMIT_PLANS: %q is not plan=N/duration[,burst]", ErrConfig, item)
		}
		l, err := parseLimit(limit)
		if err != nil {
			return nil, fmt.Errorf("%w: SAASKIT_RATE_LIMIT_PLANS: plan %s: %v", ErrConfig, plan, err)
		}
		if rl.plans == nil {
			rl.plans = make(map[string]ratelimit.Limit)
		}
		rl.plans[plan] = l
	}
	return &rl, nil
}

// parseProxies parses the comma-separated CIDRs (or single addresses) of
// trusted proxies.
func parseProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(s) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("%w: SAASKIT_TRUSTED_PROXIES: %q is not a CIDR or an address", ErrConfig, item)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientIP is the request's client address, believing forwarding headers
// only from trusted proxies.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	return ratelimit.ClientIP(r, s.proxies)
}

// limiterState holds the server's rate limiter and its middlewares.
type limiterState struct {
	limiter  ratelimit.Limiter
	closers  []func() error
	limits   *rateLimits
	api      func(http.Handler) http.Handler
	anon     func(http.Handler) http.Handler
	auth     func(http.Handler) http.Handler
	refused  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

// setupRateLimits builds the limiter (Redis when configured, in-memory
// otherwise) and the middlewares of the three scopes.
func (s *Server) setupRateLimits(reg prometheus.Registerer) error {
	limits, err := s.cfg.rateLimits()
	if err != nil {
		return err
	}
	st := &limiterState{limits: limits}
	st.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "saaskit_ratelimit_refused_total",
		Help: "Requests refused with 429 by rate-limit scope.",
	}, []string{"scope"})
	st.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "saaskit_ratelimit_errors_total",
		Help: "Rate-limiter failures (Redis unreachable) by scope; the api and anon scopes then fail open, auth fails closed.",
	}, []string{"scope"})
	reg.MustRegister(st.refused, st.failures)
	if s.cfg.RedisURL != "" {
		opts, err := redis.ParseURL(s.cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("%w: SAASKIT_REDIS_URL: %v", ErrConfig, err)
		}
		client := redis.NewClient(opts)
		st.closers = append(st.closers, client.Close)
		st.limiter = redislimit.New(client, redislimit.Config{Prefix: s.cfg.RedisPrefix})
	} else {
		mem := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: s.now})
		st.closers = append(st.closers, mem.Close)
		st.limiter = mem
	}
	onError := func(r *http.Request, scope string, err error) { st.failures.WithLabelValues(scope).Inc() }
	onLimited := func(r *http.Request, scope string) { st.refused.WithLabelValues(scope).Inc() }
	base := ratelimit.MiddlewareOptions{
		TrustedProxies: s.proxies, Logger: s.log, OnError: onError, OnLimited: onLimited,
	}

	api := base
	api.Policy = ratelimit.Policy{Scope: scopeAPI, Limit: limits.api}
	api.FailOpen = true
	api.PrincipalFunc = func(r *http.Request) (string, bool) {
		p, ok := authn.PrincipalFromContext(r.Context())
		if !ok {
			return "", false
		}
		return "user:" + p.UserID.String(), true
	}
	api.TenantFunc = func(r *http.Request) (string, bool) {
		p, ok := authn.PrincipalFromContext(r.Context())
		if !ok || p.TenantID == uuid.Nil {
			return "", false
		}
		return p.TenantID.String(), true
	}
	api.LimitFunc = func(r *http.Request) ratelimit.Limit { return s.planLimit(r.Context()) }
	st.api = ratelimit.MiddlewareWithOptions(st.limiter, api)

	anon := base
	anon.Policy = ratelimit.Policy{Scope: scopeAnon, Limit: limits.anon}
	anon.FailOpen = true
	st.anon = ratelimit.MiddlewareWithOptions(st.limiter, anon)

	auth := base
	auth.Policy = ratelimit.Policy{Scope: scopeAuth, Limit: limits.auth}
	st.auth = ratelimit.MiddlewareWithOptions(st.limiter, auth)
	s.rl = st
	return nil
}

// planLimit is the api limit of the principal's tenant: its plan's quota
// when SAASKIT_RATE_LIMIT_PLANS names the plan, the api default otherwise.
// The tenant comes from the short-lived tenant cache, so the usual cost is
// one map read.
func (s *Server) planLimit(ctx context.Context) ratelimit.Limit {
	lim := s.rl.limits
	if len(lim.plans) == 0 {
		return lim.api
	}
	p, ok := authn.PrincipalFromContext(ctx)
	if !ok || p.TenantID == uuid.Nil {
		return lim.api
	}
	t, err := s.lookup.LookupTenant(ctx, p.TenantID.String())
	if err != nil {
		return lim.api
	}
	if l, ok := lim.plans[t.Plan]; ok {
		return l
	}
	return lim.api
}

// rateLimit is the huma middleware that applies the scopes: auth (per client
// IP) on register, login and token; api (per user and tenant, with the
// plan's quota) on authenticated operations; anon (per client IP) on the
// other public ones. It runs after authentication.
func (s *Server) rateLimit(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	var mw func(http.Handler) http.Handler
	switch {
	case op != nil && authOperations[op.OperationID]:
		mw = s.rl.auth
	case hasPrincipal(ctx.Context()):
		mw = s.rl.api
	default:
		mw = s.rl.anon
	}
	s.applyLimit(ctx, mw, next)
}

// applyLimit runs the http middleware mw around next.
func (s *Server) applyLimit(ctx huma.Context, mw func(http.Handler) http.Handler, next func(huma.Context)) {
	r, w := humago.Unwrap(ctx)
	r = r.WithContext(ctx.Context())
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { next(ctx) })).ServeHTTP(w, r)
}

func hasPrincipal(ctx context.Context) bool {
	_, ok := authn.PrincipalFromContext(ctx)
	return ok
}

// checkEmailLimit applies the auth scope to one email address (lowercased),
// whatever the client IP, against guessing one account's password from many
// addresses. A refusal is a 429 with the RateLimit fields and Retry-After; a
// limiter failure is a 503 (the auth scope fails closed).
func (s *Server) checkEmailLimit(ctx context.Context, email string) error {
	limit := s.rl.limits.auth
	if limit.IsZero() {
		return nil
	}
	email = strings.ToLower(strings.TrimSpace(email))
	err := ratelimit.Check(ctx, s.rl.limiter, scopeAuthEmail+"|"+email, limit, 1)
	var le *ratelimit.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		s.rl.refused.WithLabelValues(scopeAuthEmail).Inc()
		h := http.Header{}
		ratelimit.SetHeaders(h, scopeAuthEmail, le.Result)
		retry := max(int64((le.RetryAfter+time.Second-1)/time.Second), 1)
		h.Set("Retry-After", strconv.FormatInt(retry, 10))
		return huma.ErrorWithHeaders(huma.NewError(http.StatusTooManyRequests,
			fmt.Sprintf("rate limit exceeded for scope %q; retry after %ds", scopeAuthEmail, retry)), h)
	default:
		s.rl.failures.WithLabelValues(scopeAuthEmail).Inc()
		s.log.ErrorContext(ctx, "ratelimit: limiter failed, request refused", slog.String("scope", scopeAuthEmail), slog.Any("error", err))
		return huma.ErrorWithHeaders(huma.NewError(http.StatusServiceUnavailable, "rate limiter unavailable"),
			http.Header{"Retry-After": {strconv.FormatInt(int64(ratelimit.UnavailableRetryAfter/time.Second), 10)}})
	}
}

// rateLimitStore names where rate limits are kept, for the start log.
func (s *Server) rateLimitStore() string {
	if s.cfg.RedisURL != "" {
		return "redis"
	}
	return "memory"
}

package ratelimit

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/saaskit/saaskit/internal/problem"
)

// ErrSkip is returned by a [MiddlewareOptions.Key] function to let a request
// through without limiting it (for example a health probe).
var ErrSkip = errors.New("ratelimit: skip")

// Policy names a quota and what one request costs against it.
type Policy struct {
	// Scope names the quota in keys and in the RateLimit headers, for
	// example "api" or "login". Empty means "default".
	Scope string
	// Limit is the quota. [MiddlewareOptions.LimitFunc], when set, replaces
	// it per request. The zero Limit means no limit.
	Limit Limit
	// Cost is what one request takes from the bucket. Zero means 1.
	Cost int
}

// MiddlewareOptions configures [MiddlewareWithOptions]. Only Policy is
// required; every other zero field is the documented default.
type MiddlewareOptions struct {
	// Policy is the scope, default limit and cost.
	Policy Policy

	// Key returns the limiter key for r. Returning [ErrSkip] lets r
	// through unlimited; any other error is handled as a limiter error
	// (see FailOpen). Nil means "<scope>|<principal>|<tenant>", where the
	// principal comes from PrincipalFunc ("ip:<client IP>" when it has
	// none) and the tenant from TenantFunc (empty when it has none).
	Key func(r *http.Request) (string, error)
	// PrincipalFunc returns the authenticated principal of r (a user or API
	// client id, prefixed by its kind, such as "user:42") and whether there
	// is one. Nil means requests are keyed by client IP.
	PrincipalFunc func(r *http.Request) (string, bool)
	// TenantFunc returns the tenant of r and whether there is one. Nil
	// means no tenant part in the key.
	TenantFunc func(r *http.Request) (string, bool)
	// LimitFunc returns the limit for r, for example from the tenant's
	// plan; the zero Limit lets r through unlimited. Nil means Policy.Limit.
	LimitFunc func(r *http.Request) Limit

	// ClientIP returns the client address used in the default key. Nil
	// means [ClientIP] with TrustedProxies.
	ClientIP func(r *http.Request) netip.Addr
	// TrustedProxies lists the proxies whose X-Forwarded-For and X-Real-IP
	// are believed. Nil means none: the direct peer is the client.
	TrustedProxies []netip.Prefix

	// FailOpen decides what happens when the limiter (or Key) fails: true
	// lets the request through, false (the default) answers 503
	// problem+json with Retry-After. Either way the error is logged and
	// passed to OnError.
	FailOpen bool
	// Logger receives limiter errors. Nil discards them.
	Logger *slog.Logger
	// OnError, when set, is called with every limiter error, for metrics.
	OnError func(r *http.Request, scope string, err error)
	// OnLimited, when set, is called for every refused request, for
	// metrics.
	OnLimited func(r *http.Request, scope string)
}

// UnavailableRetryAfter is the Retry-After sent with the 503 answer of a
// fail-closed middleware whose limiter fails.
const UnavailableRetryAfter = time.Second

// Middleware limits requests with l according to p, keyed by scope, client
// IP (no proxies trusted) and nothing else. See [MiddlewareWithOptions] for
// principals, tenants, per-plan limits and proxies.
func Middleware(l Limiter, p Policy) func(http.Handler) http.Handler {
	return MiddlewareWithOptions(l, MiddlewareOptions{Policy: p})
}

// MiddlewareWithOptions limits requests with l as o describes.
//
// An allowed request gets the RateLimit-Policy and RateLimit headers
// (draft-ietf-httpapi-ratelimit-headers) and goes on to the next handler;
// middlewares stacked for several scopes each add their own list member. A
// refused one gets 429 problem+json with those headers and Retry-After (see
// [WriteLimited]).
func MiddlewareWithOptions(l Limiter, o MiddlewareOptions) func(http.Handler) http.Handler {
	scope := o.Policy.Scope
	if scope == "" {
		scope = "default"
	}
	cost := o.Policy.Cost
	if cost == 0 {
		cost = 1
	}
	clientIP := o.ClientIP
	if clientIP == nil {
		trusted := o.TrustedProxies
		clientIP = func(r *http.Request) netip.Addr { return ClientIP(r, trusted) }
	}
	key := o.Key
	if key == nil {
		key = func(r *http.Request) (string, error) {
			var b strings.Builder
			b.Grow(64)
			b.WriteString(scope)
			b.WriteByte('|')
			if p, ok := principal(o.PrincipalFunc, r); ok {
				b.WriteString(p)
			} else {
				b.WriteString("ip:")
				var buf [64]byte
				b.Write(clientIP(r).AppendTo(buf[:0]))
			}
			b.WriteByte('|')
			if o.TenantFunc != nil {
				if t, ok := o.TenantFunc(r); ok {
					b.WriteString(t)
				}
			}
			return b.String(), nil
		}
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := o.Policy.Limit
			if o.LimitFunc != nil {
				limit = o.LimitFunc(r)
			}
			if limit.IsZero() {
				next.ServeHTTP(w, r)
				return
			}
			k, err := key(r)
			var res Result
			if err == nil {
				res, err = l.Allow(r.Context(), k, limit, cost)
			} else if errors.Is(err, ErrSkip) {
				next.ServeHTTP(w, r)
				return
			}
			if err != nil {
				if o.OnError != nil {
					o.OnError(r, scope, err)
				}
				if o.FailOpen {
					logger.LogAttrs(r.Context(), slog.LevelWarn, "ratelimit: limiter failed, request allowed",
						slog.String("scope", scope), slog.Any("error", err))
					next.ServeHTTP(w, r)
					return
				}
				logger.LogAttrs(r.Context(), slog.LevelError, "ratelimit: limiter failed, request refused",
					slog.String("scope", scope), slog.Any("error", err))
				w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(UnavailableRetryAfter), 10))
				problem.Error(w, http.StatusServiceUnavailable, "rate limiter unavailable")
				return
			}
			if !res.Allowed {
				if o.OnLimited != nil {
					o.OnLimited(r, scope)
				}
				WriteLimited(w, scope, res)
				return
			}
			SetHeaders(w.Header(), scope, res)
			next.ServeHTTP(w, r)
		})
	}
}

func principal(f func(*http.Request) (string, bool), r *http.Request) (string, bool) {
	if f == nil {
		return "", false
	}
	return f(r)
}

// SetHeaders adds the RateLimit-Policy and RateLimit fields describing res
// under scope to h:
//
//	RateLimit-Policy: "<scope>";q=<quota>;w=<window seconds>
//	RateLimit: "<scope>";r=<remaining>;t=<seconds until the bucket is full>
//
// Both are structured-field lists, so each scope adds its own member.
func SetHeaders(h http.Header, scope string, res Result) {
	name := quote(scope)
	h.Add("RateLimit-Policy", name+";"+res.Limit.String())
	h.Add("RateLimit", name+";r="+strconv.Itoa(res.Remaining)+";t="+strconv.FormatInt(ceilSeconds(res.ResetAfter), 10))
}

// WriteLimited answers a refused request: the headers of [SetHeaders],
// Retry-After in whole seconds (rounded up, at least 1), and a 429
// problem+json whose detail names the scope and whose "retry_after" member
// repeats the seconds. Handlers that call [Check] themselves use it with the
// Result of the returned [*Error].
func WriteLimited(w http.ResponseWriter, scope string, res Result) {
	retry := max(ceilSeconds(res.RetryAfter), 1)
	SetHeaders(w.Header(), scope, res)
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	problem.Write(w, problem.Detail{
		Status: http.StatusTooManyRequests,
		Detail: "rate limit exceeded for scope " + strconv.Quote(scope) + "; retry after " + strconv.FormatInt(retry, 10) + "s",
		Extra:  map[string]any{"retry_after": retry},
	})
}

// quote renders s as a structured-field string (RFC 9651): printable ASCII
// only, with backslash and double quote escaped. Other bytes are dropped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			continue
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

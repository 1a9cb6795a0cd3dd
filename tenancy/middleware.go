package tenancy

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/saaskit/saaskit/internal/problem"
)

// MiddlewareOptions tunes [MiddlewareWithOptions]. The zero value is what
// [Middleware] uses.
type MiddlewareOptions struct {
	// Optional lets a request that names no tenant through: the handler sees
	// no tenant in the context. By default such a request gets 400.
	Optional bool
	// AllowSuspended lets requests of a suspended tenant through. By default
	// they get 403.
	AllowSuspended bool
	// Logger receives lookup failures other than not found; nil discards.
	Logger *slog.Logger
}

// Middleware resolves the tenant of each request with res, looks it up with
// lk and puts it in the request context (see [FromContext]). It answers in
// problem+json: 400 when no tenant is named (or the resolver fails), 404 when
// the tenant does not exist, 403 when it is suspended, 500 when the lookup
// fails otherwise.
func Middleware(res Resolver, lk Lookup) func(http.Handler) http.Handler {
	return MiddlewareWithOptions(res, lk, MiddlewareOptions{})
}

// MiddlewareWithOptions is [Middleware] with options.
func MiddlewareWithOptions(res Resolver, lk Lookup, opts MiddlewareOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, err := res.Resolve(r)
			if err != nil {
				problem.Error(w, http.StatusBadRequest, "cannot determine the tenant of the request")
				return
			}
			if key == "" {
				if opts.Optional {
					next.ServeHTTP(w, r)
					return
				}
				problem.Error(w, http.StatusBadRequest, "the request names no tenant")
				return
			}
			t, err := lk.LookupTenant(r.Context(), key)
			switch {
			case errors.Is(err, ErrTenantNotFound):
				problem.Error(w, http.StatusNotFound, "tenant not found")
				return
			case err != nil:
				if opts.Logger != nil {
					opts.Logger.ErrorContext(r.Context(), "tenancy: tenant lookup failed", "error", err)
				}
				problem.Error(w, http.StatusInternalServerError, "internal error")
				return
			}
			if t.Status == StatusSuspended && !opts.AllowSuspended {
				problem.Error(w, http.StatusForbidden, "tenant suspended")
				return
			}
			next.ServeHTTP(w, r.WithContext(WithTenant(r.Context(), t)))
		})
	}
}

package authn

import (
	"errors"
	"net/http"
	"strings"

	"github.com/saaskit/saaskit/internal/problem"
)

// Realm is the realm the middleware names in WWW-Authenticate.
const Realm = "saaskit"

// ParseBearer returns the token of an Authorization header value of the form
// "Bearer <token>" (RFC 6750): the scheme in any case, one space, and one
// token68 (letters, digits and -._~+/ followed by optional '='). It returns an
// error wrapping [ErrTokenMissing] for an empty header and [ErrTokenMalformed]
// for anything else that is not exactly that.
func ParseBearer(header string) (string, error) {
	if header == "" {
		return "", ErrTokenMissing
	}
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", tokenErr(ErrTokenMalformed, "authorization scheme is not Bearer")
	}
	if !isToken68(token) {
		return "", tokenErr(ErrTokenMalformed, "bearer token is not one token68")
	}
	return token, nil
}

func isToken68(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// Middleware returns middleware that requires a valid access token in the
// Authorization header and puts its [Principal] in the request context. A
// request without one gets 401 problem+json with a WWW-Authenticate Bearer
// challenge (RFC 6750: with error="invalid_token" when a token was presented
// but refused); a failing Revoked hook or key source gets 500.
func Middleware(v *Verifier) func(http.Handler) http.Handler {
	return middleware(v, false)
}

// MiddlewareOptional is like [Middleware] but lets a request without an
// Authorization header through without a principal. A request with a bad
// token is still refused.
func MiddlewareOptional(v *Verifier) func(http.Handler) http.Handler {
	return middleware(v, true)
}

func middleware(v *Verifier, optional bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			header := r.Header.Get("Authorization")
			if header == "" && optional {
				next.ServeHTTP(w, r)
				return
			}
			token, err := ParseBearer(header)
			if err == nil {
				var p *Principal
				if p, err = v.Verify(r.Context(), token); err == nil {
					next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
					return
				}
			}
			if !IsTokenError(err) {
				problem.Error(w, http.StatusInternalServerError, "internal error")
				return
			}
			Challenge(w, err)
		})
	}
}

// Challenge writes the 401 answer for err, a token error: a WWW-Authenticate
// Bearer challenge and a problem+json body. For [ErrTokenMissing] the
// challenge has no error parameter (RFC 6750 section 3.1).
func Challenge(w http.ResponseWriter, err error) {
	desc := describe(err)
	challenge := `Bearer realm="` + Realm + `"`
	if !errors.Is(err, ErrTokenMissing) {
		challenge += `, error="invalid_token", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	problem.Write(w, problem.Detail{Status: http.StatusUnauthorized, Detail: desc})
}

// describe returns a fixed description of a token error, safe to quote in a
// header.
func describe(err error) string {
	switch {
	case errors.Is(err, ErrTokenMissing):
		return "authentication required"
	case errors.Is(err, ErrTokenExpired):
		return "the access token expired"
	case errors.Is(err, ErrTokenNotYetValid):
		return "the access token is not valid yet"
	case errors.Is(err, ErrTokenRevoked):
		return "the access token was revoked"
	case errors.Is(err, ErrUnknownKey):
		return "the access token was signed by an unknown key"
	case errors.Is(err, ErrTokenSignature):
		return "the access token signature is invalid"
	case errors.Is(err, ErrTokenClaims):
		return "the access token is not valid here"
	}
	return "the access token is malformed"
}

// Require returns middleware that lets a request through only when its
// context carries a principal whose role in its tenant is at least min. No
// principal gets 401, a lower role 403, both problem+json. Superadmin does not
// stand in for a tenant role. Put it after [Middleware].
func Require(min Role) func(http.Handler) http.Handler {
	return guard(func(r *http.Request) error { return Authorize(r.Context(), min) })
}

// RequireSuperadmin returns middleware that lets a request through only for a
// superadmin principal: 401 without a principal, 403 for anyone else.
func RequireSuperadmin() func(http.Handler) http.Handler {
	return guard(func(r *http.Request) error { return AuthorizeSuperadmin(r.Context()) })
}

func guard(check func(*http.Request) error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch err := check(r); {
			case err == nil:
				next.ServeHTTP(w, r)
			case errors.Is(err, ErrUnauthenticated):
				Challenge(w, ErrTokenMissing)
			default:
				problem.Error(w, http.StatusForbidden, "insufficient role")
			}
		})
	}
}

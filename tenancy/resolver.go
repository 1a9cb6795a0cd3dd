package tenancy

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// Resolver finds the tenant key (a tenant id or slug) of a request.
//
// Resolve returns "" and a nil error when the request does not name a tenant
// in the way the resolver looks for; an error means the request is malformed
// and should be refused. Implementations are safe for concurrent use.
type Resolver interface {
	Resolve(r *http.Request) (string, error)
}

// ResolverFunc adapts a function to [Resolver].
type ResolverFunc func(r *http.Request) (string, error)

// Resolve calls f(r).
func (f ResolverFunc) Resolve(r *http.Request) (string, error) { return f(r) }

// DefaultHeader is the header [HeaderResolver] reads when given no name.
const DefaultHeader = "X-Tenant"

// HeaderResolver reads the tenant key from the named request header
// ([DefaultHeader] when name is empty). Use it only behind a gateway that sets
// the header, or together with a check that the authenticated principal is a
// member of the tenant: a client can send any header.
func HeaderResolver(name string) Resolver {
	if name == "" {
		name = DefaultHeader
	}
	name = http.CanonicalHeaderKey(name)
	return ResolverFunc(func(r *http.Request) (string, error) {
		return strings.TrimSpace(r.Header.Get(name)), nil
	})
}

// SubdomainResolver reads the tenant slug from the first label of the request
// host under baseDomain: "acme.example.com" with base "example.com" gives
// "acme". The port and a trailing dot are ignored and the comparison is
// case-insensitive. The base domain itself, other domains, deeper names
// ("a.b.example.com") and labels that are not valid slugs give "".
func SubdomainResolver(baseDomain string) Resolver {
	base := "." + strings.Trim(strings.ToLower(baseDomain), ".")
	return ResolverFunc(func(r *http.Request) (string, error) {
		return subdomain(r.Host, base), nil
	})
}

func subdomain(host, base string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	label, ok := strings.CutSuffix(host, base)
	if !ok || label == "" || strings.IndexByte(label, '.') >= 0 || ValidSlug(label) != nil {
		return ""
	}
	return label
}

// PathResolver reads the tenant key from the path segment after prefix:
// PathResolver("/t/") gives "acme" for "/t/acme/users" and for "/t/acme". A
// path without the prefix, or with an empty segment, gives "". The handler
// behind the middleware sees the path unchanged.
func PathResolver(prefix string) Resolver {
	prefix = "/" + strings.Trim(prefix, "/") + "/"
	if prefix == "//" {
		prefix = "/"
	}
	return ResolverFunc(func(r *http.Request) (string, error) {
		return pathSegment(r.URL.Path, prefix), nil
	})
}

func pathSegment(path, prefix string) string {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// ClaimResolver reads the tenant key from the request context through claim,
// typically a function that returns the tenant claim of the verified access
// token that an authentication middleware put there.
func ClaimResolver(claim func(ctx context.Context) (string, bool)) Resolver {
	return ResolverFunc(func(r *http.Request) (string, error) {
		if v, ok := claim(r.Context()); ok {
			return v, nil
		}
		return "", nil
	})
}

// FirstOf tries resolvers in order and returns the first non-empty key, or
// the first error.
func FirstOf(resolvers ...Resolver) Resolver {
	return ResolverFunc(func(r *http.Request) (string, error) {
		for _, res := range resolvers {
			key, err := res.Resolve(r)
			if err != nil || key != "" {
				return key, err
			}
		}
		return "", nil
	})
}

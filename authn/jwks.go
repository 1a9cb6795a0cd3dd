package authn

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/saaskit/saaskit/internal/problem"
)

// DefaultJWKSMaxAge is the max-age [JWKSHandler] sends when given 0.
const DefaultJWKSMaxAge = 5 * time.Minute

// JWKSHandler serves the public keys of ks as a JSON Web Key Set
// (application/json), for /.well-known/jwks.json. Responses carry
// "Cache-Control: public, max-age=N" (maxAge, default DefaultJWKSMaxAge;
// negative sends "no-cache") and an ETag, and a matching If-None-Match gets
// 304. It reads the key set at every request, so a rotation shows at once;
// rotate no more often than maxAge so clients see a next key before it signs.
func JWKSHandler(ks *KeySet, maxAge time.Duration) http.Handler {
	if maxAge == 0 {
		maxAge = DefaultJWKSMaxAge
	}
	cacheControl := "no-cache"
	if maxAge > 0 {
		cacheControl = "public, max-age=" + strconv.Itoa(int(maxAge/time.Second))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem.Error(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		s := ks.load()
		h := w.Header()
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", s.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if etagMatch(r.Header.Get("If-None-Match"), s.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(s.json)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(s.json)
	})
}

// etagMatch reports whether an If-None-Match value matches etag (weak
// comparison, RFC 9110 section 13.1.2).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}

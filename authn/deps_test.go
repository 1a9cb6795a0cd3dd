package authn_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps authn's imports to the standard library, go-jose,
// x/crypto, uuid, Bun (and what Bun itself needs) and internal/problem: no SQL
// driver, no dialect, nothing of the server.
func TestDependencies(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".", "./authntest").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	allowed := []string{
		"github.com/saaskit/saaskit/authn",
		"github.com/saaskit/saaskit/internal/problem",
		"github.com/go-jose/go-jose/v4",
		"github.com/google/uuid",
		"golang.org/x/crypto/",
		"golang.org/x/sys/cpu",
		"github.com/uptrace/bun",
		// Bun's own dependencies.
		"github.com/tmthrgd/go-hex", "github.com/jinzhu/inflection", "github.com/puzpuzpuz/xsync/",
		"github.com/vmihailenco/",
	}
	forbidden := []string{"dialect/pgdialect", "dialect/sqlitedialect", "driver/", "pgx", "lib/pq", "sqlite", "saaskit/server"}
	for pkg := range strings.Lines(string(out)) {
		pkg = strings.TrimSpace(pkg)
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		for _, f := range forbidden {
			if strings.Contains(pkg, f) {
				t.Errorf("authn depends on %s", pkg)
			}
		}
		ok := false
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(pkg, a)
		}
		if !ok {
			t.Errorf("authn depends on %s, which is not on the allowed list", pkg)
		}
	}
}

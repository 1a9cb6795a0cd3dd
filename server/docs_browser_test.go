package server

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestDocsPageInBrowser renders the server's own /api/docs in headless
// Chromium, offline, and finds the operations of the real OpenAPI document.
// It skips when Chromium is not installed (CI installs it).
func TestDocsPageInBrowser(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/chromium"); serr != nil {
			t.Skip("Chromium not found: the docs page is not rendered")
		}
		bin = "/usr/bin/chromium"
	}
	s := newTestServer(t, dbtest.SQLite(t))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=10000",
		"--dump-dom", s.ts.URL+"/api/docs")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errOut.String())
	}
	dom := out.String()
	for _, want := range []string{
		`data-path="/api/auth/register/"`,
		`data-path="/api/users/{id}/"`,
		`data-path="/api/tenants/"`,
		"List the members of the current tenant",
		"saaskit API",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered docs lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM (first 2000 bytes): %.2000s", dom)
	}
}

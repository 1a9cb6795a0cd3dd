package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestWebhookCrashSafety starts the real binary, sends a burst of signed
// events, kills it with SIGKILL right after the last 202, starts it again
// as a receiver (SAASKIT_WORKERS=off) next to a "saaskit worker" process,
// and finds every accepted event processed, each applied exactly once.
func TestWebhookCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the saaskit binary")
	}
	bin := filepath.Join(t.TempDir(), "saaskit")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/saaskit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		url := db.URL
		if db.IsPostgres() {
			sep := "?"
			if strings.Contains(url, "?") {
				sep = "&"
			}
			url += sep + "search_path=" + db.Schema
		}
		addr := freeAddr(t)
		run := func(command, workers string) *exec.Cmd {
			t.Helper()
			cmd := exec.Command(bin, command)
			cmd.Env = append(os.Environ(), "SAASKIT_DATABASE_URL="+url, "SAASKIT_ADDR="+addr, "SAASKIT_WORKERS="+workers,
				"SAASKIT_RATE_LIMIT_API=0", "SAASKIT_RATE_LIMIT_AUTH=0", "SAASKIT_RATE_LIMIT_ANON=0",
				"SAASKIT_LOG_LEVEL=error", "SAASKIT_WORKER_POLL_INTERVAL=10ms", "SAASKIT_WEBHOOK_JOB_TIMEOUT=1s", "SAASKIT_HASH_CONCURRENCY=2")
			cmd.Stdout, cmd.Stderr = io.Discard, t.Output()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
			return cmd
		}
		start := func(workers string) *exec.Cmd {
			t.Helper()
			cmd := run("serve", workers)
			deadline := time.Now().Add(60 * time.Second)
			for {
				resp, err := http.Get("http://" + addr + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return cmd
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("binary not ready: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // waiting for start, not timing
			}
		}
		// The test's helpers talk to the binary through a proxy that
		// outlives its restarts.
		target, _ := neturl.Parse("http://" + addr)
		proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		t.Cleanup(proxy.Close)
		s := &testServer{t: t, db: db, ts: proxy}
		cmd := start("on")
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")

		const n = 60
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for w := range 6 {
			wg.Go(func() {
				for i := w; i < n; i += 6 {
					id := fmt.Sprintf("evt_%d", i)
					body := event(id, "user.created", map[string]any{"id": fmt.Sprintf("u%d", i), "email": fmt.Sprintf("u%d@example.com", i)})
					r := s.send(c, id, body, time.Now(), c.Secret)
					mu.Lock()
					if r.Status == http.StatusAccepted {
						accepted++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait() //nolint:errcheck // killed
		if accepted != n {
			t.Fatalf("%d of %d events accepted", accepted, n)
		}

		// Jobs the killed process had fetched are worked again once River's
		// rescuer (every 30s) finds them running for twice the job timeout.
		// This time serve only receives and "saaskit worker" processes.
		start("off")
		run("worker", "on")
		deadline := time.Now().Add(150 * time.Second)
		for {
			done := 0
			for _, e := range s.events(owner, "") {
				if e.Status == EventProcessed {
					done++
				}
			}
			if done == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events processed after the restart", done, n)
			}
			time.Sleep(20 * time.Millisecond) // polling, not a timing assertion
		}
		if m := s.members(owner); len(m) != n+1 {
			t.Fatalf("%d members, want %d", len(m), n+1)
		}
		created := 0
		for _, ev := range s.auditEvents(owner, ActionMemberCreated) {
			if ev.Actor.ID == ProviderUserService {
				created++
			}
		}
		if created != n {
			t.Fatalf("%d member.created events by the integration, want %d (each effect once)", created, n)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

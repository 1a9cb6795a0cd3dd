package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildSaaskitBin builds the saaskit command into a temporary directory of
// the test. It is built without the race detector whatever the test runs
// with: it runs beside the test as a separate process.
func buildSaaskitBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "saaskit")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/saaskit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// saaskitProc is one process of the saaskit binary that a test starts,
// kills and starts again with the same command and environment.
type saaskitProc struct {
	t    *testing.T
	name string   // in failure messages
	bin  string   // the binary
	args []string // command and flags
	env  []string // added to the test's environment
	addr string   // the HTTP address of serve; empty for other commands

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	out  *lockedBuffer // its stderr, shown when it fails to start
}

// lockedBuffer is a bytes.Buffer safe for the process's copier and the
// test reading it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newSaaskitProc describes a process; start runs it. The process is
// killed when the test ends.
func newSaaskitProc(t *testing.T, name, bin, addr string, env []string, args ...string) *saaskitProc {
	p := &saaskitProc{t: t, name: name, bin: bin, args: args, env: env, addr: addr}
	t.Cleanup(func() {
		p.mu.Lock()
		out := p.out
		p.mu.Unlock()
		p.kill()
		if t.Failed() && out != nil {
			if s := out.String(); s != "" {
				t.Logf("%s stderr (last run):\n%s", name, lastBytes(s, 4000))
			}
		}
	})
	return p
}

// start starts the process and, for serve, waits until /readyz answers 200.
func (p *saaskitProc) start() {
	p.t.Helper()
	p.mu.Lock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	if p.addr != "" {
		cmd.Env = append(cmd.Env, "SAASKIT_ADDR="+p.addr)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, out
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("%s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // killed on purpose
	p.cmd, p.done, p.out = cmd, done, out
	p.mu.Unlock()
	if p.addr != "" {
		p.waitReady(done, out)
	}
}

func (p *saaskitProc) waitReady(done chan struct{}, out *lockedBuffer) {
	p.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			p.t.Fatalf("%s exited before it was ready:\n%s", p.name, out)
		default:
		}
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after 60s: %v\n%s", p.name, err, out)
		}
		time.Sleep(20 * time.Millisecond) // waiting for the start, not timing it
	}
}

// kill sends SIGKILL and waits for the process to exit. Killing a process
// that is not running does nothing.
func (p *saaskitProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill() //nolint:errcheck // it may have exited already
	<-done
}

// exited reports whether the process died by itself, with its output.
func (p *saaskitProc) exited() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false, ""
	}
	select {
	case <-p.done:
		return true, fmt.Sprintf("%s exited: %v\n%s", p.name, p.cmd.ProcessState, p.out)
	default:
		return false, ""
	}
}

// lastBytes returns the last n bytes of s.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

package integrations_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/saaskit/saaskit/integrations"
)

// memTransport serves requests by calling a handler in memory, so that
// tests inside a synctest bubble do no real I/O.
type memTransport struct{ h http.Handler }

func (t memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.h.ServeHTTP(rec, r)
	}()
	select {
	case <-done:
		if r.Body != nil {
			r.Body.Close()
		}
		return rec.Result(), nil
	case <-r.Context().Done():
		<-done // handlers in these tests return when the request ends
		return nil, r.Context().Err()
	}
}

// upstream is a scripted fake service: fn gets the 1-based hit number.
type upstream struct {
	hits atomic.Int32
	fn   func(hit int, w http.ResponseWriter, r *http.Request)

	mu     sync.Mutex
	bodies []string
	keys   []string
}

func newUpstream(fn func(hit int, w http.ResponseWriter, r *http.Request)) *upstream {
	return &upstream{fn: fn}
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(u.hits.Add(1))
	var b []byte
	if r.Body != nil {
		b, _ = io.ReadAll(r.Body)
	}
	u.mu.Lock()
	u.bodies = append(u.bodies, string(b))
	u.keys = append(u.keys, r.Header.Get("Idempotency-Key"))
	u.mu.Unlock()
	u.fn(n, w, r)
}

func (u *upstream) Hits() int { return int(u.hits.Load()) }

// memClient returns a Client whose requests u answers in memory.
func memClient(u http.Handler, cfg integrations.Config) *integrations.Client {
	cfg.HTTPClient = &http.Client{Transport: memTransport{u}}
	return integrations.New(cfg)
}

// recorder collects what an Observer sees.
type recorder struct {
	mu       sync.Mutex
	attempts []integrations.AttemptInfo
	changes  []string
}

func (r *recorder) OnAttempt(a integrations.AttemptInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
}

func (r *recorder) OnStateChange(key string, from, to integrations.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, key+":"+from.String()+"->"+to.String())
}

func (r *recorder) Attempts() []integrations.AttemptInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]integrations.AttemptInfo(nil), r.attempts...)
}

func (r *recorder) Changes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.changes...)
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func get(t testing.TB, c *integrations.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

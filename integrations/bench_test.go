package integrations_test

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/integrations"
)

// loopback is one httptest server shared by the Get benchmarks, so that
// both measure the same upstream.
var loopback = sync.OnceValue(func() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
})

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

func benchGet(b *testing.B, do func(*http.Request) (*http.Response, error)) {
	url := loopback().URL
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkPlainClientGet is the baseline: a bare *http.Client.
func BenchmarkPlainClientGet(b *testing.B) {
	hc := &http.Client{Transport: newTransport()}
	benchGet(b, hc.Do)
}

// BenchmarkClientGet sends the same requests through a Client with every
// default (breaker, retry policy, attempt timeout) and an observer.
func BenchmarkClientGet(b *testing.B) {
	c := integrations.New(integrations.Config{
		HTTPClient: &http.Client{Transport: newTransport()},
		Observer:   integrations.ObserverFuncs{Attempt: func(integrations.AttemptInfo) {}},
	})
	benchGet(b, c.Do)
}

// BenchmarkBreakerDecision measures the breaker's allow path of one attempt:
// key lookup, Allow and the success report.
func BenchmarkBreakerDecision(b *testing.B) {
	c := integrations.New(integrations.Config{})
	b.ReportAllocs()
	for b.Loop() {
		if err := c.BreakerDecision("svc.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// flaky fails half of the requests at random, from a fixed seed.
type flaky struct {
	mu  sync.Mutex
	rnd *rand.Rand
	p   float64

	calls int
}

func newFlaky(p float64) *flaky { return &flaky{rnd: rand.New(rand.NewPCG(1, 2)), p: p} }

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	fail := f.rnd.Float64() < f.p
	f.calls++
	f.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// BenchmarkUnderErrors sends logical GETs to an upstream that fails 50% of
// requests and reports the share that succeed thanks to retries, and the
// upstream requests per logical call. Waits are scaled down to microseconds
// and OpenTimeout to a millisecond so that the benchmark measures the
// policy, not sleeping; the default-breaker share therefore depends on that
// scaling. TestOutage gives the figures at the real defaults in fake time.
func BenchmarkUnderErrors(b *testing.B) {
	for _, bc := range []struct {
		name  string
		ratio float64
	}{
		{"retries-only", 2},    // the breaker never trips: the retry policy alone
		{"default-breaker", 0}, // FailureRatio 0.5 trips at this error rate
	} {
		b.Run(bc.name, func(b *testing.B) {
			up := newFlaky(0.5)
			c := integrations.New(integrations.Config{
				HTTPClient:      &http.Client{Transport: memTransport{up}},
				FailureRatio:    bc.ratio,
				InitialInterval: time.Microsecond,
				MaxInterval:     10 * time.Microsecond,
				OpenTimeout:     time.Millisecond,
			})
			ok := 0
			for b.Loop() {
				if resp, err := get(b, c, "http://flaky.test/"); err == nil && resp.StatusCode == 200 {
					ok++
				}
			}
			b.ReportMetric(float64(ok)/float64(b.N), "success-share")
			b.ReportMetric(float64(up.calls)/float64(b.N), "upstream-calls/op")
		})
	}
}

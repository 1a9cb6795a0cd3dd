package integrations_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/integrations"
)

// canned answers every request at once without I/O, so that the Overhead
// benchmarks measure only what the client adds.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Header: http.Header{}, Request: r}, nil
}

// BenchmarkOverhead compares a bare *http.Client and a Client over a
// transport that does no I/O: the difference is the client's own cost.
func BenchmarkOverhead(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		hc := &http.Client{Transport: canned{}}
		benchDo(b, hc.Do)
	})
	b.Run("client", func(b *testing.B) {
		c := integrations.New(integrations.Config{HTTPClient: &http.Client{Transport: canned{}}})
		benchDo(b, c.Do)
	})
}

func benchDo(b *testing.B, do func(*http.Request) (*http.Response, error)) {
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc.test/", nil)
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

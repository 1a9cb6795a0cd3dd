package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

var (
	testNow    = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	testClock  = func() time.Time { return testNow }
	stripeKey  = "whsec_stripe_test"
	stdSecret  = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stripeBody = []byte(`{"id":"evt_1","type":"invoice.paid","created":1740830400,"data":{"amount":100}}`)
)

type problemDoc struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// outcomes counts OnResult calls.
type outcomes struct {
	mu sync.Mutex
	m  map[string]int
}

func (o *outcomes) hook(provider, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]int{}
	}
	o.m[provider+"/"+outcome]++
}

func (o *outcomes) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[k]
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, detail string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p problemDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body %q: %v", rec.Body, err)
	}
	if p.Status != status || !strings.Contains(p.Detail, detail) {
		t.Fatalf("problem = %+v, want status %d and detail containing %q", p, status, detail)
	}
}

func stripeReceiver(sink webhooks.Sink, o *outcomes, logs io.Writer) *webhooks.Receiver {
	rc := &webhooks.Receiver{
		Provider: "stripe",
		Verifier: webhooks.Stripe{Secrets: []string{stripeKey}, Now: testClock},
		Sink:     sink,
		Now:      testClock,
	}
	if o != nil {
		rc.OnResult = o.hook
	}
	if logs != nil {
		rc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return rc
}

func stripeRequest(body []byte) *http.Request {
	return webhookstest.NewRequest("/webhooks/stripe", body, webhookstest.SignStripe(body, testNow, stripeKey))
}

func TestReceiverAcceptsThenDuplicate(t *testing.T) {
	t.Parallel()
	sink := &webhookstest.MemorySink{}
	var o outcomes
	rc := stripeReceiver(sink, &o, nil)

	rec := serve(rc, stripeRequest(stripeBody))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("first delivery: status %d, body %s", rec.Code, rec.Body)
	}
	var resp webhooks.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp != (webhooks.Response{Status: "accepted", ID: "evt_1"}) {
		t.Fatalf("response %s (%v)", rec.Body, err)
	}
	ev, ok := sink.Event("stripe", "evt_1")
	if !ok {
		t.Fatal("event not stored")
	}
	if ev.Type != "invoice.paid" || !ev.Timestamp.Equal(time.Unix(1740830400, 0)) || !ev.ReceivedAt.Equal(testNow) {
		t.Fatalf("stored event %+v", ev)
	}
	if !bytes.Equal(ev.Payload, stripeBody) {
		t.Fatalf("payload %s is not the raw body", ev.Payload)
	}
	if ev.Headers.Get("Stripe-Signature") == "" {
		t.Fatal("headers not kept")
	}

	rec = serve(rc, stripeRequest(stripeBody))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"duplicate"`) {
		t.Fatalf("second delivery: status %d, body %s", rec.Code, rec.Body)
	}
	if sink.Len() != 1 {
		t.Fatalf("%d events stored, want 1", sink.Len())
	}
	if o.get("stripe/accepted") != 1 || o.get("stripe/duplicate") != 1 {
		t.Fatalf("outcomes %v", o.m)
	}
}

func TestReceiverErrors(t *testing.T) {
	t.Parallel()
	stale := webhookstest.NewRequest("/", stripeBody, webhookstest.SignStripe(stripeBody, testNow.Add(-10*time.Minute), stripeKey))
	wrong := webhookstest.NewRequest("/", stripeBody, webhookstest.SignStripe(stripeBody, testNow, "whsec_other"))
	unsigned := webhookstest.NewRequest("/", stripeBody, nil)
	malformedHeader := webhookstest.NewRequest("/", stripeBody, http.Header{"Stripe-Signature": {"v1=abc"}})
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	notJSON := []byte(`{"id":"evt_1",`)
	noType := []byte(`{"id":"evt_1"}`)
	noID := []byte(`{"type":"x"}`)
	array := []byte(`[1]`)
	badTime := []byte(`{"id":"evt_1","type":"x","created":"soon"}`)
	big := []byte(`{"id":"evt_1","type":"x","pad":"` + strings.Repeat("a", 2<<20) + `"}`)
	bigUnknownLength := webhookstest.NewRequest("/", big, webhookstest.SignStripe(big, testNow, stripeKey))
	bigUnknownLength.Body = io.NopCloser(io.MultiReader(bytes.NewReader(big)))
	bigUnknownLength.ContentLength = -1

	for _, c := range []struct {
		name    string
		req     *http.Request
		status  int
		detail  string
		outcome string
	}{
		{"GET", get, 405, "method GET not allowed", "method_not_allowed"},
		{"stale", stale, 401, "timestamp outside tolerance", "unauthorized"},
		{"wrong secret", wrong, 401, "signature mismatch", "unauthorized"},
		{"unsigned", unsigned, 401, "missing header Stripe-Signature", "unauthorized"},
		{"malformed header", malformedHeader, 401, "malformed header Stripe-Signature", "unauthorized"},
		{"not JSON", stripeRequest(notJSON), 400, "not valid JSON", "rejected"},
		{"no type", stripeRequest(noType), 400, "missing type", "rejected"},
		{"no id", stripeRequest(noID), 400, "missing id", "rejected"},
		{"not an object", stripeRequest(array), 400, "not a JSON object", "rejected"},
		{"bad time", stripeRequest(badTime), 400, `field "created" is not a time`, "rejected"},
		{"too large", stripeRequest(big), 413, "body larger than 1048576 bytes", "too_large"},
		{"too large, unknown length", bigUnknownLength, 413, "body larger than", "too_large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &webhookstest.MemorySink{}
			var o outcomes
			rec := serve(stripeReceiver(sink, &o, nil), c.req)
			wantProblem(t, rec, c.status, c.detail)
			if c.status == 405 && rec.Header().Get("Allow") != "POST" {
				t.Fatalf("Allow = %q", rec.Header().Get("Allow"))
			}
			if sink.Len() != 0 {
				t.Fatal("a refused event was stored")
			}
			if o.get("stripe/"+c.outcome) != 1 {
				t.Fatalf("outcomes %v, want %s", o.m, c.outcome)
			}
		})
	}
}

func TestReceiverStandardWebhooksReasons(t *testing.T) {
	t.Parallel()
	body := []byte(`{"type":"user.created","timestamp":"2025-03-01T11:59:00Z","data":{}}`)
	sink := &webhookstest.MemorySink{}
	rc := &webhooks.Receiver{Provider: "users",
		Verifier: webhooks.StandardWebhooks{Secrets: []string{stdSecret}, Now: testClock}, Sink: sink}

	h := webhookstest.SignStandard("msg_1", body, testNow, stdSecret)
	h.Del("webhook-signature")
	wantProblem(t, serve(rc, webhookstest.NewRequest("/", body, h)), 401, "missing header webhook-signature")

	rec := serve(rc, webhookstest.NewRequest("/", body, webhookstest.SignStandard("msg_1", body, testNow, stdSecret)))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// The default parser for Standard Webhooks takes the id from webhook-id.
	ev, ok := sink.Event("users", "msg_1")
	if !ok || ev.Type != "user.created" || !ev.Timestamp.Equal(testNow.Add(-time.Minute)) {
		t.Fatalf("event %+v, %v", ev, ok)
	}
}

func TestReceiverGitHubDefaultParser(t *testing.T) {
	t.Parallel()
	body := []byte(`{"action":"opened","number":1}`)
	sink := &webhookstest.MemorySink{}
	rc := &webhooks.Receiver{Provider: "github", Verifier: &webhooks.GitHub{Secrets: []string{"gh"}}, Sink: sink}
	h := webhookstest.SignGitHub(body, "gh")
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	h.Set("X-GitHub-Event", "pull_request")
	if rec := serve(rc, webhookstest.NewRequest("/", body, h)); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ev, ok := sink.Event("github", "72d3162e-cc78-11e3-81ab-4c9367dc0958"); !ok || ev.Type != "pull_request" {
		t.Fatalf("event %+v, %v", ev, ok)
	}
}

func TestReceiverSinkFailures(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	sink := &webhookstest.MemorySink{}
	sink.FailWith(errors.New("database is down"))
	var o outcomes
	rec := serve(stripeReceiver(sink, &o, &logs), stripeRequest(stripeBody))
	wantProblem(t, rec, 500, "internal error")
	if strings.Contains(rec.Body.String(), "database") {
		t.Fatal("internal error detail leaked to the client")
	}
	if !strings.Contains(logs.String(), "database is down") || !strings.Contains(logs.String(), "evt_1") {
		t.Fatalf("sink failure not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), stripeKey) {
		t.Fatal("secret in logs")
	}
	if o.get("stripe/error") != 1 {
		t.Fatalf("outcomes %v", o.m)
	}

	// A sink may reject an event as malformed.
	reject := webhooks.SinkFunc(func(ctx context.Context, ev *webhooks.Event) (bool, error) {
		return false, errors.Join(webhooks.ErrMalformedEvent, errors.New("unknown event type"))
	})
	wantProblem(t, serve(stripeReceiver(reject, nil, nil), stripeRequest(stripeBody)), 400, "unknown event type")

	// A sink may find the source gone since the request was resolved.
	gone := webhooks.SinkFunc(func(ctx context.Context, ev *webhooks.Event) (bool, error) {
		return false, fmt.Errorf("%w: connection deleted", webhooks.ErrUnknownSource)
	})
	wantProblem(t, serve(stripeReceiver(gone, nil, nil), stripeRequest(stripeBody)), 404, "unknown webhook source")
}

func TestReceiverFailsClosed(t *testing.T) {
	t.Parallel()
	sink := &webhookstest.MemorySink{}
	for name, rc := range map[string]*webhooks.Receiver{
		"no verifier": {Provider: "p", Sink: sink},
		"no sink":     {Provider: "p", Verifier: webhooks.Stripe{Secrets: []string{stripeKey}, Now: testClock}},
		"no secrets":  {Provider: "p", Verifier: webhooks.Stripe{Now: testClock}, Sink: sink},
		"parser error": {Provider: "p", Verifier: webhooks.Stripe{Secrets: []string{stripeKey}, Now: testClock}, Sink: sink,
			Parser: webhooks.ParserFunc(func(http.Header, []byte) (webhooks.Event, error) { return webhooks.Event{}, io.ErrUnexpectedEOF })},
	} {
		wantProblem(t, serve(rc, stripeRequest(stripeBody)), 500, "internal error")
		if sink.Len() != 0 {
			t.Fatalf("%s: event stored", name)
		}
	}
}

type connKey struct{}

func TestReceiverResolve(t *testing.T) {
	t.Parallel()
	// Two connections of one provider, each with its own secret and tenant.
	conns := map[string]struct{ secret, tenant string }{
		"conn-a": {"whsec_a", "tenant-a"},
		"conn-b": {"whsec_b", "tenant-b"},
	}
	var mu sync.Mutex
	tenants := map[string]string{}
	sink := webhooks.SinkFunc(func(ctx context.Context, ev *webhooks.Event) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		tenant, _ := ctx.Value(connKey{}).(string)
		tenants[ev.ID] = tenant
		return false, nil
	})
	rc := &webhooks.Receiver{
		Provider: "stripe",
		Sink:     sink,
		Resolve: func(r *http.Request) (webhooks.Verifier, context.Context, error) {
			c, ok := conns[r.PathValue("conn")]
			if !ok {
				return nil, nil, webhooks.ErrUnknownSource
			}
			return webhooks.Stripe{Secrets: []string{c.secret}, Now: testClock}, context.WithValue(r.Context(), connKey{}, c.tenant), nil
		},
	}
	mux := http.NewServeMux()
	mux.Handle("POST /hooks/{conn}", rc)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(conn, secret, id string) int {
		body := []byte(`{"id":"` + id + `","type":"t"}`)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/hooks/"+conn, bytes.NewReader(body))
		for k, v := range webhookstest.SignStripe(body, testNow, secret) {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("conn-a", "whsec_a", "e1"); got != 202 {
		t.Fatalf("conn-a: %d", got)
	}
	if got := post("conn-b", "whsec_b", "e2"); got != 202 {
		t.Fatalf("conn-b: %d", got)
	}
	// Signed with a's secret but posted to b: refused, b's tenant never used.
	if got := post("conn-b", "whsec_a", "e3"); got != 401 {
		t.Fatalf("cross-connection: %d", got)
	}
	if got := post("conn-x", "whsec_a", "e4"); got != 404 {
		t.Fatalf("unknown connection: %d", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tenants) != 2 || tenants["e1"] != "tenant-a" || tenants["e2"] != "tenant-b" {
		t.Fatalf("tenants seen by the sink: %v", tenants)
	}

	failing := &webhooks.Receiver{Provider: "p", Sink: sink, Resolve: func(*http.Request) (webhooks.Verifier, context.Context, error) {
		return nil, nil, errors.New("lookup failed")
	}}
	wantProblem(t, serve(failing, stripeRequest(stripeBody)), 500, "internal error")
}

func TestReceiverRequestContextReachesSink(t *testing.T) {
	t.Parallel()
	type reqKey struct{}
	var got any
	sink := webhooks.SinkFunc(func(ctx context.Context, ev *webhooks.Event) (bool, error) {
		got = ctx.Value(reqKey{})
		return false, nil
	})
	req := stripeRequest(stripeBody)
	req = req.WithContext(context.WithValue(req.Context(), reqKey{}, "req-123"))
	if rec := serve(stripeReceiver(sink, nil, nil), req); rec.Code != 202 {
		t.Fatalf("status %d", rec.Code)
	}
	if got != "req-123" {
		t.Fatalf("sink saw %v", got)
	}
}

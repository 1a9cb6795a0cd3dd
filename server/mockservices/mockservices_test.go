package mockservices_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/saaskit/saaskit/server/mockservices"
	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// platform is a receiver that verifies webhooks the way the server does
// (Standard Webhooks with the connection's secret) into a memory sink.
type platform struct {
	srv    *httptest.Server
	sink   *webhookstest.MemorySink
	secret string
}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	p := &platform{sink: &webhookstest.MemorySink{}, secret: webhookstest.GenerateStandardSecret()}
	p.srv = httptest.NewServer(&webhooks.Receiver{Provider: "user-service",
		Verifier: webhooks.StandardWebhooks{Secrets: []string{p.secret}}, Sink: p.sink})
	t.Cleanup(p.srv.Close)
	return p
}

func call(t *testing.T, h http.Handler, method, path string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(b)))
	return rec
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return v
}

type page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

func TestUserServiceREST(t *testing.T) {
	t.Parallel()
	users, err := mockservices.NewUserService(mockservices.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		rec := call(t, users, "POST", "/v1/users", map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "full_name": "U"})
		if rec.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
	}
	if rec := call(t, users, "POST", "/v1/users", map[string]any{"email": "u1@example.com"}); rec.Code != http.StatusConflict {
		t.Fatalf("duplicate email: %d", rec.Code)
	}
	if rec := call(t, users, "POST", "/v1/users", map[string]any{"email": "x@example.com", "role": "owner"}); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("bad role: %d", rec.Code)
	}
	// Pages of two, in creation order, until the cursor runs out.
	var ids []string
	cursor := ""
	for range 5 {
		rec := call(t, users, "GET", "/v1/users?limit=2&cursor="+cursor, nil)
		p := decodeBody[page[mockservices.User]](t, rec)
		for _, u := range p.Data {
			ids = append(ids, u.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(ids, ","); got != "usr_000001,usr_000002,usr_000003,usr_000004,usr_000005" {
		t.Fatalf("pages: %s", got)
	}
	rec := call(t, users, "PATCH", "/v1/users/usr_000002", map[string]any{"role": "admin", "active": false})
	u := decodeBody[mockservices.User](t, rec)
	if rec.Code != http.StatusOK || u.Role != "admin" || u.Active || !u.UpdatedAt.After(u.CreatedAt) {
		t.Fatalf("update: %d %+v", rec.Code, u)
	}
	if got := decodeBody[mockservices.User](t, call(t, users, "GET", "/v1/users/usr_000002", nil)); got != u {
		t.Fatalf("get after update: %+v", got)
	}
	if rec := call(t, users, "DELETE", "/v1/users/usr_000002", nil); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d", rec.Code)
	}
	if rec := call(t, users, "GET", "/v1/users/usr_000002", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("get deleted: %d", rec.Code)
	}
	if n := len(users.Users()); n != 4 {
		t.Fatalf("users: %d", n)
	}
	if rec := call(t, users, "GET", "/v1/users?limit=0", nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("limit 0: %d", rec.Code)
	}
	if rec := call(t, users, "GET", "/v1/health", nil); rec.Code != http.StatusOK {
		t.Fatalf("health: %d", rec.Code)
	}
}

func TestPaymentServiceREST(t *testing.T) {
	t.Parallel()
	pay, err := mockservices.NewPaymentService(mockservices.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := call(t, pay, "POST", "/v1/subscriptions", map[string]any{"plan": "pro"})
	sub := decodeBody[mockservices.Subscription](t, rec)
	if rec.Code != http.StatusCreated || sub.Plan != "pro" || sub.Status != "active" {
		t.Fatalf("create: %d %+v", rec.Code, sub)
	}
	rec = call(t, pay, "POST", "/v1/payments", map[string]any{"subscription": sub.ID, "status": "failed"})
	p := decodeBody[mockservices.Payment](t, rec)
	if rec.Code != http.StatusCreated || p.UnpaidSince == nil || p.Subscription != sub.ID {
		t.Fatalf("failed payment: %d %+v", rec.Code, p)
	}
	if got := decodeBody[mockservices.Subscription](t, call(t, pay, "GET", "/v1/subscriptions/"+sub.ID, nil)); got.Status != "past_due" {
		t.Fatalf("after failed payment: %+v", got)
	}
	call(t, pay, "POST", "/v1/payments", map[string]any{"subscription": sub.ID, "status": "succeeded"})
	if got := decodeBody[mockservices.Subscription](t, call(t, pay, "GET", "/v1/subscriptions/"+sub.ID, nil)); got.Status != "active" || got.UnpaidSince != nil {
		t.Fatalf("after payment: %+v", got)
	}
	if rec := call(t, pay, "PATCH", "/v1/subscriptions/"+sub.ID, map[string]any{"plan": "enterprise"}); rec.Code != http.StatusOK {
		t.Fatalf("update: %d", rec.Code)
	}
	if rec := call(t, pay, "POST", "/v1/subscriptions/"+sub.ID+"/cancel", nil); rec.Code != http.StatusOK {
		t.Fatalf("cancel: %d", rec.Code)
	}
	if rec := call(t, pay, "POST", "/v1/subscriptions/"+sub.ID+"/cancel", nil); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("cancel twice: %d", rec.Code)
	}
	subs := pay.Subscriptions()
	if len(subs) != 1 || subs[0].Plan != "enterprise" || subs[0].Status != "canceled" {
		t.Fatalf("subscriptions: %+v", subs)
	}
	if p := decodeBody[page[mockservices.Payment]](t, call(t, pay, "GET", "/v1/payments", nil)); len(p.Data) != 2 {
		t.Fatalf("payments: %+v", p)
	}
	var types []string
	for _, d := range pay.Sender().Deliveries() {
		types = append(types, d.Type)
	}
	want := "subscription.created,payment.failed,payment.succeeded,subscription.updated,subscription.canceled"
	if got := strings.Join(types, ","); got != want {
		t.Fatalf("events: %s", got)
	}
}

func TestWebhooksArriveSignedAndVerify(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	users, err := mockservices.NewUserService(mockservices.Config{Webhook: mockservices.Webhook{URL: p.srv.URL, Secret: p.secret}})
	if err != nil {
		t.Fatal(err)
	}
	call(t, users, "POST", "/v1/users", map[string]any{"email": "a@example.com"})
	call(t, users, "PATCH", "/v1/users/usr_000001", map[string]any{"full_name": "Ann"})
	call(t, users, "DELETE", "/v1/users/usr_000001", nil)
	ds := users.Sender().Deliveries()
	if len(ds) != 3 {
		t.Fatalf("deliveries: %d", len(ds))
	}
	for _, d := range ds {
		if d.Err != nil || d.Status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %v", d.Type, d.Status, d.Err)
		}
		ev, ok := p.sink.Event("user-service", d.EventID)
		if !ok || ev.Type != d.Type {
			t.Fatalf("event %s not received: %+v", d.EventID, ev)
		}
		var body struct {
			Data mockservices.User `json:"data"`
		}
		if err := json.Unmarshal(ev.Payload, &body); err != nil || body.Data.ID != "usr_000001" {
			t.Fatalf("payload %s: %v", ev.Payload, err)
		}
	}

	// A service with another secret is refused by the same platform.
	other, _ := mockservices.NewUserService(mockservices.Config{Webhook: mockservices.Webhook{URL: p.srv.URL, Secret: webhookstest.GenerateStandardSecret()}})
	call(t, other, "POST", "/v1/users", map[string]any{"email": "b@example.com"})
	if d := other.Sender().Deliveries()[0]; d.Status != http.StatusUnauthorized || d.Err == nil {
		t.Fatalf("wrong secret: %d %v", d.Status, d.Err)
	}
	if _, err := mockservices.NewUserService(mockservices.Config{Webhook: mockservices.Webhook{Secret: "nope"}}); err == nil {
		t.Fatal("bad secret accepted")
	}
}

func TestSignVerifies(t *testing.T) {
	t.Parallel()
	secret := webhookstest.GenerateStandardSecret()
	at := time.Now()
	body := []byte(`{"id":"evt_1","type":"user.created","data":{}}`)
	h, err := mockservices.Sign(secret, "evt_1", body, at)
	if err != nil {
		t.Fatal(err)
	}
	v := webhooks.StandardWebhooks{Secrets: []string{secret}}
	r := webhookstest.NewRequest("http://platform/hook", body, h)
	if err := v.Verify(r, body); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if want := webhookstest.SignStandard("evt_1", body, at, secret); want.Get("webhook-signature") != h.Get("webhook-signature") {
		t.Fatalf("signature differs from webhookstest: %s", h.Get("webhook-signature"))
	}
	if err := v.Verify(r, append(body, ' ')); err == nil {
		t.Fatal("changed body verified")
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults mockservices.Faults
		status int
		check  func(t *testing.T, rec *httptest.ResponseRecorder)
	}{
		{"error", mockservices.Faults{ErrorRate: 1}, http.StatusInternalServerError, nil},
		{"down", mockservices.Faults{Down: true}, http.StatusServiceUnavailable, nil},
		{"rate limit", mockservices.Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second}, http.StatusTooManyRequests,
			func(t *testing.T, rec *httptest.ResponseRecorder) {
				if got := rec.Header().Get("Retry-After"); got != "3" {
					t.Fatalf("Retry-After %q", got)
				}
			}},
		{"rate limit default", mockservices.Faults{RateLimitRate: 1}, http.StatusTooManyRequests,
			func(t *testing.T, rec *httptest.ResponseRecorder) {
				if got := rec.Header().Get("Retry-After"); got != "1" {
					t.Fatalf("Retry-After %q", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			users, _ := mockservices.NewUserService(mockservices.Config{Faults: tt.faults})
			rec := call(t, users, "GET", "/v1/users", nil)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			if tt.check != nil {
				tt.check(t, rec)
			}
			// The health check is only faulted when the service is down.
			if rec := call(t, users, "GET", "/v1/health", nil); (rec.Code == http.StatusOK) == tt.faults.Down {
				t.Fatalf("health: %d", rec.Code)
			}
			// Clearing the faults through the admin endpoint heals it.
			if rec := call(t, users, "PUT", "/admin/faults", map[string]any{}); rec.Code != http.StatusOK {
				t.Fatalf("admin: %d %s", rec.Code, rec.Body)
			}
			if rec := call(t, users, "GET", "/v1/users", nil); rec.Code != http.StatusOK {
				t.Fatalf("after clearing: %d", rec.Code)
			}
		})
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		users, _ := mockservices.NewUserService(mockservices.Config{Faults: mockservices.Faults{Latency: 2 * time.Second}})
		start := time.Now()
		rec := call(t, users, "GET", "/v1/users", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("answered after %v, want 2s", d)
		}
	})
}

func TestFaultTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		users, _ := mockservices.NewUserService(mockservices.Config{Faults: mockservices.Faults{TimeoutRate: 1}})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		start := time.Now()
		rec := httptest.NewRecorder()
		users.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/users", nil).WithContext(ctx))
		if d := time.Since(start); d != 30*time.Second {
			t.Fatalf("returned after %v, want when the caller gave up (30s)", d)
		}
		if rec.Body.Len() != 0 {
			t.Fatalf("answered: %s", rec.Body)
		}
	})
}

func TestFaultDroppedWebhooks(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	users, _ := mockservices.NewUserService(mockservices.Config{Webhook: mockservices.Webhook{URL: p.srv.URL, Secret: p.secret},
		Faults: mockservices.Faults{DropWebhookRate: 1}})
	if rec := call(t, users, "POST", "/v1/users", map[string]any{"email": "a@example.com"}); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d", rec.Code)
	}
	if d := users.Sender().Deliveries(); len(d) != 1 || !d[0].Dropped || d[0].Status != 0 {
		t.Fatalf("deliveries: %+v", d)
	}
	if n := p.sink.Len(); n != 0 {
		t.Fatalf("platform received %d events", n)
	}
}

func TestFaultsSeeded(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) string {
		users, _ := mockservices.NewUserService(mockservices.Config{Seed: seed, Faults: mockservices.Faults{ErrorRate: 0.5}})
		var b strings.Builder
		for range 40 {
			if call(t, users, "GET", "/v1/users", nil).Code == http.StatusOK {
				b.WriteByte('.')
			} else {
				b.WriteByte('x')
			}
		}
		return b.String()
	}
	a, b := run(7), run(7)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if n := strings.Count(a, "x"); n == 0 || n == 40 {
		t.Fatalf("error rate 0.5 failed %d of 40", n)
	}
	if run(8) == a {
		t.Fatal("another seed gave the same faults")
	}
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	users, _ := mockservices.NewUserService(mockservices.Config{})
	rec := call(t, users, "PUT", "/admin/faults", map[string]any{"error_rate": 0.25, "latency": "150ms", "retry_after": "2s"})
	f := decodeBody[mockservices.Faults](t, rec)
	if rec.Code != http.StatusOK || f.ErrorRate != 0.25 || f.Latency != 150*time.Millisecond || f.RetryAfter != 2*time.Second {
		t.Fatalf("put: %d %+v", rec.Code, f)
	}
	if got := users.Faults(); got != f {
		t.Fatalf("faults in force: %+v", got)
	}
	if got := decodeBody[mockservices.Faults](t, call(t, users, "GET", "/admin/faults", nil)); got != f {
		t.Fatalf("get: %+v", got)
	}
	for _, bad := range []map[string]any{{"error_rate": 2}, {"latency": "soon"}, {"timeout_rate": -1}} {
		if rec := call(t, users, "PUT", "/admin/faults", bad); rec.Code != http.StatusBadRequest {
			t.Fatalf("%v: %d", bad, rec.Code)
		}
	}
	if rec := call(t, users, "DELETE", "/admin/faults", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("delete: %d", rec.Code)
	}
}

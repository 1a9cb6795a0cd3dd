package webhooks_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

func BenchmarkVerifyStandard(b *testing.B) {
	body := []byte(`{"type":"user.created","timestamp":"2025-03-01T12:00:00Z","data":{"id":"u_1","email":"a@example.com"}}`)
	r := webhookstest.NewRequest("/", body, webhookstest.SignStandard("msg_1", body, testNow, stdSecret))
	v := webhooks.StandardWebhooks{Secrets: []string{stdSecret}, Now: testClock}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReceiver(b *testing.B) {
	body := []byte(`{"id":"evt_1","type":"invoice.paid","created":1740830400,"data":{"amount":100}}`)
	h := webhookstest.SignStripe(body, testNow, stripeKey)
	rc := &webhooks.Receiver{
		Provider: "stripe",
		Verifier: webhooks.Stripe{Secrets: []string{stripeKey}, Now: func() time.Time { return testNow }},
		Sink:     webhooks.SinkFunc(func(context.Context, *webhooks.Event) (bool, error) { return false, nil }),
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		rc.ServeHTTP(rec, webhookstest.NewRequest("/", body, h))
		if rec.Code != http.StatusAccepted {
			b.Fatal(rec.Code)
		}
	}
}

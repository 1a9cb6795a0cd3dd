package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// TestWebhookObservability sends webhooks through the real receivers with
// the workers on and a tracer: the received and refused counters, the
// batch jobs' outcomes, and the job span linked to the request that
// queued it.
func TestWebhookObservability(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		s := newWebhookServer(t, db, Options{TracerProvider: tp})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		body := event("evt_1", "user.created", map[string]any{"id": "u1", "email": "u1@example.com"})
		if r := s.send(c, "evt_1", body, time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatal(r.Status)
		}
		if r := s.send(c, "evt_1", body, time.Now(), "whsec_"+strings.Repeat("QUJD", 8)); r.Status != http.StatusUnauthorized {
			t.Fatal(r.Status)
		}
		batch := []byte(`[{"id":"evt_2","type":"user.created","data":{"id":"u2","email":"u2@example.com"}},{"nope":1}]`)
		if r := s.doH("POST", c.WebhookURL+"batch/", "", batch, webhookstest.SignStandard("b1", batch, time.Now(), c.Secret)); r.Status != http.StatusMultiStatus {
			t.Fatal(r.Status, string(r.Body))
		}
		s.waitEvent(owner, "evt_1", EventProcessed)
		s.waitEvent(owner, "evt_2", EventProcessed)
		waitJobsSettled(t, s.srv)
		body2 := s.scrape()
		wantMetric(t, body2, 2, "saaskit_webhooks_received_total", "outcome=accepted")
		wantMetric(t, body2, 1, "saaskit_webhooks_rejected_total", "reason=signature")
		wantMetric(t, body2, 1, "saaskit_webhooks_rejected_total", "reason=malformed")
		wantMetric(t, body2, 2, "saaskit_jobs_worked_total", "kind=webhook_batch", "outcome=completed")
		// Each batch job's span links to the request whose commit queued
		// it (a single event's or the batch's).
		requests := map[string]bool{}
		var jobs []sdktrace.ReadOnlySpan
		for _, sp := range rec.Ended() {
			switch sp.Name() {
			case "POST /api/integrations/webhooks/user-service/{connection}/",
				"POST /api/integrations/webhooks/user-service/{connection}/batch/":
				requests[sp.SpanContext().TraceID().String()] = true
			case "job webhook_batch":
				jobs = append(jobs, sp)
			}
		}
		if len(requests) != 3 || len(jobs) != 2 {
			t.Fatalf("spans %v", spanNames(rec.Ended()))
		}
		for _, job := range jobs {
			if l := job.Links(); len(l) != 1 || !requests[l[0].SpanContext.TraceID().String()] {
				t.Errorf("job links %+v, want one to a request's trace", l)
			}
		}
	})
}

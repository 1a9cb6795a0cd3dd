package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// fastWorkers makes jobs run and retry within milliseconds.
func fastWorkers(c *Config) {
	c.WorkerPollInterval = 5 * time.Millisecond
	c.WebhookRetryBase = time.Millisecond
	c.WebhookRetryMax = 5 * time.Millisecond
	c.WebhookMaxAttempts = 3
}

// newWebhookServer is a test server whose workers run.
func newWebhookServer(t *testing.T, db *dbtest.DB, opts Options) *testServer {
	t.Helper()
	ts := newTestServerOpts(t, db, opts, fastWorkers)
	if err := ts.srv.StartWorkers(t.Context()); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (s *testServer) connect(admin session, provider, account string) ConnectionView {
	s.t.Helper()
	r := s.must(http.StatusCreated, "POST", "/api/integrations/connections/", admin.Access,
		map[string]any{"provider": provider, "external_account": account})
	var c ConnectionView
	r.decode(s.t, &c)
	if !strings.HasPrefix(c.Secret, "whsec_") || c.ActiveSecrets != 1 {
		s.t.Fatalf("connection %+v: want a whsec_ secret", c)
	}
	return c
}

// event is a provider event body.
func event(id, typ string, data map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "type": typ, "data": data})
	return b
}

// send posts a body signed with secret to the connection's webhook URL.
func (s *testServer) send(c ConnectionView, id string, body []byte, at time.Time, secret string) *response {
	s.t.Helper()
	return s.doH("POST", c.WebhookURL, "", body, webhookstest.SignStandard(id, body, at, secret))
}

// events lists the tenant's events (first page, up to 100).
func (s *testServer) events(admin session, query string) []EventView {
	s.t.Helper()
	r := s.must(http.StatusOK, "GET", "/api/integrations/events/?limit=100"+query, admin.Access, nil)
	var p Page[EventView]
	r.decode(s.t, &p)
	return p.Items
}

// waitEvent polls until the event with the external id reaches status.
func (s *testServer) waitEvent(admin session, eventID, status string) EventView {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last EventView
	for time.Now().Before(deadline) {
		for _, e := range s.events(admin, "") {
			if e.EventID == eventID {
				last = e
				if e.Status == status {
					return e
				}
			}
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a timing assertion
	}
	s.t.Fatalf("event %s: status %q (attempts %d, last error %q), want %q", eventID, last.Status, last.Attempts, last.LastError, status)
	return last
}

func (s *testServer) members(admin session) map[string]string {
	s.t.Helper()
	r := s.must(http.StatusOK, "GET", "/api/users/?limit=100", admin.Access, nil)
	var p Page[UserView]
	r.decode(s.t, &p)
	out := map[string]string{}
	for _, m := range p.Items {
		out[m.Email] = string(m.Role)
	}
	return out
}

// auditEvents reads the tenant's audit events with the action through the
// audit API.
func (s *testServer) auditEvents(owner session, action string) []AuditEventView {
	s.t.Helper()
	return s.auditLog(owner.Access, "action="+action)
}

func TestWebhookUserCreatedEndToEnd(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme-directory")

		body := event("evt_1", "user.created", map[string]any{"id": "u1", "email": "Ada@Example.com", "full_name": "Ada", "role": "admin"})
		r := s.send(c, "evt_1", body, time.Now(), c.Secret)
		if r.Status != http.StatusAccepted || r.JSON()["status"] != "accepted" {
			t.Fatalf("first delivery: %d %s", r.Status, r.Body)
		}
		e := s.waitEvent(owner, "evt_1", EventProcessed)
		if e.Attempts != 1 || e.LastError != "" || e.ProcessedAt == nil {
			t.Fatalf("processed event %+v", e)
		}
		if got := s.members(owner)["ada@example.com"]; got != "admin" {
			t.Fatalf("member role %q, want admin", got)
		}
		created := s.auditEvents(owner, ActionMemberCreated)
		var byIntegration []AuditEventView
		for _, ev := range created {
			if ev.Actor.Type == audit.ActorIntegration && ev.Actor.ID == ProviderUserService {
				byIntegration = append(byIntegration, ev)
			}
		}
		if len(byIntegration) != 1 {
			t.Fatalf("%d member.created events by integration:user-service, want 1: %+v", len(byIntegration), created)
		}

		// The sender retries: 200, stored once, applied once.
		r = s.send(c, "evt_1", body, time.Now(), c.Secret)
		if r.Status != http.StatusOK || r.JSON()["status"] != "duplicate" {
			t.Fatalf("duplicate delivery: %d %s", r.Status, r.Body)
		}
		if evs := s.events(owner, ""); len(evs) != 1 {
			t.Fatalf("%d events stored, want 1", len(evs))
		}
		if n := len(s.auditEvents(owner, ActionMemberCreated)); n != len(created) {
			t.Fatalf("duplicate recorded another member.created: %d, want %d", n, len(created))
		}

		// The detail carries the payload; other tenants do not see it.
		d := s.must(http.StatusOK, "GET", "/api/integrations/events/"+e.ID.String()+"/", owner.Access, nil)
		var dv EventView
		d.decode(t, &dv)
		if !strings.Contains(string(dv.Payload), `"u1"`) {
			t.Fatalf("detail payload %s", dv.Payload)
		}
		other := s.register("other@example.com", "Other")
		problemOf(t, s.do("GET", "/api/integrations/events/"+e.ID.String()+"/", other.Access, nil), http.StatusNotFound)
		problemOf(t, s.do("POST", "/api/integrations/events/"+e.ID.String()+"/replay/", other.Access, nil), http.StatusNotFound)
		if evs := s.events(other, ""); len(evs) != 0 {
			t.Fatalf("other tenant sees %d events", len(evs))
		}
		plain := s.addMember(owner, "plain@example.com", "user")
		problemOf(t, s.do("GET", "/api/integrations/events/", plain.Access, nil), http.StatusForbidden)

		// A replay of a processed event changes nothing.
		s.must(http.StatusAccepted, "POST", "/api/integrations/events/"+e.ID.String()+"/replay/", owner.Access, nil)
		s.waitEvent(owner, "evt_1", EventProcessed)
		if n := len(s.auditEvents(owner, ActionMemberCreated)); n != len(created)+1 { // +1: plain's creation
			t.Fatalf("replay changed members: %d member.created, want %d", n, len(created)+1)
		}
	})
}

func TestWebhookRejectionsStoreNothing(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db, fastWorkers)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		pay := s.connect(owner, ProviderPaymentService, "acme-billing")
		body := event("evt_1", "user.created", map[string]any{"id": "u1", "email": "a@example.com"})
		other := webhookstest.GenerateStandardSecret()

		cases := []struct {
			name   string
			path   string
			body   []byte
			hdr    http.Header
			status int
			detail string
		}{
			{"bad signature", c.WebhookURL, body, webhookstest.SignStandard("evt_1", body, time.Now(), other), 401, "signature"},
			{"stale timestamp", c.WebhookURL, body, webhookstest.SignStandard("evt_1", body, time.Now().Add(-time.Hour), c.Secret), 401, "timestamp"},
			{"no signature", c.WebhookURL, body, nil, 401, "webhook-"},
			{"oversize", c.WebhookURL, []byte(`{"id":"x","type":"user.created","pad":"` + strings.Repeat("a", 1<<20) + `"}`), nil, 413, "larger"},
			{"malformed", c.WebhookURL, []byte(`{"type":`), webhookstest.SignStandard("evt_2", []byte(`{"type":`), time.Now(), c.Secret), 400, ""},
			{"unknown provider", "/api/integrations/webhooks/nope/" + c.ID.String() + "/", body, webhookstest.SignStandard("evt_1", body, time.Now(), c.Secret), 404, "provider"},
			{"unknown connection", "/api/integrations/webhooks/user-service/" + uuid.NewString() + "/", body, webhookstest.SignStandard("evt_1", body, time.Now(), c.Secret), 404, "unknown"},
			{"connection of another provider", "/api/integrations/webhooks/user-service/" + pay.ID.String() + "/", body, webhookstest.SignStandard("evt_1", body, time.Now(), pay.Secret), 404, "unknown"},
			{"not a uuid", "/api/integrations/webhooks/user-service/abc/", body, webhookstest.SignStandard("evt_1", body, time.Now(), c.Secret), 404, "unknown"},
		}
		for _, tc := range cases {
			r := s.doH("POST", tc.path, "", tc.body, tc.hdr)
			p := problemOf(t, r, tc.status)
			if d, _ := p["detail"].(string); !strings.Contains(strings.ToLower(d), tc.detail) {
				t.Errorf("%s: detail %q, want it to mention %q", tc.name, d, tc.detail)
			}
		}
		if evs := s.events(owner, ""); len(evs) != 0 {
			t.Fatalf("rejected requests stored %d events", len(evs))
		}
		// The old secret keeps working during a rotation, not after it.
		r := s.must(http.StatusOK, "POST", "/api/integrations/connections/"+c.ID.String()+"/rotate-secret/", owner.Access, map[string]any{})
		var rot ConnectionView
		r.decode(t, &rot)
		if rot.ActiveSecrets != 2 || rot.Secret == c.Secret {
			t.Fatalf("rotation %+v", rot)
		}
		if r := s.send(c, "evt_old", event("evt_old", "user.created", map[string]any{"id": "u1", "email": "a@example.com"}), time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatalf("old secret during rotation: %d %s", r.Status, r.Body)
		}
		s.must(http.StatusOK, "POST", "/api/integrations/connections/"+c.ID.String()+"/rotate-secret/", owner.Access, map[string]any{"retire_previous": true})
		problemOf(t, s.send(c, "evt_old2", event("evt_old2", "user.created", map[string]any{"id": "u1"}), time.Now(), c.Secret), http.StatusUnauthorized)
		// A deleted connection receives nothing.
		s.must(http.StatusNoContent, "DELETE", "/api/integrations/connections/"+c.ID.String()+"/", owner.Access, nil)
		problemOf(t, s.send(c, "evt_3", body, time.Now(), rot.Secret), http.StatusNotFound)
	})
}

func TestWebhookRetriesThenDeadLetterAndReplay(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		var mu sync.Mutex
		broken := true
		hook := func(ctx context.Context, ev *WebhookEvent, attempt int) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case ev.EventID == "evt_flaky" && attempt <= 2:
				return fmt.Errorf("flaky downstream, attempt %d", attempt)
			case ev.EventID == "evt_broken" && broken:
				return errors.New("downstream is down")
			}
			return nil
		}
		s := newWebhookServer(t, db, Options{ProcessHook: hook})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")

		flaky := event("evt_flaky", "user.created", map[string]any{"id": "u1", "email": "flaky@example.com"})
		if r := s.send(c, "evt_flaky", flaky, time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		e := s.waitEvent(owner, "evt_flaky", EventProcessed)
		if e.Attempts != 3 {
			t.Fatalf("flaky event processed after %d attempts, want 3", e.Attempts)
		}
		if _, ok := s.members(owner)["flaky@example.com"]; !ok {
			t.Fatal("flaky event's member missing")
		}

		bad := event("evt_broken", "user.created", map[string]any{"id": "u2", "email": "broken@example.com"})
		if r := s.send(c, "evt_broken", bad, time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		e = s.waitEvent(owner, "evt_broken", EventFailed)
		if e.Attempts != 3 || !strings.Contains(e.LastError, "downstream is down") {
			t.Fatalf("dead letter %+v", e)
		}
		if _, ok := s.members(owner)["broken@example.com"]; ok {
			t.Fatal("a failed event applied its effect")
		}
		if evs := s.events(owner, "&status=failed"); len(evs) != 1 || evs[0].EventID != "evt_broken" {
			t.Fatalf("failed filter: %+v", evs)
		}

		mu.Lock()
		broken = false
		mu.Unlock()
		s.must(http.StatusAccepted, "POST", "/api/integrations/events/"+e.ID.String()+"/replay/", owner.Access, nil)
		s.waitEvent(owner, "evt_broken", EventProcessed)
		if _, ok := s.members(owner)["broken@example.com"]; !ok {
			t.Fatal("replayed event's member missing")
		}
	})
}

func TestWebhookOutOfOrderAndSkipped(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		user := func(role string, at time.Time) map[string]any {
			return map[string]any{"id": "u1", "email": "late@example.com", "role": role, "updated_at": at}
		}
		deliver := func(id, typ string, data map[string]any) {
			t.Helper()
			if r := s.send(c, id, event(id, typ, data), time.Now(), c.Secret); r.Status != http.StatusAccepted {
				t.Fatalf("%s: %d %s", id, r.Status, r.Body)
			}
			s.waitEvent(owner, id, EventProcessed)
		}
		// The update (newer) arrives before the creation (older).
		deliver("e2", "user.updated", user("admin", t0.Add(2*time.Minute)))
		deliver("e1", "user.created", user("user", t0.Add(time.Minute)))
		if got := s.members(owner)["late@example.com"]; got != "admin" {
			t.Fatalf("role %q after an older event, want admin", got)
		}
		deliver("e4", "user.deleted", user("", t0.Add(4*time.Minute)))
		deliver("e3", "user.updated", user("user", t0.Add(3*time.Minute)))
		if _, ok := s.members(owner)["late@example.com"]; ok {
			t.Fatal("an update older than the deletion brought the member back")
		}
		deliver("e5", "user.updated", user("user", t0.Add(5*time.Minute)))
		if got := s.members(owner)["late@example.com"]; got != "user" {
			t.Fatalf("role %q after a newer update, want user", got)
		}

		id := "e_unknown"
		if r := s.send(c, id, event(id, "user.merged", map[string]any{"id": "u1"}), time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		s.waitEvent(owner, id, EventSkipped)
		if evs := s.events(owner, "&type=user.merged&provider=user-service"); len(evs) != 1 {
			t.Fatalf("type filter: %d events", len(evs))
		}
	})
}

func TestWebhookPaymentSuspendsTenant(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderPaymentService, "cus_1")
		t0 := time.Now().UTC().Add(-time.Hour)
		deliver := func(id, typ string, data map[string]any) {
			t.Helper()
			if r := s.send(c, id, event(id, typ, data), time.Now(), c.Secret); r.Status != http.StatusAccepted {
				t.Fatalf("%s: %d %s", id, r.Status, r.Body)
			}
		}
		deliver("p1", "subscription.created", map[string]any{"id": "sub_1", "plan": "pro", "status": "active", "updated_at": t0})
		s.waitEvent(owner, "p1", EventProcessed)
		tenant := s.must(http.StatusOK, "GET", "/api/tenants/"+owner.TenantID+"/", owner.Access, nil).JSON()
		if tenant["plan"] != "pro" {
			t.Fatalf("plan %v, want pro", tenant["plan"])
		}
		deliver("p2", "subscription.canceled", map[string]any{"id": "sub_1", "updated_at": t0.Add(time.Minute)})
		// The tenant's API refuses once the cached tenant expires; read the
		// event through the database meanwhile.
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := s.do("GET", "/api/users/", owner.Access, nil)
			if r.Status == http.StatusForbidden {
				p := problemOf(t, r, http.StatusForbidden)
				if !strings.Contains(p["detail"].(string), "suspended") {
					t.Fatalf("suspended problem %v", p)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant not suspended: %d %s", r.Status, r.Body)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// An older event does not undo the cancellation; a newer payment
		// reactivates the tenant.
		deliver("p0", "subscription.updated", map[string]any{"id": "sub_1", "plan": "pro", "status": "active", "updated_at": t0.Add(30 * time.Second)})
		deliver("p3", "payment.succeeded", map[string]any{"subscription": "sub_1", "updated_at": t0.Add(2 * time.Minute)})
		for {
			r := s.do("GET", "/api/users/", owner.Access, nil)
			if r.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant not reactivated: %d %s", r.Status, r.Body)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.waitEvent(owner, "p0", EventProcessed)
		changes := s.auditEvents(owner, ActionTenantUpdated)
		if len(changes) != 3 {
			t.Fatalf("%d tenant.updated events, want 3 (plan, suspension, reactivation): %+v", len(changes), changes)
		}
		for _, ev := range changes {
			if ev.Actor.Type != audit.ActorIntegration || ev.Actor.ID != ProviderPaymentService {
				t.Fatalf("tenant.updated by %+v", ev.Actor)
			}
		}
	})
}

func TestWebhookBatch(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		var items []json.RawMessage
		for i := range 3 {
			items = append(items, event(fmt.Sprintf("b%d", i), "user.created",
				map[string]any{"id": fmt.Sprintf("u%d", i), "email": fmt.Sprintf("b%d@example.com", i)}))
		}
		items = append(items, json.RawMessage(`{"type":"user.created"}`), items[0])
		body, _ := json.Marshal(items)
		r := s.doH("POST", c.WebhookURL+"batch/", "", body, webhookstest.SignStandard("batch_1", body, time.Now(), c.Secret))
		var br webhooks.BatchResponse
		r.decode(t, &br)
		if r.Status != http.StatusMultiStatus || br.Accepted != 3 || br.Rejected != 1 || br.Duplicates != 1 {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
		for i := range 3 {
			s.waitEvent(owner, fmt.Sprintf("b%d", i), EventProcessed)
		}
		if m := s.members(owner); len(m) != 4 {
			t.Fatalf("members %v, want the owner and 3", m)
		}
	})
}

func TestWebhookSinkConformance(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		conn := &IntegrationConnection{ID: c.ID, Provider: c.Provider}
		conn.TenantID = uuid.MustParse(owner.TenantID)
		tenant, err := s.srv.lookup.LookupTenant(t.Context(), owner.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		sink := &webhookSink{s: s.srv}
		webhookstest.RunSinkTests(t, func(t *testing.T) webhooks.Sink {
			return connSink{sink, context.WithValue(tenancy.WithTenant(context.Background(), tenant), connKey{}, conn)}
		})
	})
}

// connSink gives the sink the connection and tenant that Resolve would.
type connSink struct {
	s   *webhookSink
	ctx context.Context
}

func (c connSink) Accept(ctx context.Context, ev *webhooks.Event) (bool, error) {
	return c.s.Accept(c.with(ctx), ev)
}

func (c connSink) AcceptBatch(ctx context.Context, evs []*webhooks.Event) ([]webhooks.BatchResult, error) {
	return c.s.AcceptBatch(c.with(ctx), evs)
}

func (c connSink) with(ctx context.Context) context.Context {
	conn, _ := connectionFromContext(c.ctx)
	t, _ := tenancy.FromContext(c.ctx)
	return context.WithValue(tenancy.WithTenant(ctx, t), connKey{}, conn)
}

func TestRetryPolicyBackoff(t *testing.T) {
	p := retryPolicy{base: time.Second, max: time.Minute}
	for attempt := 1; attempt <= 12; attempt++ {
		want := min(time.Second<<(attempt-1), time.Minute)
		for range 20 {
			d := p.delay(attempt)
			if d < want/2 || d > want*3/2 {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, want/2, want*3/2)
			}
		}
	}
}

func TestWebhookPruneKeepsFailedAndRecent(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{ProcessHook: func(ctx context.Context, ev *WebhookEvent, attempt int) error {
			if ev.EventID == "evt_fail" {
				return errors.New("always fails")
			}
			return nil
		}})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		for _, id := range []string{"evt_ok", "evt_fail"} {
			if r := s.send(c, id, event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"}), time.Now(), c.Secret); r.Status != http.StatusAccepted {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		}
		s.waitEvent(owner, "evt_ok", EventProcessed)
		s.waitEvent(owner, "evt_fail", EventFailed)
		if n, err := s.srv.pruneEvents(t.Context(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("pruned %d recent events (%v), want 0", n, err)
		}
		n, err := s.srv.pruneEvents(t.Context(), time.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d events (%v), want 1", n, err)
		}
		evs := s.events(owner, "")
		if len(evs) != 1 || evs[0].EventID != "evt_fail" {
			t.Fatalf("after pruning: %+v, want only the failed event", evs)
		}
	})
}

// integrationAudits counts the tenant's audit events with the action
// recorded by an integration.
func (s *testServer) integrationAudits(owner session, action string) int {
	n := 0
	for _, e := range s.auditEvents(owner, action) {
		if e.Actor.Type == audit.ActorIntegration {
			n++
		}
	}
	return n
}

// TestWebhookBatchJobPartialFailure sends events in one batch request, so
// that one job applies them in one transaction: an event whose attempt
// fails after its handler wrote is undone alone and retried by a job of its
// own, the others commit, and working the batch job again changes nothing.
func TestWebhookBatchJobPartialFailure(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		var mu sync.Mutex
		attempts := map[string][]int{}
		hook := func(ctx context.Context, ev *WebhookEvent, attempt int) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[ev.EventID] = append(attempts[ev.EventID], attempt)
			if ev.EventID == "p1" && attempt == 1 {
				return errors.New("p1 fails once")
			}
			return nil
		}
		s := newWebhookServer(t, db, Options{ProcessHook: hook})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		var items []json.RawMessage
		for i := range 3 {
			items = append(items, event(fmt.Sprintf("p%d", i), "user.created",
				map[string]any{"id": fmt.Sprintf("u%d", i), "email": fmt.Sprintf("p%d@example.com", i)}))
		}
		body, _ := json.Marshal(items)
		r := s.doH("POST", c.WebhookURL+"batch/", "", body, webhookstest.SignStandard("batch_p", body, time.Now(), c.Secret))
		if r.Status != http.StatusMultiStatus {
			t.Fatalf("batch: %d %s", r.Status, r.Body)
		}
		var ids []uuid.UUID
		for i := range 3 {
			e := s.waitEvent(owner, fmt.Sprintf("p%d", i), EventProcessed)
			ids = append(ids, e.ID)
			if want := map[int]int{0: 1, 1: 2, 2: 1}[i]; e.Attempts != want {
				t.Errorf("p%d processed after %d attempts, want %d", i, e.Attempts, want)
			}
		}
		// The first run applies the events without savepoints and is undone
		// when p1 fails; the second applies each under a savepoint, so a
		// hook may see attempt 1 twice, never attempt 2 but for p1.
		mu.Lock()
		seen := map[string][]int{}
		for id, a := range attempts {
			seen[id] = slices.Compact(slices.Clone(a))
		}
		calls := fmt.Sprint(attempts)
		mu.Unlock()
		if got := fmt.Sprint(seen); got != "map[p0:[1] p1:[1 2] p2:[1]]" {
			t.Errorf("attempts %s", calls)
		}
		if m := s.members(owner); len(m) != 4 {
			t.Fatalf("members %v, want the owner and 3", m)
		}
		if n := s.integrationAudits(owner, ActionMemberCreated); n != 3 {
			t.Fatalf("%d member.created audit events by the integration, want 3 (the failed attempt's undone)", n)
		}

		// The batch job worked again (as after a crash before River
		// recorded it done) applies nothing twice.
		tenant := uuid.MustParse(owner.TenantID)
		res, err := s.srv.integ.jobs.Insert(t.Context(), webhookBatchArgs{TenantID: tenant, EventIDs: ids}, nil)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, err := s.srv.integ.jobs.JobGet(t.Context(), res.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j.State == "completed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch job %s", j.State)
			}
			time.Sleep(5 * time.Millisecond) // polling interval, not a timing assertion
		}
		mu.Lock()
		if got := fmt.Sprint(attempts); got != calls {
			t.Errorf("attempts after the job ran again: %s, before %s", got, calls)
		}
		mu.Unlock()
		if n := s.integrationAudits(owner, ActionMemberCreated); n != 3 {
			t.Fatalf("%d member.created audit events by the integration after the job ran again, want 3", n)
		}
	})
}

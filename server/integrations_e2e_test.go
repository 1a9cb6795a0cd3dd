package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	resilient "github.com/saaskit/saaskit/integrations"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/server/mockservices"
)

// upstream is a mock service behind a real listener that counts the
// requests reaching it. The service is set once the platform's connection
// (its webhook URL and secret) exists.
type upstream struct {
	ts       *httptest.Server
	mu       sync.Mutex
	h        http.Handler
	requests atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		u.mu.Lock()
		h := u.h
		u.mu.Unlock()
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(u.ts.Close)
	return u
}

func (u *upstream) set(h http.Handler) {
	u.mu.Lock()
	u.h = h
	u.mu.Unlock()
}

// call sends a JSON request to the mock and decodes the answer into out.
func (u *upstream) call(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, u.ts.URL+path, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func lastDelivery(t *testing.T, s *mockservices.Sender) mockservices.Delivery {
	t.Helper()
	ds := s.Deliveries()
	if len(ds) == 0 {
		t.Fatal("no webhook sent")
	}
	return ds[len(ds)-1]
}

func (s *testServer) integrationHealth(token string) IntegrationHealthView {
	s.t.Helper()
	var v IntegrationHealthView
	s.must(http.StatusOK, "GET", "/api/integrations/health/", token, nil).decode(s.t, &v)
	return v
}

func connHealth(t *testing.T, v IntegrationHealthView, provider string) ConnectionHealth {
	t.Helper()
	for _, c := range v.Connections {
		if c.Provider == provider {
			return c
		}
	}
	t.Fatalf("no %s connection in %+v", provider, v)
	return ConnectionHealth{}
}

func (s *testServer) tenantPlanStatus(tenantID string) (plan, status string) {
	s.t.Helper()
	err := s.srv.db.NewSelect().Table("tenants").Column("plan", "status").Where("id = ?", tenantID).
		Scan(s.t.Context(), &plan, &status)
	if err != nil {
		s.t.Fatal(err)
	}
	return plan, status
}

// TestIntegrationsEndToEnd runs the mock services in process against the
// platform: changes flow in by webhook, dropped webhooks are repaired by
// reconciliation, and an outage opens the breaker, shows down and fails
// fast until the service recovers.
func TestIntegrationsEndToEnd(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		usersUp, payUp := newUpstream(t), newUpstream(t)
		opts := Options{Integrations: resilient.Config{MinRequests: 3, FailureRatio: 0.5, OpenTimeout: 2 * time.Second,
			MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, AttemptTimeout: 5 * time.Second}}
		s := newTestServerOpts(t, db, opts, fastWorkers, func(c *Config) {
			c.IntegrationURLs = "user-service=" + usersUp.ts.URL + ",payment-service=" + payUp.ts.URL
		})
		if err := s.srv.StartWorkers(t.Context()); err != nil {
			t.Fatal(err)
		}
		owner := s.register("owner@e2e.example.com", "E2E")
		uc := s.connect(owner, ProviderUserService, "acct_1")
		pc := s.connect(owner, ProviderPaymentService, "acct_1")
		users, err := mockservices.NewUserService(mockservices.Config{Seed: 3,
			Webhook: mockservices.Webhook{URL: s.ts.URL + uc.WebhookURL, Secret: uc.Secret}})
		if err != nil {
			t.Fatal(err)
		}
		pay, err := mockservices.NewPaymentService(mockservices.Config{Seed: 4,
			Webhook: mockservices.Webhook{URL: s.ts.URL + pc.WebhookURL, Secret: pc.Secret}})
		if err != nil {
			t.Fatal(err)
		}
		usersUp.set(users)
		payUp.set(pay)

		// A change flows in by webhook.
		var ann mockservices.User
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "ann@e2e.example.com", "full_name": "Ann"}, &ann)
		s.waitEvent(owner, lastDelivery(t, users.Sender()).EventID, EventProcessed)
		var bob mockservices.User
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "bob@e2e.example.com"}, &bob)
		s.waitEvent(owner, lastDelivery(t, users.Sender()).EventID, EventProcessed)
		// The owner is in the directory too; an integration never removes it.
		var own mockservices.User
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "owner@e2e.example.com"}, &own)
		s.waitEvent(owner, lastDelivery(t, users.Sender()).EventID, EventProcessed)
		if m := s.members(owner); m["ann@e2e.example.com"] != "user" || m["bob@e2e.example.com"] != "user" {
			t.Fatalf("members after webhooks: %v", m)
		}
		var sub mockservices.Subscription
		payUp.call(t, "POST", "/v1/subscriptions", map[string]any{"plan": "pro"}, &sub)
		s.waitEvent(owner, lastDelivery(t, pay.Sender()).EventID, EventProcessed)
		if plan, _ := s.tenantPlanStatus(owner.TenantID); plan != "pro" {
			t.Fatalf("plan after webhook: %q", plan)
		}

		// Dropped webhooks: a new user, a promotion, a removal and a plan
		// change never reach the platform.
		drop := mockservices.Faults{DropWebhookRate: 1}
		users.SetFaults(drop)
		pay.SetFaults(drop)
		var cy mockservices.User
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "cy@e2e.example.com"}, &cy)
		usersUp.call(t, "PATCH", "/v1/users/"+ann.ID, map[string]any{"role": "admin"}, nil)
		usersUp.call(t, "DELETE", "/v1/users/"+bob.ID, nil, nil)
		usersUp.call(t, "DELETE", "/v1/users/"+own.ID, nil, nil)
		payUp.call(t, "PATCH", "/v1/subscriptions/"+sub.ID, map[string]any{"plan": "enterprise"}, nil)
		for _, d := range append(users.Sender().Deliveries()[3:], pay.Sender().Deliveries()[1:]...) {
			if !d.Dropped {
				t.Fatalf("webhook %s was sent", d.Type)
			}
		}
		if m := s.members(owner); m["ann@e2e.example.com"] != "user" || m["bob@e2e.example.com"] == "" || m["cy@e2e.example.com"] != "" {
			t.Fatalf("members before reconciling: %v", m)
		}

		// Reconciliation repairs the drift and reports it.
		var rep ReconcileReport
		s.must(http.StatusOK, "POST", "/api/integrations/connections/"+uc.ID.String()+"/reconcile/", owner.Access, nil).decode(t, &rep)
		if rep.Fetched != 2 || rep.Created != 1 || rep.Updated != 1 || rep.Removed != 1 || rep.Skipped != 1 || rep.Unchanged != 0 || rep.Error != "" {
			t.Fatalf("user reconcile report: %+v", rep)
		}
		actions := map[string]string{}
		for _, c := range rep.Changes {
			actions[c.ExternalID] = c.Action
			if c.Action == "skipped" && !strings.Contains(c.Reason, "owner") {
				t.Errorf("skip reason: %q", c.Reason)
			}
		}
		if actions[ann.ID] != "updated" || actions[bob.ID] != "removed" || actions[cy.ID] != "created" || actions[own.ID] != "skipped" {
			t.Fatalf("changes: %v", actions)
		}
		if m := s.members(owner); m["ann@e2e.example.com"] != "admin" || m["bob@e2e.example.com"] != "" || m["cy@e2e.example.com"] != "user" ||
			m["owner@e2e.example.com"] != "owner" {
			t.Fatalf("members after reconciling: %v", m)
		}
		s.must(http.StatusOK, "POST", "/api/integrations/connections/"+pc.ID.String()+"/reconcile/", owner.Access, nil).decode(t, &rep)
		if rep.Fetched != 1 || rep.Updated != 1 {
			t.Fatalf("billing reconcile report: %+v", rep)
		}
		if plan, status := s.tenantPlanStatus(owner.TenantID); plan != "enterprise" || status != "active" {
			t.Fatalf("tenant after reconciling: %s %s", plan, status)
		}
		evs := s.auditEvents(owner, ActionReconciled)
		if len(evs) != 2 || evs[0].Actor.Type != "integration" {
			t.Fatalf("reconcile audit events: %+v", evs)
		}
		for _, action := range []string{ActionMemberCreated, ActionMemberUpdated, ActionMemberRemoved} {
			found := false
			for _, ev := range s.auditEvents(owner, action) {
				found = found || ev.Actor.ID == ProviderUserService
			}
			if !found {
				t.Errorf("no %s event by the integration", action)
			}
		}
		// A second run finds nothing to repair.
		s.must(http.StatusOK, "POST", "/api/integrations/connections/"+uc.ID.String()+"/reconcile/", owner.Access, nil).decode(t, &rep)
		if rep.Created+rep.Updated+rep.Removed != 0 || rep.Unchanged != 2 || rep.Skipped != 1 {
			t.Fatalf("second reconcile: %+v", rep)
		}
		if h := connHealth(t, s.integrationHealth(owner.Access), ProviderUserService); h.LastReconcile == nil || h.Health.State != HealthHealthy {
			t.Fatalf("health after reconciling: %+v", h)
		}

		// An outage: health checks fail until the breaker opens.
		users.SetFaults(mockservices.Faults{Down: true})
		for i := 0; s.srv.out.client.State(ProviderUserService) != resilient.StateOpen; i++ {
			if i == 10 {
				t.Fatal("breaker did not open")
			}
			if err := s.srv.CheckIntegrations(t.Context()); err == nil {
				t.Fatal("check of a down service succeeded")
			}
		}
		h := connHealth(t, s.integrationHealth(owner.Access), ProviderUserService)
		if h.Health.State != HealthDown || h.Health.Breaker != "open" || h.Health.LastFailure == nil || h.Health.ConsecutiveFailures == 0 {
			t.Fatalf("health during the outage: %+v", h.Health)
		}
		if ph := connHealth(t, s.integrationHealth(owner.Access), ProviderPaymentService); ph.Health.State != HealthHealthy {
			t.Fatalf("payment service health: %+v", ph.Health)
		}
		// Calls fail fast: the reconcile is refused without reaching the service.
		before := usersUp.requests.Load()
		problemOf(t, s.do("POST", "/api/integrations/connections/"+uc.ID.String()+"/reconcile/", owner.Access, nil), http.StatusServiceUnavailable)
		if err := s.srv.CheckIntegrations(t.Context()); !errors.Is(err, resilient.ErrCircuitOpen) {
			t.Fatalf("check while open: %v", err)
		}
		if n := usersUp.requests.Load() - before; n != 0 {
			t.Fatalf("%d requests reached the service while the breaker was open", n)
		}
		metrics := string(s.must(http.StatusOK, "GET", "/metrics", "", nil).Body)
		for _, want := range []string{
			`saaskit_integration_breaker_state{provider="user-service"} 2`,
			`saaskit_integration_health{provider="user-service",state="down"} 1`,
			`saaskit_integration_attempts_total{outcome="refused",provider="user-service"}`,
			`saaskit_integration_request_duration_seconds_count{provider="user-service"}`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}

		// Recovery: once the open timeout has passed, a probe closes it.
		users.SetFaults(mockservices.Faults{})
		deadline := time.Now().Add(30 * time.Second)
		for s.srv.out.client.State(ProviderUserService) != resilient.StateClosed {
			if time.Now().After(deadline) {
				t.Fatal("breaker did not close after recovery")
			}
			time.Sleep(50 * time.Millisecond)    // polling interval, not a timing assertion
			s.srv.CheckIntegrations(t.Context()) //nolint:errcheck // refused while still open
		}
		if h := connHealth(t, s.integrationHealth(owner.Access), ProviderUserService); h.Health.State == HealthDown || h.Health.Breaker != "closed" {
			t.Fatalf("health after recovery: %+v", h.Health)
		}

		// A superadmin sees every provider and the history of changes.
		if _, err := s.srv.CreateSuperuser(t.Context(), "root@e2e.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		root := s.login("root@e2e.example.com", "")
		v := s.integrationHealth(root.Access)
		if len(v.Providers) != 2 || v.Connections != nil {
			t.Fatalf("superadmin view: %+v", v)
		}
		var path []string
		for i := len(v.History) - 1; i >= 0; i-- {
			if c := v.History[i]; c.Provider == ProviderUserService {
				path = append(path, c.To)
			}
		}
		got := strings.Join(path, ",")
		if !strings.HasPrefix(got, "healthy,") || !strings.Contains(got, ",down,") || strings.HasSuffix(got, ",down") {
			t.Fatalf("user-service history: %s", got)
		}
		// Another tenant's admin cannot reconcile or see this connection.
		other := s.register("owner@other.example.com", "Other")
		problemOf(t, s.do("POST", "/api/integrations/connections/"+uc.ID.String()+"/reconcile/", other.Access, nil), http.StatusNotFound)
		if v := s.integrationHealth(other.Access); len(v.Connections) != 0 || v.Providers != nil {
			t.Fatalf("other tenant's view: %+v", v)
		}
		// A member is not an integration admin.
		member := s.addMember(owner, "dee@e2e.example.com", "user")
		problemOf(t, s.do("GET", "/api/integrations/health/", member.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("POST", "/api/integrations/connections/"+uc.ID.String()+"/reconcile/", member.Access, nil), http.StatusForbidden)
	})
}

// TestIntegrationScheduleInServe: Serve checks the providers' health and
// reconciles the connections on their intervals, so that a webhook the
// mock dropped is repaired without anyone asking.
func TestIntegrationScheduleInServe(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		usersUp, payUp := newUpstream(t), newUpstream(t)
		s := newTestServerOpts(t, db, Options{}, fastWorkers, func(c *Config) {
			c.IntegrationURLs = "user-service=" + usersUp.ts.URL + ",payment-service=" + payUp.ts.URL
			c.IntegrationCheckInterval = 20 * time.Millisecond
			c.ReconcileInterval = 50 * time.Millisecond
		})
		owner := s.register("owner@sched.example.com", "Sched")
		uc := s.connect(owner, ProviderUserService, "acct_1")
		users, _ := mockservices.NewUserService(mockservices.Config{Faults: mockservices.Faults{DropWebhookRate: 1},
			Webhook: mockservices.Webhook{URL: s.ts.URL + uc.WebhookURL, Secret: uc.Secret}})
		pay, _ := mockservices.NewPaymentService(mockservices.Config{})
		usersUp.set(users)
		payUp.set(pay)
		usersUp.call(t, "POST", "/v1/users", map[string]any{"email": "eve@sched.example.com"}, nil)

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.srv.Serve(ctx, ln) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			h := connHealth(t, s.integrationHealth(owner.Access), ProviderUserService)
			if h.Health.State == HealthHealthy && h.LastReconcile != nil && s.members(owner)["eve@sched.example.com"] == "user" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no scheduled check and reconcile: %+v", h)
			}
			time.Sleep(20 * time.Millisecond) // polling interval, not a timing assertion
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		var n int
		if err := s.srv.db.NewSelect().Table("integration_health_history").Where("provider = ?", ProviderUserService).
			Where("to_state = ?", HealthHealthy).ColumnExpr("count(*)").Scan(t.Context(), &n); err != nil || n == 0 {
			t.Fatalf("history of the scheduled checks: %d %v", n, err)
		}
	})
}

// TestIntegrationHealthAcrossServers: two servers share a database and
// only A runs the checks; B's health API shows what A observed, outage
// and recovery, while B's metrics stay its own.
func TestIntegrationHealthAcrossServers(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		usersUp := newUpstream(t)
		users, _ := mockservices.NewUserService(mockservices.Config{})
		usersUp.set(users)
		// One attempt per call and a breaker that stays closed: three
		// failed checks make the provider down.
		opts := Options{Integrations: resilient.Config{MaxAttempts: 1, MinRequests: 1000}}
		urls := func(c *Config) { c.IntegrationURLs = "user-service=" + usersUp.ts.URL }
		a := newTestServerOpts(t, db, opts, urls)
		db2 := *db
		db2.DB = db.Open(t)
		b := newTestServerOpts(t, &db2, opts, urls)

		owner := a.register("owner@shared.example.com", "Shared")
		a.connect(owner, ProviderUserService, "acct_1")
		if _, err := a.srv.CreateSuperuser(t.Context(), "root@shared.example.com", testPassword); err != nil {
			t.Fatal(err)
		}
		rootB := b.login("root@shared.example.com", "")
		rootA := a.login("root@shared.example.com", "")
		provider := func(v IntegrationHealthView) ProviderHealth {
			t.Helper()
			for _, p := range v.Providers {
				if p.Provider == ProviderUserService {
					return p
				}
			}
			t.Fatalf("no %s in %+v", ProviderUserService, v)
			return ProviderHealth{}
		}
		same := func(got, want ProviderHealth) {
			t.Helper()
			if got.State != want.State || got.ConsecutiveFailures != want.ConsecutiveFailures || got.LastError != want.LastError ||
				got.Attempts != want.Attempts || got.ErrorRate != want.ErrorRate || got.Breaker != want.Breaker ||
				got.ObservedBy != want.ObservedBy || got.ObservedAt == nil || want.ObservedAt == nil ||
				!got.ObservedAt.Equal(*want.ObservedAt) || (want.LastFailure != nil) != (got.LastFailure != nil) ||
				(want.LastFailure != nil && !got.LastFailure.Equal(*want.LastFailure)) {
				t.Fatalf("B shows %+v, A observed %+v", got, want)
			}
		}

		if p := provider(b.integrationHealth(rootB.Access)); p.State != HealthUnknown || p.ObservedAt != nil {
			t.Fatalf("B before any check: %+v", p)
		}
		users.SetFaults(mockservices.Faults{Down: true})
		for range downAfter {
			if err := a.srv.CheckIntegrations(t.Context()); err == nil {
				t.Fatal("check of a down service succeeded")
			}
		}
		onA := provider(a.integrationHealth(rootA.Access))
		if onA.State != HealthDown || onA.ConsecutiveFailures != downAfter || onA.ObservedBy != a.srv.out.replica {
			t.Fatalf("A during the outage: %+v", onA)
		}
		onB := provider(b.integrationHealth(rootB.Access))
		same(onB, onA)
		if onB.ObservedBy == b.srv.out.replica {
			t.Fatal("B claims the observation")
		}
		if h := connHealth(t, b.integrationHealth(owner.Access), ProviderUserService); h.Health.State != HealthDown {
			t.Fatalf("B's connection view during the outage: %+v", h.Health)
		}
		// Metrics are per replica: B made no call.
		metrics := string(b.must(http.StatusOK, "GET", "/metrics", "", nil).Body)
		if !strings.Contains(metrics, `saaskit_integration_health{provider="user-service",state="unknown"} 1`) {
			t.Error("B's metrics do not show its own (unknown) view")
		}

		users.SetFaults(mockservices.Faults{})
		if err := a.srv.CheckIntegrations(t.Context()); err != nil {
			t.Fatal(err)
		}
		onA = provider(a.integrationHealth(rootA.Access))
		if onA.State != HealthHealthy || onA.ConsecutiveFailures != 0 || onA.LastSuccess == nil {
			t.Fatalf("A after recovery: %+v", onA)
		}
		onB = provider(b.integrationHealth(rootB.Access))
		same(onB, onA)
		if onB.LastSuccess == nil || !onB.LastSuccess.Equal(*onA.LastSuccess) {
			t.Fatalf("B's last success %v, A's %v", onB.LastSuccess, onA.LastSuccess)
		}

		// An older observation never replaces a newer stored one.
		b.srv.out.health.mu.Lock()
		b.srv.out.health.providers[ProviderUserService].dirty = true
		b.srv.out.health.providers[ProviderUserService].observed = onA.ObservedAt.Add(-time.Minute)
		b.srv.out.health.mu.Unlock()
		if err := b.srv.flushHealthHistory(t.Context()); err != nil {
			t.Fatal(err)
		}
		var replica string
		if err := b.srv.db.NewSelect().Table("integration_health").Column("replica").
			Where("provider = ?", ProviderUserService).Scan(t.Context(), &replica); err != nil {
			t.Fatal(err)
		}
		if replica != a.srv.out.replica {
			t.Fatalf("stored snapshot by %q after B's older one, want A's %q", replica, a.srv.out.replica)
		}
		same(provider(b.integrationHealth(rootB.Access)), onA)
	})
}

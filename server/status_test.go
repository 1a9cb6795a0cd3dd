package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// troubledServer is a server with workers whose user-service provider
// fails its checks (its breaker open) and whose connection has one event
// processed and one dead-lettered ("evt_broken", "downstream is down").
// It returns the server and a superadmin's access token.
func troubledServer(t *testing.T, db *dbtest.DB) (*testServer, session, string) {
	t.Helper()
	url := failingProvider(t)
	opts := breakerOptions
	opts.ProcessHook = func(ctx context.Context, ev *WebhookEvent, attempt int) error {
		if ev.EventID == "evt_broken" {
			return errors.New("downstream is down")
		}
		return nil
	}
	s := newTestServerOpts(t, db, opts, fastWorkers, func(c *Config) {
		c.IntegrationURLs = fmt.Sprintf("%s=%s", ProviderUserService, url)
	})
	if err := s.srv.StartWorkers(t.Context()); err != nil {
		t.Fatal(err)
	}
	owner := s.register("owner@example.com", "Acme")
	c := s.connect(owner, ProviderUserService, "acme")
	for _, id := range []string{"evt_ok", "evt_broken"} {
		body := event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
		if r := s.send(c, id, body, time.Now(), c.Secret); r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", id, r.Status, r.Body)
		}
	}
	s.waitEvent(owner, "evt_ok", EventProcessed)
	s.waitEvent(owner, "evt_broken", EventFailed)
	waitJobsSettled(t, s.srv)
	tripBreaker(t, s)
	if _, err := s.srv.CreateSuperuser(t.Context(), "root@example.com", "a-long-enough-password"); err != nil {
		t.Fatal(err)
	}
	r := s.must(http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{"email": "root@example.com", "password": "a-long-enough-password"})
	return s, owner, r.JSON()["access"].(string)
}

// waitJobsSettled polls until no job is available, running or retryable:
// River records an attempt's end shortly after the event's row.
func waitJobsSettled(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		counts, err := queueCounts(t.Context(), s.db)
		if err != nil {
			t.Fatal(err)
		}
		busy := false
		for _, c := range counts {
			busy = busy || c.State == "available" || c.State == "running" || c.State == "retryable"
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still busy: %+v", counts)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a timing assertion
	}
}

// checkReport checks a report of troubledServer's database.
func checkReport(t *testing.T, rep *StatusReport) {
	t.Helper()
	if !slices.Contains(rep.FailingProviders, ProviderUserService) {
		t.Errorf("failing providers %v, want %s", rep.FailingProviders, ProviderUserService)
	}
	var open bool
	for _, p := range rep.Providers {
		open = open || (p.Provider == ProviderUserService && p.Breaker == "open" && p.State == HealthDown && p.LastError != "")
	}
	if !open {
		t.Errorf("providers %+v: want user-service down with an open breaker and its last error", rep.Providers)
	}
	counts := map[string]int64{}
	for _, c := range rep.WebhookEvents {
		counts[c.Provider+"/"+c.Status] = c.Count
	}
	if counts["user-service/failed"] != 1 || counts["user-service/processed"] != 1 {
		t.Errorf("webhook counts %v, want one failed and one processed", counts)
	}
	if len(rep.FailedEvents) != 1 || rep.FailedEvents[0].EventID != "evt_broken" ||
		!strings.Contains(rep.FailedEvents[0].LastError, "downstream is down") || rep.FailedEvents[0].Attempts != 3 {
		t.Errorf("failed events %+v", rep.FailedEvents)
	}
	var discarded int64
	for _, j := range rep.Jobs {
		if j.Kind == "webhook_event" && j.State == "discarded" {
			discarded += j.Count
		}
	}
	if discarded != 1 {
		t.Errorf("jobs %+v: want one discarded webhook_event job", rep.Jobs)
	}
	var jobErr bool
	for _, j := range rep.JobErrors {
		jobErr = jobErr || (j.Kind == "webhook_event" && j.State == "discarded" && strings.Contains(j.Error, "downstream is down") && j.At != nil && j.Attempt == j.MaxAttempts)
	}
	if !jobErr {
		t.Errorf("job errors %+v: want the discarded webhook job's error", rep.JobErrors)
	}
}

// TestStatusEndpoint reads the report through GET /api/admin/status/ as a
// superadmin, and checks that others are refused and bad input answered.
func TestStatusEndpoint(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s, owner, root := troubledServer(t, db)
		var rep StatusReport
		s.must(http.StatusOK, "GET", "/api/admin/status/?recent=5", root, nil).decode(t, &rep)
		checkReport(t, &rep)
		if rep.Database != db.Dialect().Name().String() {
			t.Errorf("database %q", rep.Database)
		}
		problemOf(t, s.do("GET", "/api/admin/status/", owner.Access, nil), http.StatusForbidden)
		problemOf(t, s.do("GET", "/api/admin/status/", "", nil), http.StatusUnauthorized)
		problemOf(t, s.do("GET", "/api/admin/status/?recent=0", root, nil), http.StatusUnprocessableEntity)
		problemOf(t, s.do("GET", "/api/admin/status/?recent=many", root, nil), http.StatusUnprocessableEntity)
	})
}

// TestStatusText reads the report with ReadStatus and renders it.
func TestStatusText(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s, _, _ := troubledServer(t, db)
		rep, err := ReadStatus(t.Context(), s.srv.TxRunner(), StatusOptions{Recent: 1})
		if err != nil {
			t.Fatal(err)
		}
		checkReport(t, rep)
		var b bytes.Buffer
		if err := rep.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"Job queue", "webhook_event", "user-service (FAILING)", "open", "evt_broken", "downstream is down", "processed"} {
			if !strings.Contains(out, want) {
				t.Errorf("text report lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestStatusEmpty reads a migrated database with nothing in it.
func TestStatusEmpty(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		rep, err := ReadStatus(t.Context(), s.srv.TxRunner(), StatusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.FailedEvents)+len(rep.JobErrors)+len(rep.WebhookEvents)+len(rep.FailingProviders) != 0 {
			t.Errorf("empty database: %+v", rep)
		}
		var b bytes.Buffer
		rep.WriteText(&b)
		if !strings.Contains(b.String(), "no jobs waiting") || !strings.Contains(b.String(), "none stored") {
			t.Errorf("empty report:\n%s", b.String())
		}
	})
}

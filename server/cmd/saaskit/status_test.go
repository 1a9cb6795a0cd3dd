package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/server"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// deadLetter runs a server on db whose processing of every event fails,
// sends it one event and returns once the event is dead-lettered and its
// job discarded.
func deadLetter(t *testing.T, db *dbtest.DB) {
	t.Helper()
	cfg := server.Config{DatabaseURL: db.URL, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0", LogLevel: "error",
		WorkerPollInterval: 5 * time.Millisecond, WebhookRetryBase: time.Millisecond, WebhookRetryMax: 5 * time.Millisecond,
		WebhookMaxAttempts: 2}
	cfg.Defaults()
	srv, err := server.New(t.Context(), cfg, server.Options{DB: db.DB, NoAccessLog: true,
		ProcessHook: func(context.Context, *server.WebhookEvent, int) error { return errors.New("ledger unreachable") }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.StartWorkers(t.Context()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	call := func(method, path, token string, body any, hdr http.Header, out any) {
		t.Helper()
		var rd *bytes.Reader
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
	}
	var reg struct{ Access string }
	call("POST", "/api/auth/register/", "", map[string]any{"email": "owner@example.com", "password": "correct-horse-battery",
		"full_name": "Owner", "tenant_name": "Acme"}, nil, &reg)
	var conn server.ConnectionView
	call("POST", "/api/integrations/connections/", reg.Access, map[string]any{"provider": server.ProviderUserService, "external_account": "acme"}, nil, &conn)
	body := []byte(`{"id":"evt_lost","type":"user.created","data":{"id":"u1","email":"u1@example.com"}}`)
	call("POST", conn.WebhookURL, "", body, webhookstest.SignStandard("evt_lost", body, time.Now(), conn.Secret), nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err := server.ReadStatus(t.Context(), srv.TxRunner(), server.StatusOptions{})
		if err != nil {
			t.Fatal(err)
		}
		discarded := false
		for _, j := range rep.Jobs {
			discarded = discarded || (j.Kind == "webhook_event" && j.State == "discarded")
		}
		if len(rep.FailedEvents) == 1 && discarded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %+v", rep)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a timing assertion
	}
}

func TestStatusCommand(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		deadLetter(t, db)
		url := db.URL
		if db.IsPostgres() {
			url += "&search_path=" + db.Schema
		}
		var out, errb bytes.Buffer
		if err := statusCmd(t.Context(), []string{"-database-url", url, "-log-level", "error"}, &out, &errb); err != nil {
			t.Fatalf("status: %v\n%s", err, errb.String())
		}
		t.Logf("saaskit status:\n%s", out.String())
		for _, want := range []string{"Job queue", "webhook_event", "evt_lost", "ledger unreachable", "user-service", "failed"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("status output lacks %q:\n%s", want, out.String())
			}
		}
		out.Reset()
		if err := statusCmd(t.Context(), []string{"-database-url", url, "-json", "-recent", "1"}, &out, &errb); err != nil {
			t.Fatalf("status -json: %v", err)
		}
		var rep server.StatusReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("status -json: %v\n%s", err, out.String())
		}
		if len(rep.FailedEvents) != 1 || rep.FailedEvents[0].EventID != "evt_lost" || !strings.Contains(rep.FailedEvents[0].LastError, "ledger unreachable") {
			t.Errorf("failed events %+v", rep.FailedEvents)
		}
		if len(rep.JobErrors) != 1 || !strings.Contains(rep.JobErrors[0].Error, "ledger unreachable") {
			t.Errorf("job errors %+v", rep.JobErrors)
		}
		if rep.Database != db.Dialect().Name().String() {
			t.Errorf("database %q", rep.Database)
		}
	})
}

func TestStatusCommandErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, args := range [][]string{
		{"-database-url", missing},
		{"-database-url", missing, "-recent", "0"},
		{"-database-url", missing, "extra"},
	} {
		var out, errb bytes.Buffer
		if err := statusCmd(t.Context(), args, &out, &errb); err == nil {
			t.Errorf("status %v: no error", args)
		}
	}
	var out, errb bytes.Buffer
	if err := statusCmd(t.Context(), []string{"-database-url", missing}, &out, &errb); err == nil || !strings.Contains(err.Error(), "no SQLite database") {
		t.Errorf("missing database: %v", err)
	}
}

// Command webhook-receiver receives signed webhooks idempotently, with
// package webhooks alone.
//
// It shows a webhooks.Receiver and a webhooks.BatchReceiver verifying the
// Standard Webhooks scheme (webhook-id, webhook-timestamp,
// webhook-signature) with two active secrets during a rotation, storing
// events in a small in-memory Sink of its own keyed by (provider, event id).
// A sender signs deliveries with webhookstest.SignStandard, as a test (or a
// real sender following the scheme) would, and the program prints the
// answers: 202 for a new event, 200 for a redelivery, 401 problem+json for a
// wrong secret, a stale timestamp or a body changed after signing, and 207
// with one result per event for a batch.
//
// Run it with:
//
//	go run ./examples/webhook-receiver
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// The provider's signing secrets, newest first: the sender is moving from
// the old one to the new one. (webhookstest.GenerateStandardSecret makes
// fresh ones.)
const (
	newSecret   = "whsec_bmV3LXNpZ25pbmctc2VjcmV0LWZvci10aGUtZGVtbw=="
	oldSecret   = "whsec_b2xkLXNpZ25pbmctc2VjcmV0LWZvci10aGUtZGVtbw=="
	wrongSecret = "whsec_bm90LW91ci1zZWNyZXQtYXQtYWxsLWZvci10ZXN0aW5n"
)

// memorySink stores each (provider, id) once. A real service stores the
// event and enqueues its processing in one database transaction.
type memorySink struct {
	mu     sync.Mutex
	seen   map[[2]string]bool
	events []webhooks.Event
}

func newMemorySink() *memorySink { return &memorySink{seen: map[[2]string]bool{}} }

// Accept implements webhooks.Sink.
func (s *memorySink) Accept(ctx context.Context, ev *webhooks.Event) (duplicate bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]string{ev.Provider, ev.ID}
	if s.seen[key] {
		return true, nil
	}
	s.seen[key] = true
	s.events = append(s.events, *ev)
	return false, nil
}

var _ webhooks.Sink = (*memorySink)(nil)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	ctx := context.Background()
	sink := newMemorySink()
	verifier := webhooks.StandardWebhooks{Secrets: []string{newSecret, oldSecret}}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/users", &webhooks.Receiver{Provider: "users", Verifier: verifier, Sink: sink})
	mux.Handle("POST /webhooks/users/batch", &webhooks.BatchReceiver{Provider: "users", Verifier: verifier, Sink: sink})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post := func(label, path string, body []byte, h http.Header) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range h {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		out := strings.TrimSpace(string(b))
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			var p struct {
				Detail string `json:"detail"`
			}
			json.Unmarshal(b, &p)
			out = "problem: " + p.Detail
		}
		fmt.Fprintf(w, "%-26s -> %d %s\n", label, resp.StatusCode, out)
		return nil
	}

	created := []byte(`{"type":"user.created","timestamp":"2025-03-01T12:00:00Z","data":{"id":"u_1","email":"ada@example.com"}}`)
	updated := []byte(`{"type":"user.updated","timestamp":"2025-03-01T12:05:00Z","data":{"id":"u_1","name":"Ada"}}`)
	now := time.Now()

	fmt.Fprintln(w, "== single deliveries")
	steps := []struct {
		label string
		body  []byte
		h     http.Header
	}{
		{"msg_1 new", created, webhookstest.SignStandard("msg_1", created, now, newSecret)},
		{"msg_1 redelivered", created, webhookstest.SignStandard("msg_1", created, now, newSecret)},
		{"msg_2 signed with old key", updated, webhookstest.SignStandard("msg_2", updated, now, oldSecret)},
		{"msg_3 wrong secret", updated, webhookstest.SignStandard("msg_3", updated, now, wrongSecret)},
		{"msg_4 an hour old", updated, webhookstest.SignStandard("msg_4", updated, now.Add(-time.Hour), newSecret)},
		{"msg_5 body changed", bytes.Replace(updated, []byte("Ada"), []byte("Eve"), 1),
			webhookstest.SignStandard("msg_5", updated, now, newSecret)},
		{"msg_6 no signature", updated, http.Header{"Webhook-Id": {"msg_6"}, "Webhook-Timestamp": {fmt.Sprint(now.Unix())}}},
	}
	for _, s := range steps {
		if err := post(s.label, "/webhooks/users", s.body, s.h); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "== a batch, signed once over the whole body")
	// Batch items carry their own id: the request headers describe the batch.
	batch := []byte(`{"events":[` +
		`{"id":"msg_7","type":"user.deleted","timestamp":"2025-03-01T13:00:00Z","data":{"id":"u_2"}},` +
		`{"id":"msg_1","type":"user.created","timestamp":"2025-03-01T12:00:00Z","data":{"id":"u_1"}},` +
		`{"id":"msg_8","timestamp":"2025-03-01T13:01:00Z"}` +
		`]}`)
	if err := post("batch of 3", "/webhooks/users/batch", batch, webhookstest.SignStandard("batch_1", batch, now, newSecret)); err != nil {
		return err
	}

	fmt.Fprintln(w, "== stored once each, ready for processing")
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, ev := range sink.events {
		fmt.Fprintf(w, "%s/%s %s at %s\n", ev.Provider, ev.ID, ev.Type, ev.Timestamp.Format(time.RFC3339))
	}
	return nil
}

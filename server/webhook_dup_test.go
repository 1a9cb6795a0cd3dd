package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// TestWebhookConcurrentDuplicates sends each event several times at once:
// exactly one send is answered 202 and the others 200, whichever group
// commit each lands in.
func TestWebhookConcurrentDuplicates(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		const events, copies = 40, 4
		codes := make([][]int, events)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range events {
			id := fmt.Sprintf("evt_dup_%d", i)
			body := event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
			for range copies {
				wg.Go(func() {
					r := s.send(c, id, body, time.Now(), c.Secret)
					mu.Lock()
					codes[i] = append(codes[i], r.Status)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		for i, cs := range codes {
			n202, n200 := 0, 0
			for _, c := range cs {
				switch c {
				case http.StatusAccepted:
					n202++
				case http.StatusOK:
					n200++
				}
			}
			if n202 != 1 || n200 != copies-1 {
				t.Errorf("event %d answered %v: want one 202 and %d 200", i, cs, copies-1)
			}
		}
	})
}

// TestWebhookDuplicateAcrossReplicas sends events from four senders to
// two servers on one database, each event to one server and every tenth
// again to the other right after its 202: the second answers 200. With
// several group commits of a tenant in flight, a request whose event
// another commit took must wait for that commit before it answers.
func TestWebhookDuplicateAcrossReplicas(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a := newTestServer(t, db)
		owner := a.register("owner@example.com", "Acme")
		c := a.connect(owner, ProviderUserService, "acme")
		servers := []*testServer{a, newTestServerOpts(t, db, Options{SkipMigrate: true})}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					n := next.Add(1)
					if n > 400 {
						return
					}
					id := fmt.Sprintf("evt_x_%d", n)
					body := event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
					first := int(n % 2)
					if r := servers[first].send(c, id, body, time.Now(), c.Secret); r.Status != http.StatusAccepted {
						t.Errorf("%s: %d %s", id, r.Status, r.Body)
						continue
					}
					if n%10 != 0 {
						continue
					}
					if r := servers[1-first].send(c, id, body, time.Now(), c.Secret); r.Status != http.StatusOK {
						t.Errorf("%s again on the other server: %d %s", id, r.Status, r.Body)
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestWebhookBatchMixedDuplicates sends a batch whose first events were
// stored before and whose last are new: each is answered for what it is.
func TestWebhookBatchMixedDuplicates(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		mk := func(i int) json.RawMessage {
			id := fmt.Sprintf("evt_m_%d", i)
			return event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
		}
		for i := range 2 {
			if r := s.send(c, fmt.Sprintf("evt_m_%d", i), mk(i), time.Now(), c.Secret); r.Status != http.StatusAccepted {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		}
		body, _ := json.Marshal([]json.RawMessage{mk(0), mk(1), mk(2), mk(3)})
		r := s.doH("POST", c.WebhookURL+"batch/", "", body, webhookstest.SignStandard("mixed", body, time.Now(), c.Secret))
		var br webhooks.BatchResponse
		r.decode(t, &br)
		var got []string
		for _, it := range br.Results {
			got = append(got, it.Status)
		}
		if fmt.Sprint(got) != "[duplicate duplicate accepted accepted]" {
			t.Fatalf("batch answered %v: %s", got, r.Body)
		}
		evs := s.events(owner, "")
		if len(evs) != 4 {
			t.Fatalf("%d events stored, want 4", len(evs))
		}
	})
}

// TestWebhookConnectionDeletedElsewhere deletes a connection through one
// server while another still has it cached: that server refuses the gone
// connection's events with 404, and events of the tenant's other
// connection sent at the same time, which may share their group commit,
// are accepted.
func TestWebhookConnectionDeletedElsewhere(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		a := newTestServer(t, db)
		owner := a.register("owner@example.com", "Acme")
		gone := a.connect(owner, ProviderUserService, "gone")
		kept := a.connect(owner, ProviderUserService, "kept")
		b := newTestServerOpts(t, db, Options{SkipMigrate: true})
		send := func(c ConnectionView, id string) int {
			body := event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
			return a.send(c, id, body, time.Now(), c.Secret).Status
		}
		if st := send(gone, "evt_before"); st != http.StatusAccepted { // a caches the connection
			t.Fatalf("before the delete: %d", st)
		}
		b.must(http.StatusNoContent, "DELETE", "/api/integrations/connections/"+gone.ID.String()+"/", owner.Access, nil)

		var wg sync.WaitGroup
		codes := make([]int, 21)
		for i := range codes {
			wg.Go(func() {
				if i == 0 {
					codes[i] = send(gone, "evt_after")
				} else {
					codes[i] = send(kept, fmt.Sprintf("evt_kept_%d", i))
				}
			})
		}
		wg.Wait()
		if codes[0] != http.StatusNotFound {
			t.Errorf("event of the deleted connection: %d, want 404", codes[0])
		}
		for i, c := range codes[1:] {
			if c != http.StatusAccepted {
				t.Errorf("event %d of the other connection: %d, want 202", i+1, c)
			}
		}
		if st := send(gone, "evt_later"); st != http.StatusNotFound {
			t.Errorf("later event of the deleted connection: %d, want 404", st)
		}
	})
}

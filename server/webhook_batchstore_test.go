package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// TestWebhookBatchStoreMatchesOneByOne applies the same events, in one
// batch job, to two tenants: tenant a through the batch fast path (one
// batchStore for the job), tenant b through the savepoint path (a txStore
// an event), forced by a hook that fails b's first attempt once. The
// events touch the same external users several times within the batch,
// so that each reads what an earlier one wrote. Both tenants must end with
// the same members, links, event outcomes and audit events.
func TestWebhookBatchStoreMatchesOneByOne(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		var mu sync.Mutex
		var forced, failedOnce bool
		var tenantB string
		calls := map[string]int{} // hook calls an event of the batch
		hook := func(ctx context.Context, ev *WebhookEvent, attempt int) error {
			mu.Lock()
			defer mu.Unlock()
			if forced {
				calls[ev.EventID]++
			}
			if forced && ev.TenantID.String() == tenantB && !failedOnce {
				failedOnce = true
				return fmt.Errorf("fail the fast path once")
			}
			return nil
		}
		s := newWebhookServer(t, db, Options{ProcessHook: hook})
		// A user of another tenant, whom both tenants' directories name by
		// email: found, not created.
		s.register("shared@example.com", "Other")
		owners := map[string]session{"a": s.register("owner@a.example", "A"), "b": s.register("owner@b.example", "B")}
		tenantB = owners["b"].TenantID
		conns := map[string]ConnectionView{}
		for k, o := range owners {
			conns[k] = s.connect(o, ProviderUserService, "dir-"+k)
		}
		at := func(min int) string {
			return time.Date(2026, 1, 1, 0, min, 0, 0, time.UTC).Format(time.RFC3339)
		}
		user := func(dom, id, typ, role string, active bool, min int) func(k string) json.RawMessage {
			return func(k string) json.RawMessage {
				email := id + "@" + k + ".example"
				if dom != "" {
					email = dom
				}
				return event(k+"_"+id+"_"+typ+at(min), typ, map[string]any{"id": id, "email": email, "full_name": strings.ToUpper(id),
					"role": role, "active": active, "updated_at": at(min)})
			}
		}
		send := func(k string, evs []func(string) json.RawMessage) {
			var items []json.RawMessage
			for _, e := range evs {
				items = append(items, e(k))
			}
			body, _ := json.Marshal(items)
			c := conns[k]
			r := s.doH("POST", c.WebhookURL+"batch/", "", body, webhookstest.SignStandard("batch_"+k+fmt.Sprint(len(items)), body, time.Now(), c.Secret))
			if r.Status != http.StatusMultiStatus {
				t.Fatalf("batch %s: %d %s", k, r.Status, r.Body)
			}
		}
		waitAll := func(k string, n int) {
			deadline := time.Now().Add(20 * time.Second)
			for {
				done := 0
				for _, e := range s.events(owners[k], "") {
					if e.Status == EventProcessed || e.Status == EventSkipped || e.Status == EventFailed {
						done++
					}
				}
				if done == n {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("tenant %s: %d of %d events done", k, done, n)
				}
				time.Sleep(5 * time.Millisecond) // polling interval, not a timing assertion
			}
		}
		// Stored before the batch: u4 and u5 members, u6 at version 10.
		setup := []func(string) json.RawMessage{
			user("", "u4", "user.created", "user", true, 1),
			user("", "u5", "user.created", "admin", true, 1),
			user("", "u6", "user.created", "user", true, 10),
		}
		batch := []func(string) json.RawMessage{
			user("", "u1", "user.created", "user", true, 2),
			user("", "u1", "user.updated", "admin", true, 3), // reads the member created just before
			user("shared@example.com", "u2", "user.created", "user", true, 2),
			user("", "u3", "user.created", "user", true, 2),
			user("", "u3", "user.deleted", "user", true, 3), // removes a member not yet written
			user("", "u4", "user.deleted", "user", true, 2),
			user("", "u4", "user.created", "admin", true, 3), // removed and added again
			user("", "u5", "user.updated", "admin", false, 2),
			user("", "u6", "user.updated", "admin", true, 5), // older than what is stored: ignored
			user("", "u7", "user.deleted", "user", true, 2),  // never seen: remembered as deleted
			func(k string) json.RawMessage { return event(k+"_odd", "user.renamed", map[string]any{"id": "u1"}) },
			user("", "u1", "user.updated", "user", false, 1), // older than the batch's own update: ignored
		}
		for _, k := range []string{"a", "b"} {
			send(k, setup)
			waitAll(k, len(setup))
		}
		mu.Lock()
		forced = true
		mu.Unlock()
		for _, k := range []string{"a", "b"} {
			send(k, batch)
			waitAll(k, len(setup)+len(batch))
		}
		mu.Lock()
		if !failedOnce {
			t.Fatal("tenant b's batch never took the savepoint path")
		}
		// Tenant a's batch was applied once, by the fast path: a failure
		// there would have applied it again under savepoints.
		for id, n := range calls {
			if strings.HasPrefix(id, "a_") && n != 1 {
				t.Errorf("event %s applied %d times: tenant a's batch left the fast path", id, n)
			}
		}
		mu.Unlock()

		state := func(k string) string {
			o := owners[k]
			var b strings.Builder
			r := s.must(http.StatusOK, "GET", "/api/users/?limit=100&ordering=email", o.Access, nil)
			var p Page[UserView]
			r.decode(t, &p)
			for _, m := range p.Items {
				if m.Role == "owner" {
					continue // registered by the test, named after the tenant
				}
				fmt.Fprintf(&b, "member %s %s active=%v name=%s\n", m.Email, m.Role, m.IsActive, m.FullName)
			}
			evs := s.events(o, "")
			slices.SortFunc(evs, func(x, y EventView) int { return strings.Compare(x.EventID, y.EventID) })
			for _, e := range evs {
				fmt.Fprintf(&b, "event %s %s attempts=%d\n", strings.TrimPrefix(e.EventID, k+"_"), e.Status, e.Attempts)
			}
			for _, e := range s.auditEvents(o, "") {
				if e.Actor.Type != audit.ActorIntegration {
					continue
				}
				keys := slices.Sorted(func(yield func(string) bool) {
					for f := range e.Changes {
						if !yield(f) {
							return
						}
					}
				})
				fmt.Fprintf(&b, "audit %s", e.Action)
				for _, f := range keys {
					if f == "user_id" {
						continue
					}
					fmt.Fprintf(&b, " %s:%v->%v", f, e.Changes[f].Before, e.Changes[f].After)
				}
				b.WriteString("\n")
			}
			return strings.ReplaceAll(b.String(), "@"+k+".example", "@x.example")
		}
		a, bb := state("a"), state("b")
		// tenant b's event that failed the fast path was applied at
		// attempt 1 of the savepoint path: same attempts as a.
		if a != bb {
			t.Fatalf("batch path and one-by-one path differ:\n--- a (batch)\n%s--- b (one by one)\n%s", a, bb)
		}
		for _, want := range []string{
			"member u1@x.example admin active=true",
			"member shared@example.com user active=true",
			"member u4@x.example admin active=true",
			"member u5@x.example admin active=false",
			"member u6@x.example user active=true",
			"event odd skipped",
			"audit member.removed",
		} {
			if !strings.Contains(a, want) {
				t.Errorf("state lacks %q:\n%s", want, a)
			}
		}
		if strings.Contains(a, "member u3") || strings.Contains(a, "member u7") {
			t.Errorf("u3 or u7 is a member:\n%s", a)
		}
	})
}

// TestWebhookBatchJobsRace sends two batches about the same users at once,
// in opposite orders, so that their jobs run side by side and write the
// same rows: both finish at their first attempt (rows are written in key
// order, so the jobs wait for each other rather than deadlock), and each
// user ends with the newest version, whichever job came last.
func TestWebhookBatchJobsRace(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newWebhookServer(t, db, Options{})
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		const users = 40
		at := func(sec int) string { return time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC).Format(time.RFC3339) }
		batch := func(name string, items []json.RawMessage) {
			body, _ := json.Marshal(items)
			r := s.doH("POST", c.WebhookURL+"batch/", "", body, webhookstest.SignStandard(name, body, time.Now(), c.Secret))
			if r.Status != http.StatusMultiStatus {
				t.Errorf("batch %s: %d %s", name, r.Status, r.Body)
			}
		}
		var setup []json.RawMessage
		for i := range users {
			setup = append(setup, event(fmt.Sprintf("c%d", i), "user.created",
				map[string]any{"id": fmt.Sprint(i), "email": fmt.Sprintf("u%d@example.com", i), "updated_at": at(1)}))
		}
		batch("setup", setup)
		for i := range users {
			s.waitEvent(owner, fmt.Sprintf("c%d", i), EventProcessed)
		}
		// Batch a makes even users admins with the newer version; batch b
		// makes odd ones admins with the newer version. Each names every
		// user, b in reverse order.
		var a, b []json.RawMessage
		for i := range users {
			roleA, roleB, verA, verB := "admin", "user", 3, 2
			if i%2 == 1 {
				roleA, roleB, verA, verB = "user", "admin", 2, 3
			}
			a = append(a, event(fmt.Sprintf("a%d", i), "user.updated",
				map[string]any{"id": fmt.Sprint(i), "email": fmt.Sprintf("u%d@example.com", i), "role": roleA, "updated_at": at(verA)}))
			b = append([]json.RawMessage{event(fmt.Sprintf("b%d", i), "user.updated",
				map[string]any{"id": fmt.Sprint(i), "email": fmt.Sprintf("u%d@example.com", i), "role": roleB, "updated_at": at(verB)})}, b...)
		}
		var wg sync.WaitGroup
		wg.Go(func() { batch("a", a) })
		wg.Go(func() { batch("b", b) })
		wg.Wait()
		for i := range users {
			for _, p := range []string{"a", "b"} {
				if e := s.waitEvent(owner, fmt.Sprintf("%s%d", p, i), EventProcessed); e.Attempts != 1 {
					t.Errorf("event %s%d processed at attempt %d, want 1", p, i, e.Attempts)
				}
			}
		}
		members := s.members(owner)
		for i := range users {
			want := "admin"
			if got := members[fmt.Sprintf("u%d@example.com", i)]; got != want {
				t.Errorf("user %d: role %q, want %q (the newer version)", i, got, want)
			}
		}
	})
}

package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// scaleLimit is the api rate limit of the scale-out test: scaleRate
// requests a second with bursts of scaleBurst, per user and tenant, shared
// by the replicas through Redis.
const (
	scaleRate  = 5
	scaleBurst = 5
	// scalePhase is the least time each phase of the load lasts (both
	// replicas, replica 1 down, both again).
	scalePhase = 1500 * time.Millisecond
)

// replicaCounts are the answers one replica gave.
type replicaCounts struct {
	apiSent, api2xx, api429, api5xx, apiOther, apiConnErr       atomic.Int64
	hookSent, hook202, hook200, hook5xx, hookOther, hookConnErr atomic.Int64
}

// scaleClient sends the test's requests to the replicas.
type scaleClient struct {
	t      *testing.T
	http   *http.Client
	addrs  [2]string
	up     [2]atomic.Bool
	counts [2]replicaCounts
}

// call sends one request to replica i and returns the status and body; err
// is a transport error (the replica is gone).
func (c *scaleClient) call(i int, method, path, token string, body []byte, hdr http.Header) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+c.addrs[i]+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// must sends a setup request to replica i and decodes the answer.
func (c *scaleClient) must(i, want int, method, path, token string, in, out any) {
	c.t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	status, b, err := c.call(i, method, path, token, body, nil)
	if err != nil || status != want {
		c.t.Fatalf("%s %s on replica %d: %d %v: %s", method, path, i+1, status, err, b)
	}
	if out != nil {
		decodeInto(c.t, b, out)
	}
}

// pick returns a replica that is up, alternating by n.
func (c *scaleClient) pick(n int64) int {
	i := int(n % 2)
	if !c.up[i].Load() {
		i = 1 - i
	}
	return i
}

// scaleEvent is the outcome of one webhook event.
type scaleEvent struct {
	id       string
	statuses []int // every answer, in order (202 new, 200 duplicate)
	err      error // a send to the surviving replica failed
}

// TestScaleOut runs the real binary as two serve replicas (workers off)
// and one "saaskit worker" on one Postgres schema and one Redis, spreads
// API calls and signed webhooks over both replicas, kills replica 1 and
// the worker with SIGKILL in the middle, keeps sending to replica 2,
// starts them again, and checks that every accepted event is applied
// exactly once, that the api rate limit held across the replicas, that
// the surviving replica answered no 5xx, and that the audit chains verify.
func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the saaskit binary")
	}
	redisURL := os.Getenv("SAASKIT_TEST_REDIS_URL")
	if os.Getenv(dbtest.PostgresEnv) == "" || redisURL == "" {
		t.Skip("needs SAASKIT_TEST_POSTGRES_URL and SAASKIT_TEST_REDIS_URL")
	}
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("SAASKIT_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("redis at SAASKIT_TEST_REDIS_URL unreachable: %v", err)
	}
	db := dbtest.Postgres(t)
	bin := buildSaaskitBin(t)

	url := db.URL
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	url += sep + "search_path=" + db.Schema
	env := []string{
		"SAASKIT_DATABASE_URL=" + url,
		"SAASKIT_REDIS_URL=" + redisURL,
		"SAASKIT_REDIS_PREFIX=saaskit-test:scaleout:" + rand.Text() + ":",
		fmt.Sprintf("SAASKIT_RATE_LIMIT_API=%d/1s,%d", scaleRate, scaleBurst),
		"SAASKIT_RATE_LIMIT_AUTH=0", "SAASKIT_RATE_LIMIT_ANON=0",
		"SAASKIT_AUDIT_SIGNING_KEY=" + testAuditKey(),
		"SAASKIT_LOG_LEVEL=error", "SAASKIT_HASH_CONCURRENCY=2", "SAASKIT_DB_MAX_CONNS=8",
		"SAASKIT_WORKER_POLL_INTERVAL=10ms", "SAASKIT_WORKER_CONCURRENCY=20",
		// A job left running by the killed worker is rescued once it has
		// run for twice this, by the next leader's rescuer.
		"SAASKIT_WEBHOOK_JOB_TIMEOUT=1s",
		"SAASKIT_WEBHOOK_RETRY_BASE=50ms", "SAASKIT_WEBHOOK_RETRY_MAX=200ms",
	}
	c := &scaleClient{t: t, http: &http.Client{Timeout: 30 * time.Second}}
	c.addrs = [2]string{freeLoopbackAddr(t), freeLoopbackAddr(t)}
	serveEnv := append(append([]string{}, env...), "SAASKIT_WORKERS=off")
	replica1 := newSaaskitProc(t, "replica 1", bin, c.addrs[0], serveEnv, "serve")
	replica2 := newSaaskitProc(t, "replica 2", bin, c.addrs[1], serveEnv, "serve")
	worker := newSaaskitProc(t, "worker", bin, "", env, "worker")
	// One at a time: each start migrates, and two processes migrating at
	// once collide on the migration lock.
	replica1.start()
	replica2.start()
	worker.start()
	c.up[0].Store(true)
	c.up[1].Store(true)

	// The owner sets up on replica 2; the load runs as another member, so
	// that its rate-limit key sees the load alone.
	var reg struct {
		Tenant struct{ ID uuid.UUID }
		Access string
	}
	c.must(1, http.StatusCreated, "POST", "/api/auth/register/", "", map[string]any{
		"email": "owner@scale.example.com", "password": testPassword, "full_name": "Owner", "tenant_name": "Scale",
	}, &reg)
	var conn ConnectionView
	c.must(1, http.StatusCreated, "POST", "/api/integrations/connections/", reg.Access,
		map[string]any{"provider": ProviderUserService, "external_account": "scale"}, &conn)
	c.must(0, http.StatusCreated, "POST", "/api/users/", reg.Access, map[string]any{
		"email": "load@scale.example.com", "full_name": "Load", "role": "user", "password": testPassword,
	}, nil)
	var login struct{ Access string }
	c.must(0, http.StatusOK, "POST", "/api/auth/login/", "", map[string]any{
		"email": "load@scale.example.com", "password": testPassword, "tenant": reg.Tenant.ID.String(),
	}, &login)

	// The load: API calls and webhooks on both replicas until stop.
	stop := make(chan struct{})
	var mu sync.Mutex
	var events []*scaleEvent
	var answered atomic.Int64
	var load sync.WaitGroup
	loadStart := time.Now()
	var apiN atomic.Int64
	for range 2 {
		load.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := c.pick(apiN.Add(1))
				rc := &c.counts[i]
				rc.apiSent.Add(1)
				status, _, err := c.call(i, "GET", "/api/users/?limit=5", login.Access, nil, nil)
				switch {
				case err != nil:
					rc.apiConnErr.Add(1)
				case status >= 200 && status < 300:
					rc.api2xx.Add(1)
				case status == http.StatusTooManyRequests:
					rc.api429.Add(1)
				case status >= 500:
					rc.api5xx.Add(1)
				default:
					rc.apiOther.Add(1)
				}
				time.Sleep(2 * time.Millisecond) // a steady load, not a flood
			}
		})
	}
	var hookN atomic.Int64
	send := func(i int, ev *scaleEvent, body []byte) error {
		rc := &c.counts[i]
		rc.hookSent.Add(1)
		status, b, err := c.call(i, "POST", conn.WebhookURL, "", body, webhookstest.SignStandard(ev.id, body, time.Now(), conn.Secret))
		switch {
		case err != nil:
			rc.hookConnErr.Add(1)
			return err
		case status == http.StatusAccepted:
			rc.hook202.Add(1)
		case status == http.StatusOK:
			rc.hook200.Add(1)
		case status >= 500:
			rc.hook5xx.Add(1)
		default:
			rc.hookOther.Add(1)
			t.Errorf("event %s on replica %d: %d %s", ev.id, i+1, status, b)
		}
		ev.statuses = append(ev.statuses, status)
		return nil
	}
	for range 4 {
		load.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := hookN.Add(1)
				ev := &scaleEvent{id: fmt.Sprintf("evt_scale_%d", n)}
				body := event(ev.id, "user.created", map[string]any{
					"id": fmt.Sprintf("ext-%d", n), "email": fmt.Sprintf("scale-%d@example.com", n), "full_name": "Scale " + ev.id,
				})
				i := c.pick(n)
				if err := send(i, ev, body); err != nil {
					// The replica died with the request: the same event
					// goes to the survivor, which stores it once.
					if err := send(1, ev, body); err != nil {
						ev.err = err
					}
				} else if n%10 == 0 && c.up[1-i].Load() {
					// A redelivery to the other replica is a duplicate.
					if err := send(1-i, ev, body); err != nil && 1-i == 1 {
						ev.err = err
					}
				}
				mu.Lock()
				events = append(events, ev)
				mu.Unlock()
				answered.Add(1)
			}
		})
	}
	// A phase lasts until n events are answered and at least
	// scalePhase has passed, so that the load spans a few seconds.
	waitCount := func(what string, n int64) {
		t.Helper()
		start := time.Now()
		deadline := start.Add(60 * time.Second)
		for answered.Load() < n || time.Since(start) < scalePhase {
			if time.Now().After(deadline) {
				close(stop)
				load.Wait()
				t.Fatalf("%s: %d of %d events answered", what, answered.Load(), n)
			}
			time.Sleep(5 * time.Millisecond) // polling, not a timing assertion
		}
	}

	waitCount("before the kill", 60)
	c.up[0].Store(false)
	replica1.kill()
	worker.kill()
	killedAt := answered.Load()
	waitCount("while replica 1 is down", killedAt+60)
	// One at a time again: two processes migrating at once collide on
	// the migration lock.
	restartAt := time.Now()
	replica1.start()
	c.up[0].Store(true)
	worker.start()
	restartedAt := answered.Load()
	waitCount("after the restart", restartedAt+60)
	close(stop)
	load.Wait()
	window := time.Since(loadStart)
	if gone, out := replica2.exited(); gone {
		t.Fatal(out)
	}

	// Every event was answered 202 once (202 by the survivor after a lost
	// answer, or 200 when the lost answer had committed), and redeliveries
	// were duplicates.
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range events {
		if ev.err != nil {
			t.Errorf("event %s: the surviving replica failed: %v", ev.id, ev.err)
			continue
		}
		n202 := 0
		for _, s := range ev.statuses {
			if s == http.StatusAccepted {
				n202++
			}
		}
		if n202 > 1 || (n202 == 0 && (len(ev.statuses) == 0 || ev.statuses[0] != http.StatusOK)) {
			t.Errorf("event %s answered %v: want one 202, the rest 200", ev.id, ev.statuses)
		}
	}
	total := int64(len(events))

	// Every stored event gets processed, by the worker that started again.
	ctx := t.Context()
	var processed, stored int64
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := db.NewRaw(`SELECT count(*) FILTER (WHERE status = ?), count(*) FROM webhook_events WHERE connection_id = ?`,
			EventProcessed, conn.ID).Scan(ctx, &processed, &stored)
		if err != nil {
			t.Fatal(err)
		}
		if processed == total && stored == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored, %d processed, want %d: %s", stored, processed, total, eventStates(t, db, conn.ID))
		}
		if gone, out := worker.exited(); gone {
			t.Fatal(out)
		}
		time.Sleep(50 * time.Millisecond) // polling, not a timing assertion
	}
	processingAfterRestart := time.Since(restartAt)

	// Each event's effect exists once: one member per event, one
	// member.created by the integration per event, and no event stored
	// twice.
	var dupEvents, members, distinctEmails, created int64
	if err := db.NewRaw(`SELECT count(*) FROM (SELECT event_id FROM webhook_events WHERE connection_id = ? GROUP BY event_id HAVING count(*) > 1) d`,
		conn.ID).Scan(ctx, &dupEvents); err != nil {
		t.Fatal(err)
	}
	if err := db.NewRaw(`SELECT count(*), count(DISTINCT u.email) FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = ? AND u.email LIKE 'scale-%@example.com'`, reg.Tenant.ID).Scan(ctx, &members, &distinctEmails); err != nil {
		t.Fatal(err)
	}
	if err := db.NewRaw(`SELECT count(*) FROM audit_events WHERE tenant_id = ? AND action = ? AND actor_type = 'integration' AND actor_id = ?`,
		reg.Tenant.ID, ActionMemberCreated, ProviderUserService).Scan(ctx, &created); err != nil {
		t.Fatal(err)
	}
	if dupEvents != 0 || members != total || distinctEmails != total || created != total {
		t.Errorf("%d events: %d stored twice, %d members (%d distinct emails), %d member.created by the integration; want each once",
			total, dupEvents, members, distinctEmails, created)
	}

	// No replica answered 5xx; replica 2 never failed a request.
	for i := range c.counts {
		rc := &c.counts[i]
		if rc.api5xx.Load() != 0 || rc.hook5xx.Load() != 0 || rc.apiOther.Load() != 0 {
			t.Errorf("replica %d: %d API 5xx, %d webhook 5xx, %d API answers neither 2xx nor 429", i+1, rc.api5xx.Load(), rc.hook5xx.Load(), rc.apiOther.Load())
		}
	}
	if n := c.counts[1].apiConnErr.Load() + c.counts[1].hookConnErr.Load(); n != 0 {
		t.Errorf("replica 2 (never killed): %d connection errors", n)
	}

	// The api limit is shared: Redis's GCRA admits at most burst +
	// floor(elapsed x rate) requests of one key in any window, whichever
	// replica asks, and the load's window holds every decision of the
	// load (one more is allowed for the rounding of Redis's clock and
	// floating-point arithmetic). Limits kept per replica would admit up
	// to twice as many.
	ok2xx := c.counts[0].api2xx.Load() + c.counts[1].api2xx.Load()
	refused := c.counts[0].api429.Load() + c.counts[1].api429.Load()
	bound := int64(scaleBurst) + int64(window.Seconds()*scaleRate) + 1
	if ok2xx > bound {
		t.Errorf("%d API requests admitted across the replicas in %v, more than the shared limit allows (%d)", ok2xx, window, bound)
	}
	if refused == 0 || ok2xx == 0 {
		t.Errorf("the load did not meet the limit: %d admitted, %d refused", ok2xx, refused)
	}
	if c.counts[0].api2xx.Load() == 0 || c.counts[1].api2xx.Load() == 0 {
		t.Errorf("admitted per replica %d and %d: want both to serve", c.counts[0].api2xx.Load(), c.counts[1].api2xx.Load())
	}

	// The audit chains verify once the replicas have sealed every event.
	for _, tenant := range []uuid.UUID{reg.Tenant.ID, uuid.Nil} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			res, err := audit.Verify(ctx, db, tenant)
			if err != nil {
				t.Fatalf("audit chain of %s: %v", tenant, err)
			}
			// Verify reads the head before it counts the unsealed events, so
			// a Seal in between can leave both short: the tenant's chain is
			// complete once it holds an event a member created.
			complete := tenant == uuid.Nil || res.Events >= total
			if res.Unsealed == 0 && complete {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("audit chain of %s: %d events chained (want at least %d for the tenant), %d unsealed after 30s",
					tenant, res.Events, total, res.Unsealed)
			}
			time.Sleep(50 * time.Millisecond) // polling, not a timing assertion
		}
	}

	for i := range c.counts {
		rc := &c.counts[i]
		t.Logf("replica %d: API sent %d, 2xx %d, 429 %d, connection errors %d; webhooks sent %d, 202 %d, 200 %d, connection errors %d",
			i+1, rc.apiSent.Load(), rc.api2xx.Load(), rc.api429.Load(), rc.apiConnErr.Load(),
			rc.hookSent.Load(), rc.hook202.Load(), rc.hook200.Load(), rc.hookConnErr.Load())
	}
	t.Logf("%d events accepted (killed after %d, restarted after %d); all processed %v after the restart; API admitted %d of limit %d in %v, refused %d",
		total, killedAt, restartedAt, processingAfterRestart.Round(time.Millisecond), ok2xx, bound, window.Round(time.Millisecond), refused)
}

// eventStates summarizes the events by status, for a failure message.
func eventStates(t *testing.T, db *dbtest.DB, conn uuid.UUID) string {
	var rows []struct {
		Status string
		N      int64
	}
	err := db.NewRaw(`SELECT status, count(*) AS n FROM webhook_events WHERE connection_id = ? GROUP BY status`, conn).Scan(t.Context(), &rows)
	if err != nil {
		return err.Error()
	}
	var jobs []struct {
		State string
		N     int64
	}
	if err := db.NewRaw(`SELECT state, count(*) AS n FROM river_job GROUP BY state`).Scan(t.Context(), &jobs); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("events %v, jobs %v", rows, jobs)
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/server"
	"github.com/saaskit/saaskit/tenancy"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// hooks is the webhook side of an in-process server: a tenant with a
// user-service connection, and a sequence for unique event ids.
type hooks struct {
	e      *env
	tenant uuid.UUID
	conn   server.ConnectionView
	seq    atomic.Int64
	run    string
}

// newHooks registers an owner and creates a user-service connection.
func newHooks(ctx context.Context, e *env) (*hooks, error) {
	owner, err := e.registerOwner(ctx, "owner@hooks.example.com", "Hooks Bench")
	if err != nil {
		return nil, fmt.Errorf("bench: register: %w", err)
	}
	h := &hooks{e: e, tenant: owner.Tenant.ID, run: uuid.NewString()[:8]}
	err = e.call(ctx, http.MethodPost, "/api/integrations/connections/", owner.Access,
		map[string]string{"provider": server.ProviderUserService, "external_account": "bench"}, &h.conn, http.StatusCreated)
	return h, err
}

// event returns a new user.created event: its id and body. The body is
// written by hand: the load generator shares the machine with the server,
// and encoding/json would spend its share on the client.
func (h *hooks) event() (string, []byte) {
	n := strconv.FormatInt(h.seq.Add(1), 10)
	id := "evt_" + h.run + "_" + n
	b := make([]byte, 0, 160)
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","type":"user.created","data":{"id":"u_`...)
	b = append(b, h.run+"_"+n...)
	b = append(b, `","email":"u`...)
	b = append(b, n+"-"+h.run...)
	b = append(b, `@hooks.example.com","full_name":"Hook Member"}}`...)
	return id, b
}

// post sends body signed for the connection to path and checks the status.
func (h *hooks) post(ctx context.Context, path, id string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.e.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range webhookstest.SignStandard(id, body, time.Now(), h.conn.Secret) {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, b)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// single sends one new event.
func (h *hooks) single(ctx context.Context) error {
	id, body := h.event()
	return h.post(ctx, h.conn.WebhookURL, id, body, http.StatusAccepted)
}

// batch sends n new events in one request.
func (h *hooks) batch(ctx context.Context, n int) error {
	body := make([]byte, 0, 170*n)
	body = append(body, '[')
	for i := range n {
		if i > 0 {
			body = append(body, ',')
		}
		_, ev := h.event()
		body = append(body, ev...)
	}
	body = append(body, ']')
	return h.post(ctx, h.conn.WebhookURL+"batch/", "batch_"+uuid.NewString(), body, http.StatusMultiStatus)
}

// preload stores n processed events of the connection directly, as if
// received and processed earlier.
func (h *hooks) preload(ctx context.Context, cfg Config, n int) error {
	if n <= 0 {
		return nil
	}
	t0 := time.Now()
	db := h.e.srv.DB()
	t, err := (&tenancy.Store{}).Get(tenancy.System(ctx), db, h.tenant)
	if err != nil {
		return err
	}
	tctx := tenancy.WithTenant(ctx, t)
	const chunk = 2000
	for done := 0; done < n; done += chunk {
		evs := make([]*server.WebhookEvent, 0, chunk)
		at := time.Now().UTC().Add(-time.Hour)
		for i := done; i < min(n, done+chunk); i++ {
			id, body := h.event()
			evs = append(evs, &server.WebhookEvent{ID: uuid.Must(uuid.NewV7()), ConnectionID: h.conn.ID,
				Provider: server.ProviderUserService, EventID: id, Type: "user.created", Payload: string(body),
				Status: server.EventProcessed, Attempts: 1, ReceivedAt: at, ProcessedAt: &at, UpdatedAt: at})
		}
		err := db.RunInTx(tctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.NewInsert().Model(&evs).Exec(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench: preload: %w", err)
		}
		if done/chunk%50 == 49 {
			fmt.Fprintf(cfg.Log, "preloaded %d events\n", done+chunk)
		}
	}
	if h.e.dbName == "pg" {
		db.ExecContext(ctx, "ANALYZE webhook_events")
	}
	fmt.Fprintf(cfg.Log, "preloaded %d processed events in %s\n", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// rawInserts measures single-row durable inserts into a table of the same
// database, each its own transaction (autocommit), with a body the size of
// an event's: the rate the ingest scenarios are compared with.
func rawInserts(ctx context.Context, cfg Config, e *env) (Result, error) {
	db := e.srv.DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_raw_inserts (id TEXT PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		return Result{}, fmt.Errorf("bench: raw inserts: %w", err)
	}
	q := "INSERT INTO bench_raw_inserts (id, body) VALUES (?, ?)"
	if db.Dialect().Name() == dialect.PG {
		q = "INSERT INTO bench_raw_inserts (id, body) VALUES ($1, $2)"
	}
	h := &hooks{run: "raw"}
	r := measure(ctx, cfg, "raw single-row insert", e.dbName, func(ctx context.Context, _ int) error {
		id, body := h.event()
		_, err := db.DB.ExecContext(ctx, q, id, body)
		return err
	})
	// A connection whose statement the end of the run cancelled may be
	// closed; the drop takes another.
	var err error
	for range 3 {
		if _, err = db.ExecContext(ctx, `DROP TABLE bench_raw_inserts`); err == nil {
			break
		}
	}
	if err != nil {
		return r, fmt.Errorf("bench: raw inserts: %w", err)
	}
	return r, nil
}

// withHooks runs fn against an in-process server with a user-service
// connection, then closes the server.
func withHooks(ctx context.Context, cfg Config, fn func(e *env, h *hooks) ([]Result, error)) ([]Result, error) {
	e, err := start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	h, err := newHooks(ctx, e)
	if err != nil {
		return nil, err
	}
	return fn(e, h)
}

// withRaw appends to r the raw single-row insert rate of e's database.
func withRaw(ctx context.Context, cfg Config, e *env, r Result) ([]Result, error) {
	raw, err := rawInserts(ctx, cfg, e)
	if err != nil {
		return nil, err
	}
	return []Result{r, raw}, nil
}

// webhookIngest measures signed single events, then raw single-row
// inserts into the same database.
func webhookIngest(ctx context.Context, cfg Config) ([]Result, error) {
	return withHooks(ctx, cfg, func(e *env, h *hooks) ([]Result, error) {
		if err := h.preload(ctx, cfg, cfg.Preload); err != nil {
			return nil, err
		}
		name := "webhook-ingest"
		if cfg.Preload > 0 {
			name = fmt.Sprintf("webhook-ingest (%d stored)", cfg.Preload)
		}
		r := measure(ctx, cfg, name, e.dbName, func(ctx context.Context, _ int) error { return h.single(ctx) })
		return withRaw(ctx, cfg, e, r)
	})
}

// webhookBatch measures batches of cfg.BatchSize signed events a request.
func webhookBatch(ctx context.Context, cfg Config) ([]Result, error) {
	return withHooks(ctx, cfg, func(e *env, h *hooks) ([]Result, error) {
		r := measure(ctx, cfg, fmt.Sprintf("webhook-batch (%d a request)", cfg.BatchSize), e.dbName,
			func(ctx context.Context, _ int) error { return h.batch(ctx, cfg.BatchSize) })
		r.EventsPerRequest = cfg.BatchSize
		r.EventsPerSecond = r.PerSecond * float64(cfg.BatchSize)
		return withRaw(ctx, cfg, e, r)
	})
}

// webhookProcess sends events at a steady cfg.Rate a second with the
// workers on, for cfg.Duration after the warmup: single signed events by
// default, or batches of cfg.BatchSize when cfg.BatchSize > 1 (to offer
// more than the single-event ingest rate). It then waits for the backlog
// to drain and reports the latency from receipt to processed (P50, P90,
// P99), the rate processed during the measured window, and the backlog
// left at its end.
func webhookProcess(ctx context.Context, cfg Config) ([]Result, error) {
	return withHooks(ctx, cfg, func(e *env, h *hooks) ([]Result, error) { return process(ctx, cfg, e, h) })
}

func process(ctx context.Context, cfg Config, e *env, h *hooks) ([]Result, error) {
	if err := e.srv.StartWorkers(ctx); err != nil {
		return nil, err
	}
	db := e.srv.DB()
	sysctx := tenancy.System(ctx)
	count := func(processed bool) (int64, error) {
		q := db.NewSelect().Model((*server.WebhookEvent)(nil))
		if processed {
			q = q.Where("status IN (?)", bun.In([]string{server.EventProcessed, server.EventSkipped}))
		}
		return q.Count(sysctx)
	}
	per := max(cfg.BatchSize, 1)
	send := func(ctx context.Context) error {
		if per == 1 {
			return h.single(ctx)
		}
		return h.batch(ctx, per)
	}
	// Offer the load: one request every per/Rate seconds, each in its own
	// goroutine (up to 4*Concurrency in flight), whatever the answers.
	var sendErrs, sent atomic.Int64
	offer := func(d time.Duration) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		interval := time.Duration(float64(time.Second) * float64(per) / float64(cfg.Rate))
		tick := time.NewTicker(interval)
		defer tick.Stop()
		sem := make(chan struct{}, 4*cfg.Concurrency)
		var wg sync.WaitGroup
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					continue
				}
				wg.Go(func() {
					defer func() { <-sem }()
					if err := send(context.WithoutCancel(ctx)); err != nil {
						if sendErrs.Add(1) == 1 {
							fmt.Fprintf(cfg.Log, "first error: %v\n", err)
						}
						return
					}
					sent.Add(int64(per))
				})
			}
		}
		wg.Wait()
	}
	if cfg.Warmup > 0 {
		offer(cfg.Warmup)
	}
	p0, err := count(true)
	if err != nil {
		return nil, err
	}
	from := time.Now().UTC()
	sent.Store(0)
	offer(cfg.Duration)
	elapsed := time.Since(from)
	p1, err := count(true)
	if err != nil {
		return nil, err
	}
	all, err := count(false)
	if err != nil {
		return nil, err
	}
	backlog := all - p1
	// Wait for the rest, then read the latencies of the events received
	// in the measured window.
	deadline := time.Now().Add(5 * time.Minute)
	for n := p1; n < all && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if n, err = count(true); err != nil {
			return nil, err
		}
	}
	var rows []struct {
		ReceivedAt  time.Time  `bun:"received_at"`
		ProcessedAt *time.Time `bun:"processed_at"`
	}
	err = db.NewSelect().Model((*server.WebhookEvent)(nil)).Column("received_at", "processed_at").
		Where("received_at >= ?", from).Scan(sysctx, &rows)
	if err != nil {
		return nil, err
	}
	var lat []time.Duration
	for _, r := range rows {
		if r.ProcessedAt != nil {
			lat = append(lat, r.ProcessedAt.Sub(r.ReceivedAt))
		}
	}
	slices.Sort(lat)
	r := Result{Scenario: fmt.Sprintf("webhook-process (%d/s offered, %d a request)", cfg.Rate, per), Database: e.dbName,
		Concurrency: cfg.Concurrency, Requests: int64(len(rows)), Errors: sendErrs.Load(), Elapsed: elapsed,
		PerSecond: float64(p1-p0) / elapsed.Seconds(), Backlog: backlog, Offered: float64(sent.Load()) / elapsed.Seconds(),
		Latency: true}
	if len(lat) > 0 {
		r.P50, r.P90, r.P99 = lat[len(lat)*50/100], lat[len(lat)*90/100], lat[len(lat)*99/100]
	}
	r.PeakRSS = peakRSS()
	return []Result{r}, nil
}

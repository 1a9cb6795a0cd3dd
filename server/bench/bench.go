// Package bench is the load tool of the reference server: named scenarios run
// against a server it starts in-process (on SQLite in a temporary directory,
// or on the database it is given) or against a URL, with a concurrency and a
// duration, and report requests/s, p50, p90, p99 and errors.
//
// The saaskit binary runs it as "saaskit bench"; its figures are the ones the
// project reports. Speed is measured here and in Go benchmarks, never by
// timing assertions in tests.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/server"
)

// ErrUnknownScenario is returned for a scenario name Run does not know.
var ErrUnknownScenario = errors.New("bench: unknown scenario")

// Config selects a scenario and its load. The zero value of each field is the
// default given in its comment.
type Config struct {
	// Scenario is one of [Scenarios].
	Scenario string
	// Concurrency is the number of clients; default 16.
	Concurrency int
	// Duration of the measured run; default 10s.
	Duration time.Duration
	// Warmup runs before measuring; default 1s.
	Warmup time.Duration
	// DatabaseURL of the in-process server; default a SQLite file in a
	// temporary directory. A Postgres database should be empty: bench creates
	// its tables and data.
	DatabaseURL string
	// Members in the tenant under test (users-list); default 10,000.
	Members int
	// OtherTenants are extra tenants seeded beside the one under test, each
	// with OtherMembers members; default none.
	OtherTenants, OtherMembers int
	// MaxConns is the database pool size; 0 means the server's default.
	MaxConns int
	// DisableAudit runs the server without its audit log (server.Options
	// DisableAudit), to measure what the log costs. users-create measures
	// with and without by default; with DisableAudit it runs without only.
	DisableAudit bool
	// Preload, for webhook-ingest, is the number of processed events stored
	// before measuring (the cost of ingest as the data grows).
	Preload int
	// BatchSize is the events a request of webhook-batch (default 100) and
	// of webhook-process (default 1: single events).
	BatchSize int
	// Rate is the events a second webhook-process offers; default 500.
	Rate int
	// Log receives progress lines; nil means discard.
	Log io.Writer
}

// Result is one measured run.
type Result struct {
	Scenario    string        `json:"scenario"`
	Database    string        `json:"database"`
	Concurrency int           `json:"concurrency"`
	Requests    int64         `json:"requests"`
	Errors      int64         `json:"errors"`
	Elapsed     time.Duration `json:"elapsed"`
	PerSecond   float64       `json:"per_second"`
	P50         time.Duration `json:"p50"`
	P90         time.Duration `json:"p90"`
	P99         time.Duration `json:"p99"`
	// PeakRSS is the process's peak resident set in bytes (Linux), when known.
	PeakRSS int64 `json:"peak_rss,omitempty"`
	// EventsPerRequest and EventsPerSecond are set by webhook-batch.
	EventsPerRequest int     `json:"events_per_request,omitempty"`
	EventsPerSecond  float64 `json:"events_per_second,omitempty"`
	// Latency is set by webhook-process, whose percentiles are of the time
	// from receipt to processed, whose PerSecond is the events processed a
	// second, Offered the events accepted a second, and Backlog the events
	// not yet processed at the end of the measured window.
	Latency bool    `json:"latency,omitempty"`
	Offered float64 `json:"offered_per_second,omitempty"`
	Backlog int64   `json:"backlog,omitempty"`
}

// String formats r as one report line.
func (r Result) String() string {
	if r.Latency {
		return fmt.Sprintf("%-22s %-8s accepted %6.0f/s  processed %6.0f/s  backlog %d  receipt to processed: p50 %-9s p90 %-9s p99 %-9s  errors %d",
			r.Scenario, r.Database, r.Offered, r.PerSecond, r.Backlog, round(r.P50), round(r.P90), round(r.P99), r.Errors)
	}
	s := fmt.Sprintf("%-22s %-8s c=%-3d %8.0f req/s  p50 %-9s p90 %-9s p99 %-9s  errors %d/%d",
		r.Scenario, r.Database, r.Concurrency, r.PerSecond, round(r.P50), round(r.P90), round(r.P99), r.Errors, r.Requests)
	if r.EventsPerSecond > 0 {
		s += fmt.Sprintf("  = %.0f events/s", r.EventsPerSecond)
	}
	if r.PeakRSS > 0 {
		s += fmt.Sprintf("  peak RSS %.0f MB", float64(r.PeakRSS)/(1<<20))
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// Scenarios lists the scenario names Run knows.
var Scenarios = []string{"users-list", "login", "users-create", "webhook-ingest", "webhook-batch", "webhook-process"}

func (c *Config) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = time.Second
	}
	if c.Members <= 0 {
		c.Members = 10000
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.BatchSize <= 0 && c.Scenario == "webhook-batch" {
		c.BatchSize = 100
	}
	if c.Rate <= 0 {
		c.Rate = 500
	}
}

// env is the in-process server a scenario runs against.
type env struct {
	srv    *server.Server
	base   string
	client *http.Client
	dbName string
	close  func()
}

// start starts an in-process server. Rate limits are off: the bench
// measures the server, not the limiter.
func start(ctx context.Context, cfg Config) (*env, error) {
	url := cfg.DatabaseURL
	var cleanup []func()
	if url == "" {
		dir, err := os.MkdirTemp("", "saaskit-bench-")
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) })
		url = filepath.Join(dir, "bench.db")
	}
	db, err := sqldb.Open(ctx, url, sqldb.Options{MaxOpenConns: cfg.MaxConns})
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { db.Close() })
	scfg := server.Config{DatabaseURL: url, PasswordMinLength: 8, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0"}
	scfg.Defaults()
	srv, err := server.New(ctx, scfg, server.Options{DB: db, NoAccessLog: true, Logger: slog.New(slog.DiscardHandler), DisableAudit: cfg.DisableAudit})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	cleanup = append(cleanup, func() { hs.Close() })
	// Chain audit events as serve does, so that the sealer's cost is in the
	// figures.
	sealCtx, stopSeal := context.WithCancel(ctx)
	sealed := make(chan struct{})
	go func() {
		defer close(sealed)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sealCtx.Done():
				return
			case <-t.C:
				srv.SealAudit(sealCtx) //nolint:errcheck // a failed seal is retried on the next tick
			}
		}
	}()
	cleanup = append(cleanup, func() { stopSeal(); <-sealed })
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
	e := &env{
		srv:    srv,
		base:   "http://" + ln.Addr().String(),
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		dbName: db.Dialect().Name().String(),
	}
	e.close = func() {
		tr.CloseIdleConnections()
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	return e, nil
}

// Run runs cfg.Scenario and returns its results: the HTTP run and, where the
// scenario has one, a baseline measured in the same process (for users-list,
// the same query through Bun without HTTP).
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	cfg.defaults()
	switch cfg.Scenario {
	case "users-list":
		return usersList(ctx, cfg)
	case "login":
		return login(ctx, cfg)
	case "users-create":
		return usersCreate(ctx, cfg)
	case "webhook-ingest":
		return webhookIngest(ctx, cfg)
	case "webhook-batch":
		return webhookBatch(ctx, cfg)
	case "webhook-process":
		return webhookProcess(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownScenario, cfg.Scenario, strings.Join(Scenarios, ", "))
}

// op is one unit of load; it reports whether it succeeded.
type op func(ctx context.Context, worker int) error

// measure runs op from cfg.Concurrency workers for the warmup and then for
// cfg.Duration, recording each call's latency.
func measure(ctx context.Context, cfg Config, name, dbName string, fn op) Result {
	run := func(d time.Duration, record bool) ([][]time.Duration, int64, time.Duration) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		lat := make([][]time.Duration, cfg.Concurrency)
		var errs atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 4096)
				for ctx.Err() == nil {
					t0 := time.Now()
					err := fn(ctx, w)
					if ctx.Err() != nil {
						break
					}
					if err != nil {
						if errs.Add(1) == 1 {
							fmt.Fprintf(cfg.Log, "first error: %v\n", err)
						}
					}
					if record {
						local = append(local, time.Since(t0))
					}
				}
				lat[w] = local
			}()
		}
		wg.Wait()
		return lat, errs.Load(), time.Since(start)
	}
	if cfg.Warmup > 0 {
		run(cfg.Warmup, false)
	}
	lat, errs, elapsed := run(cfg.Duration, true)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := Result{Scenario: name, Database: dbName, Concurrency: cfg.Concurrency, Requests: int64(len(all)), Errors: errs, Elapsed: elapsed}
	if len(all) > 0 {
		r.PerSecond = float64(len(all)) / elapsed.Seconds()
		r.P50 = all[len(all)*50/100]
		r.P90 = all[len(all)*90/100]
		r.P99 = all[len(all)*99/100]
	}
	r.PeakRSS = peakRSS()
	return r
}

// peakRSS reads VmHWM from /proc/self/status (Linux); 0 elsewhere.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// call sends a JSON request and decodes a JSON answer into out (if not nil),
// failing on any status but want.
func (e *env) call(ctx context.Context, method, path, token string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

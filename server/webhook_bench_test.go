package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// benchReceiver is a server that only receives (no workers), with one
// user-service connection.
type benchReceiver struct {
	srv  *Server
	url  string
	conn ConnectionView
	c    *http.Client
}

func newBenchReceiver(b *testing.B, db *dbtest.DB) *benchReceiver {
	b.Helper()
	cfg := Config{DatabaseURL: db.URL, HashConcurrency: 4, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0",
		AuditSigningKey: testAuditKey(), Workers: "off"}
	cfg.Defaults()
	srv, err := New(b.Context(), cfg, Options{DB: db.DB, NoAccessLog: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	c := ts.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	post := func(path, token string, body any, out any) {
		buf, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(buf))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			raw, _ := io.ReadAll(resp.Body)
			b.Fatalf("%s: %d %s", path, resp.StatusCode, raw)
		}
		json.NewDecoder(resp.Body).Decode(out)
	}
	var reg struct{ Access string }
	post("/api/auth/register/", "", map[string]any{"email": "bench@example.com", "password": testPassword,
		"full_name": "Bench", "tenant_name": "Bench"}, &reg)
	r := &benchReceiver{srv: srv, url: ts.URL, c: c}
	post("/api/integrations/connections/", reg.Access, map[string]any{"provider": ProviderUserService, "external_account": "bench"}, &r.conn)
	return r
}

func (r *benchReceiver) send(b *testing.B, path, id string, body []byte) {
	req, _ := http.NewRequest("POST", r.url+path, bytes.NewReader(body))
	for k, v := range webhookstest.SignStandard(id, body, time.Now(), r.conn.Secret) {
		req.Header[k] = v
	}
	resp, err := r.c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusMultiStatus {
		b.Errorf("status %d", resp.StatusCode)
	}
}

func benchDBs(b *testing.B, fn func(b *testing.B, db *dbtest.DB)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv(dbtest.PostgresEnv) == "" {
			b.Skip(dbtest.PostgresEnv + " not set")
		}
		fn(b, dbtest.Postgres(b))
	})
}

var benchSeq atomic.Int64

// BenchmarkWebhookIngest sends signed single events at 16 concurrent
// requests (on 2 CPUs, parallelism 8) and reports accepted events/s: each
// is one transaction with its row and its River job.
func BenchmarkWebhookIngest(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		r := newBenchReceiver(b, db)
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprintf("evt_%d", benchSeq.Add(1))
				r.send(b, r.conn.WebhookURL, id, event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"}))
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	})
}

// BenchmarkWebhookBatch sends batches of 100 signed events, 4 at a time,
// and reports accepted events/s.
func BenchmarkWebhookBatch(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		r := newBenchReceiver(b, db)
		b.SetParallelism(2)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				items := make([]json.RawMessage, 100)
				for i := range items {
					id := fmt.Sprintf("evt_%d", benchSeq.Add(1))
					items[i] = event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"})
				}
				body, _ := json.Marshal(items)
				r.send(b, r.conn.WebhookURL+"batch/", "batch", body)
			}
		})
		b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "events/s")
	})
}

// BenchmarkWebhookEndToEnd sends signed events at a steady rate (-rate,
// default 500/s) for two seconds with the workers on, waits until every one
// is processed, and reports the latency from receipt to processed (the
// processing transaction's time) at p50 and p99. Run it with
// -benchtime=1x.
func BenchmarkWebhookEndToEnd(b *testing.B) {
	benchDBs(b, func(b *testing.B, db *dbtest.DB) {
		r := newBenchReceiver(b, db)
		if err := r.srv.StartWorkers(b.Context()); err != nil {
			b.Fatal(err)
		}
		const rate, seconds = 500, 2
		for b.Loop() {
			tick := time.NewTicker(time.Second / rate)
			sem := make(chan struct{}, 64)
			var wg sync.WaitGroup
			for range rate * seconds {
				<-tick.C
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					id := fmt.Sprintf("evt_%d", benchSeq.Add(1))
					r.send(b, r.conn.WebhookURL, id, event(id, "user.created", map[string]any{"id": id, "email": id + "@example.com"}))
				})
			}
			tick.Stop()
			wg.Wait()
			var lat []time.Duration
			deadline := time.Now().Add(2 * time.Minute)
			for {
				var evs []WebhookEvent
				err := r.srv.db.NewSelect().Model(&evs).Column("received_at", "processed_at", "status").
					Scan(tenancy.System(b.Context()))
				if err != nil {
					b.Fatal(err)
				}
				lat = lat[:0]
				for _, e := range evs {
					if e.ProcessedAt != nil {
						lat = append(lat, e.ProcessedAt.Sub(e.ReceivedAt))
					}
				}
				if len(lat) == len(evs) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			slices.Sort(lat)
			if len(lat) == 0 {
				b.Fatal("nothing processed")
			}
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(len(lat)), "processed")
			var pickup, work []time.Duration
			var jobs []struct {
				CreatedAt   time.Time  `bun:"created_at"`
				AttemptedAt *time.Time `bun:"attempted_at"`
				FinalizedAt *time.Time `bun:"finalized_at"`
			}
			if err := r.srv.db.NewSelect().Table("river_job").Column("created_at", "attempted_at", "finalized_at").
				Where("kind = ?", webhookBatchArgs{}.Kind()).Scan(tenancy.System(b.Context()), &jobs); err != nil {
				b.Fatal(err)
			}
			for _, j := range jobs {
				if j.AttemptedAt != nil && j.FinalizedAt != nil {
					pickup = append(pickup, j.AttemptedAt.Sub(j.CreatedAt))
					work = append(work, j.FinalizedAt.Sub(*j.AttemptedAt))
				}
			}
			slices.Sort(pickup)
			slices.Sort(work)
			if len(pickup) > 0 {
				b.ReportMetric(float64(len(lat))/float64(len(pickup)), "events/job")
				b.ReportMetric(float64(pickup[len(pickup)/2].Microseconds())/1000, "pickup-p50-ms")
				b.ReportMetric(float64(work[len(work)/2].Microseconds())/1000, "work-p50-ms")
			}
		}
	})
}

package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/riverqueue/river"
	"github.com/uptrace/bun"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

// syncBuffer is a log destination shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// lines returns the JSON log records.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// newLoggedServer is a test server with its access log on, in JSON, in the
// returned buffer. The caller closes the server (t.Cleanup does too).
func newLoggedServer(t *testing.T, db *dbtest.DB, opts Options) (*testServer, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	cfg := Config{DatabaseURL: db.URL, HashConcurrency: 4, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0",
		AuditSigningKey: testAuditKey()}
	cfg.Defaults()
	opts.DB = db.DB
	opts.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &testServer{t: t, srv: srv, ts: ts, db: db}, buf
}

// collector is an OTLP/HTTP trace receiver.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	spans    []*tracepb.Span
	services []string
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
			t.Errorf("collector: %s %s: not an OTLP trace export", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests++
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					c.services = append(c.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// clearOTelEnv unsets every variable that could turn tracing on.
func clearOTelEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		t.Setenv(k, "")
	}
}

// eachDB runs fn on SQLite and on Postgres one after the other (not in
// parallel: the tests set environment variables).
func eachDB(t *testing.T, fn func(t *testing.T, db *dbtest.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, dbtest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, dbtest.Postgres(t)) })
}

// TestTracingOTLPExport turns tracing on with the standard variables only
// and checks what an OTLP collector receives for one API request: a server
// span named by the route, query spans under it, and the request's log
// line carrying the same trace id.
func TestTracingOTLPExport(t *testing.T) {
	clearOTelEnv(t)
	eachDB(t, func(t *testing.T, db *dbtest.DB) {
		col := newCollector(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
		t.Setenv("OTEL_SERVICE_NAME", "saaskit-under-test")
		s, logs := newLoggedServer(t, db, Options{})
		if !s.srv.tracing.on() {
			t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT set, tracing off")
		}
		owner := s.register("owner@example.com", "Acme")
		r := s.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil)
		reqID := r.Header.Get("X-Request-ID")
		if err := s.srv.Close(); err != nil { // flushes the batch
			t.Fatal(err)
		}

		col.mu.Lock()
		defer col.mu.Unlock()
		if len(col.services) == 0 || col.services[0] != "saaskit-under-test" {
			t.Errorf("service names %v, want saaskit-under-test", col.services)
		}
		var server *tracepb.Span
		for _, sp := range col.spans {
			if sp.Name == "GET /api/users/" && sp.Kind == tracepb.Span_SPAN_KIND_SERVER {
				server = sp
			}
		}
		if server == nil {
			var names []string
			for _, sp := range col.spans {
				names = append(names, sp.Name)
			}
			t.Fatalf("no server span GET /api/users/ among %q", names)
		}
		// Every span of the trace, by id, to walk up from the queries.
		byID := map[string]*tracepb.Span{}
		for _, sp := range col.spans {
			if bytes.Equal(sp.TraceId, server.TraceId) {
				byID[string(sp.SpanId)] = sp
			}
		}
		queries := 0
		for _, sp := range byID {
			if sp.Kind != tracepb.Span_SPAN_KIND_CLIENT || !hasAttr(sp, "db.statement") {
				continue
			}
			for p := sp; p != nil; p = byID[string(p.ParentSpanId)] {
				if p == server {
					queries++
					break
				}
			}
		}
		if queries == 0 {
			t.Fatalf("no query span under the server span (%d spans in its trace)", len(byID))
		}
		traceID := hex.EncodeToString(server.TraceId)
		found := false
		for _, l := range logs.lines(t) {
			if l["msg"] == "request" && l["request_id"] == reqID {
				found = true
				if l["trace_id"] != traceID || l["span_id"] != hex.EncodeToString(server.SpanId) {
					t.Errorf("request log line %v: want trace_id %s span_id %x", l, traceID, server.SpanId)
				}
			}
		}
		if !found {
			t.Fatalf("no request log line with request id %s", reqID)
		}
	})
}

func hasAttr(sp *tracepb.Span, key string) bool {
	for _, a := range sp.Attributes {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestTracingOffExportsNothing checks that tracing stays off without the
// variables, with OTEL_TRACES_EXPORTER=none and with OTEL_SDK_DISABLED, even
// where an endpoint is set: the collector receives nothing and the logs
// carry no trace id.
func TestTracingOffExportsNothing(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
	}{
		{"no variables", nil},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "COLLECTOR"}},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "COLLECTOR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			col := newCollector(t)
			for k, v := range tc.env {
				t.Setenv(k, strings.ReplaceAll(v, "COLLECTOR", col.URL))
			}
			s, logs := newLoggedServer(t, dbtest.SQLite(t), Options{})
			if s.srv.tracing.on() {
				t.Fatal("tracing on")
			}
			owner := s.register("owner@example.com", "Acme")
			// A caller's trace context is not continued either.
			s.doH("GET", "/api/users/", owner.Access, nil, http.Header{
				"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
			if err := s.srv.Close(); err != nil {
				t.Fatal(err)
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			if col.requests != 0 {
				t.Errorf("collector received %d exports", col.requests)
			}
			for _, l := range logs.lines(t) {
				if _, ok := l["trace_id"]; ok {
					t.Errorf("log line with a trace id: %v", l)
				}
			}
		})
	}
}

// TestTracingConfigErrors checks that an exporter or protocol the server
// does not speak is a configuration error.
func TestTracingConfigErrors(t *testing.T) {
	for _, env := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	} {
		getenv := func(k string) string { return env[k] }
		if _, err := newTracing(t.Context(), getenv, nil); err == nil || !strings.Contains(err.Error(), "OTEL_") {
			t.Errorf("%v: error %v, want a configuration error naming the variable", env, err)
		}
	}
}

// queryJobArgs is a job that runs a query.
type queryJobArgs struct{}

func (queryJobArgs) Kind() string { return "telemetry_test_query" }

type queryWorker struct {
	river.WorkerDefaults[queryJobArgs]
	s *Server
}

func (w *queryWorker) Work(ctx context.Context, job *river.Job[queryJobArgs]) error {
	return w.s.tx.Read(tenancy.System(ctx), func(ctx context.Context, db bun.IDB) error {
		var n int
		return db.NewSelect().ColumnExpr("count(*)").TableExpr("tenants").Scan(ctx, &n)
	})
}

// TestTracingJobsAndOutbound records spans in memory (Options.TracerProvider):
// a job worked through the server's River middleware is a consumer span
// with its queries under it, and a call through the integrations client's
// HTTP client is a client span whose context reaches the provider.
func TestTracingJobsAndOutbound(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		s := newTestServerOpts(t, db, Options{TracerProvider: tp})

		ictx, inserter := tp.Tracer("test").Start(t.Context(), "inserter")
		runJobs(t, ictx, s.srv, &queryWorker{s: s.srv}, river.InsertManyParams{Args: queryJobArgs{}})
		inserter.End()
		var job sdktrace.ReadOnlySpan
		for _, sp := range rec.Ended() {
			if sp.Name() == "job telemetry_test_query" {
				job = sp
			}
		}
		if job == nil || job.SpanKind() != trace.SpanKindConsumer {
			t.Fatalf("no consumer span for the job: %v", spanNames(rec.Ended()))
		}
		if l := job.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != inserter.SpanContext().SpanID() {
			t.Errorf("job span links %+v, want one to the inserting span", l)
		}
		if job.Parent().IsValid() {
			t.Errorf("job span has a parent %v; it starts a trace linked to the inserter's", job.Parent())
		}
		children := 0
		for _, sp := range rec.Ended() {
			if sp.Parent().SpanID() == job.SpanContext().SpanID() && sp.SpanKind() == trace.SpanKindClient {
				children++
			}
		}
		if children == 0 {
			t.Errorf("no query span under the job span: %v", spanNames(rec.Ended()))
		}

		var got http.Header
		provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
		defer provider.Close()
		ctx, parent := tp.Tracer("test").Start(t.Context(), "caller")
		req, _ := http.NewRequestWithContext(ctx, "GET", provider.URL+"/health", nil)
		resp, err := s.srv.tracing.wrapClient(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		parent.End()
		if tp := got.Get("Traceparent"); !strings.Contains(tp, parent.SpanContext().TraceID().String()) {
			t.Errorf("provider got traceparent %q, want the caller's trace %s", tp, parent.SpanContext().TraceID())
		}
		client := 0
		for _, sp := range rec.Ended() {
			if sp.SpanKind() == trace.SpanKindClient && sp.Parent().SpanID() == parent.SpanContext().SpanID() {
				client++
			}
		}
		if client != 1 {
			t.Errorf("%d client spans under the caller, want 1: %v", client, spanNames(rec.Ended()))
		}
	})
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name())
	}
	return out
}

// BenchmarkUsersListTracing measures an authenticated GET /api/users/
// through the server's handler with tracing off (no OTEL_ variables), on
// (every span kept, batched to an in-memory exporter) and on but sampled
// out (the instrumentation without recording). Compare with
//
//	go test ./server/ -run '^$' -bench UsersListTracing -count 10 > trace.txt
//	benchstat -col /tracing trace.txt
func BenchmarkUsersListTracing(b *testing.B) {
	for _, mode := range []string{"off", "on", "unsampled"} {
		b.Run("tracing="+mode, func(b *testing.B) {
			for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
				b.Setenv(k, "")
			}
			db := dbtest.SQLite(b)
			opts := Options{DB: db.DB, NoAccessLog: true, Logger: slog.New(slog.DiscardHandler)}
			var exp *tracetest.InMemoryExporter
			if mode != "off" {
				exp = tracetest.NewInMemoryExporter()
				sampler := sdktrace.AlwaysSample()
				if mode == "unsampled" {
					sampler = sdktrace.NeverSample()
				}
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler))
				b.Cleanup(func() { tp.Shutdown(context.Background()) })
				opts.TracerProvider = tp
			}
			cfg := Config{DatabaseURL: db.URL, HashConcurrency: 4, RateLimitAPI: "0", RateLimitAuth: "0", RateLimitAnon: "0",
				AuditSigningKey: testAuditKey()}
			cfg.Defaults()
			srv, err := New(b.Context(), cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			h := srv.Handler()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/auth/register/", strings.NewReader(
				`{"email":"owner@example.com","password":"correct-horse-battery","full_name":"Owner","tenant_name":"Acme"}`)))
			var reg struct{ Access string }
			if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil || reg.Access == "" {
				b.Fatalf("register: %d %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				req := httptest.NewRequest("GET", "/api/users/", nil)
				req.Header.Set("Authorization", "Bearer "+reg.Access)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("users list: %d %s", rec.Code, rec.Body)
				}
				if exp != nil && i%1000 == 999 {
					exp.Reset()
				}
			}
		})
	}
}

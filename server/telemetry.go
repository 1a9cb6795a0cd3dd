package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/riverqueue/river/rivertype"
	"github.com/uptrace/bun/extra/bunotel"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of the server's own spans.
const tracerName = "github.com/saaskit/saaskit/server"

// tracing is the server's OpenTelemetry state. Tracing is off unless the
// standard OTEL_ variables ask for an exporter (see [newTracing]) or
// Options.TracerProvider is set; when off, tp is nil and the server installs
// no instrumentation at all, so that it costs nothing.
type tracing struct {
	tp       trace.TracerProvider // nil: off
	tracer   trace.Tracer         // tp's tracer of the server's own spans; a noop tracer when off
	prop     propagation.TextMapPropagator
	shutdown func(context.Context) error // flushes and stops the exporter the server made
}

// on reports whether spans are recorded.
func (t *tracing) on() bool { return t != nil && t.tp != nil }

// newTracing reads the standard OpenTelemetry variables through getenv:
//
//   - OTEL_SDK_DISABLED=true turns tracing off whatever else is set;
//   - OTEL_TRACES_EXPORTER=otlp turns it on, "none" off, and with the
//     variable unset it is on when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
//   - the exporter is OTLP over HTTP (protobuf), configured by the
//     exporter's own OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
//     timeout, TLS); OTEL_EXPORTER_OTLP_PROTOCOL, when set, must be
//     http/protobuf;
//   - OTEL_SERVICE_NAME (default "saaskit") and OTEL_RESOURCE_ATTRIBUTES
//     name the service; OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG pick
//     the sampler (default: parent-based, always on).
//
// A provider given by the embedder (tp) wins over the variables; the
// embedder then shuts it down.
func newTracing(ctx context.Context, getenv func(string) string, tp trace.TracerProvider) (*tracing, error) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	off := &tracing{tracer: noop.NewTracerProvider().Tracer(tracerName), prop: prop}
	if tp != nil {
		return &tracing{tp: tp, tracer: tp.Tracer(tracerName), prop: prop}, nil
	}
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return off, nil
	}
	switch exp := strings.ToLower(env("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return off, nil
	case "":
		if env("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return off, nil
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q: the server exports traces with otlp (OTLP over HTTP) or none", ErrConfig, exp)
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := env(k); p != "" && p != "http/protobuf" {
			return nil, fmt.Errorf("%w: %s=%q: the server exports traces over http/protobuf only", ErrConfig, k, p)
		}
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP trace exporter: %v", ErrConfig, err)
	}
	// Later sources win: the default name, then the OTEL_ variables.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "saaskit"), attribute.String("service.version", Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("%w: OpenTelemetry resource: %v", ErrConfig, err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	return &tracing{tp: sdk, tracer: sdk.Tracer(tracerName), prop: prop, shutdown: sdk.Shutdown}, nil
}

// wrapHandler traces every request but the probes and /metrics. The span
// is named by the method alone at first; [Server.observe] renames it after
// the mux has matched the route ("GET /api/users/{id}/").
func (t *tracing) wrapHandler(h http.Handler) http.Handler {
	if !t.on() {
		return h
	}
	return otelhttp.NewHandler(h, "http.server",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/metrics", "/healthz", "/readyz":
				return false
			}
			return true
		}),
	)
}

// nameSpan gives the request's span its route once it is known.
func nameSpan(ctx context.Context, method, route, requestID string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.String("saaskit.request_id", requestID))
}

// wrapClient returns an HTTP client whose attempts are client spans that
// carry the trace context to the providers (nil: the integrations client's
// default transport).
func (t *tracing) wrapClient(hc *http.Client) *http.Client {
	if !t.on() {
		return hc
	}
	var base http.RoundTripper
	c := &http.Client{}
	if hc != nil {
		*c = *hc
		base = hc.Transport
	}
	if base == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		base = tr
	}
	c.Transport = otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host }),
	)
	return c
}

// queryHook returns bun's OpenTelemetry hook: one client span per query,
// with the SQL text (its placeholders, never its arguments). Queries run
// outside any span (background loops) are not traced.
func (t *tracing) queryHook(system string) *bunotel.QueryHook {
	return bunotel.NewQueryHook(
		bunotel.WithTracerProvider(childOnly{t.tp}),
		bunotel.WithMeterProvider(metricnoop.NewMeterProvider()),
		bunotel.WithDBName(system),
	)
}

// childOnly is a tracer provider whose tracers start a span only under a
// parent span, so that a query of a background loop does not become a
// trace of its own.
type childOnly struct{ trace.TracerProvider }

func (c childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{c.TracerProvider.Tracer(name, opts...)}
}

type childOnlyTracer struct{ trace.Tracer }

func (c childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx) // a non-recording span
	}
	return c.Tracer.Start(ctx, name, opts...)
}

// jobTraceKey is the member of a job's metadata that carries the trace
// context of the code that inserted it (a webhook request, for example).
const jobTraceKey = "otel_trace"

// injectJobs writes ctx's trace context into the metadata of jobs being
// inserted, so that the span of their work can link to the insertion.
func (t *tracing) injectJobs(ctx context.Context, params []*rivertype.JobInsertParams) {
	if !t.on() || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	t.prop.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return
	}
	for _, p := range params {
		md := map[string]any{}
		if len(p.Metadata) > 0 {
			if err := json.Unmarshal(p.Metadata, &md); err != nil {
				continue // not an object: leave it alone
			}
		}
		md[jobTraceKey] = carrier
		if b, err := json.Marshal(md); err == nil {
			p.Metadata = b
		}
	}
}

// jobLink returns a link to the span that inserted job, if its metadata
// carries one. A job runs later, maybe much later, than the request that
// queued it: it starts a trace of its own, linked to that request's.
func (t *tracing) jobLink(job *rivertype.JobRow) (trace.Link, bool) {
	var md struct {
		Trace map[string]string `json:"otel_trace"`
	}
	if len(job.Metadata) == 0 || json.Unmarshal(job.Metadata, &md) != nil || len(md.Trace) == 0 {
		return trace.Link{}, false
	}
	sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier(md.Trace)))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// TraceLogHandler wraps h so that every record logged with a context that
// carries a valid span gets trace_id and span_id attributes, which join a
// log line to its trace. The server wraps its logger with it.
func TraceLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(traceLogHandler); ok {
		return h
	}
	return traceLogHandler{h}
}

type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(a)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}

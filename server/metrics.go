package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/saaskit/saaskit/webhooks"
)

// Job outcomes in saaskit_jobs_worked_total.
const (
	JobCompleted = "completed" // the work succeeded
	JobRetry     = "retry"     // the work failed; River retries it later
	JobDiscarded = "discarded" // the work failed at its last attempt
	JobCancelled = "cancelled" // the worker cancelled the job
	JobSnoozed   = "snoozed"   // the worker put the job off
)

// Reasons in saaskit_webhooks_rejected_total.
const (
	RejectSignature     = "signature"      // no signature matched a secret of the connection
	RejectTimestamp     = "timestamp"      // the signed timestamp is outside the tolerance (a replay?)
	RejectHeader        = "header"         // a signature header is missing or malformed
	RejectBodyTooLarge  = "body_too_large" // the body (or the batch) is over the limit
	RejectMalformed     = "malformed"      // the body is not an event the parser reads
	RejectUnknownSource = "unknown_source" // no connection of that provider at that URL
	RejectMethod        = "method"         // not a POST
)

// jobStatsTTL is how long a scrape reuses the job counts of the previous
// one, so that frequent or concurrent scrapes query the database once.
const jobStatsTTL = 5 * time.Second

// opsMetrics are the metrics of jobs and webhooks. Counters and histograms
// are per process (sum them over the replicas); saaskit_jobs counts the
// shared job table, so every replica exports the same figures (take the
// max, not the sum).
type opsMetrics struct {
	jobsWorked  *prometheus.CounterVec
	jobsRunning *prometheus.GaugeVec
	jobWork     *prometheus.HistogramVec
	jobLatency  *prometheus.HistogramVec
	whReceived  *prometheus.CounterVec
	whRejected  *prometheus.CounterVec
}

var jobBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

func newOpsMetrics(reg prometheus.Registerer, db *bun.DB, log *slog.Logger) *opsMetrics {
	m := &opsMetrics{
		jobsWorked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "saaskit_jobs_worked_total",
			Help: "Job attempts worked by this process, by kind, queue and outcome (completed, retry, discarded, cancelled, snoozed)."},
			[]string{"kind", "queue", "outcome"}),
		jobsRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "saaskit_jobs_running",
			Help: "Jobs being worked by this process now, by kind."}, []string{"kind"}),
		jobWork: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "saaskit_job_work_duration_seconds",
			Help: "Time spent working one attempt of a job, by kind.", Buckets: jobBuckets}, []string{"kind"}),
		jobLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "saaskit_job_latency_seconds",
			Help: "Time from when an attempt was scheduled to run to when it finished (queue wait plus work), by kind.", Buckets: jobBuckets}, []string{"kind"}),
		whReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "saaskit_webhooks_received_total",
			Help: "Webhook events (or requests refused as a whole) by provider and outcome: accepted, duplicate, rejected, failed, unauthorized, too_large, method_not_allowed, unknown_source, error."},
			[]string{"provider", "outcome"}),
		whRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "saaskit_webhooks_rejected_total",
			Help: "Webhook requests (or batch items) refused with a 4xx, by provider and reason: signature, timestamp, header, body_too_large, malformed, unknown_source, method."},
			[]string{"provider", "reason"}),
	}
	reg.MustRegister(m.jobsWorked, m.jobsRunning, m.jobWork, m.jobLatency, m.whReceived, m.whRejected,
		&jobStatsCollector{db: db, log: log, ttl: jobStatsTTL,
			desc: prometheus.NewDesc("saaskit_jobs", "Jobs in the shared job table by kind, queue and state (available: queued and due; scheduled; running; retryable: failed, to be retried; discarded: failed for good); completed and cancelled jobs are not counted.",
				[]string{"kind", "queue", "state"}, nil),
			up: prometheus.NewDesc("saaskit_jobs_stats_up", "1 when the last count of the job table succeeded, 0 when it failed (see the log).", nil, nil),
		})
	return m
}

// jobMiddleware returns the River middleware of the server's job clients:
// each attempt is a span (when tracing is on) and feeds the job metrics.
// It goes into river.Config.Middleware.
func (s *Server) jobMiddleware() []rivertype.Middleware {
	return []rivertype.Middleware{&jobObserver{s: s}}
}

// jobObserver is a rivertype.WorkerMiddleware, and a
// rivertype.JobInsertMiddleware that passes the inserting code's trace
// context to the job.
type jobObserver struct {
	river.MiddlewareDefaults
	s *Server
}

var (
	_ rivertype.WorkerMiddleware    = (*jobObserver)(nil)
	_ rivertype.JobInsertMiddleware = (*jobObserver)(nil)
)

// InsertMany implements rivertype.JobInsertMiddleware.
func (o *jobObserver) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	o.s.tracing.injectJobs(ctx, params)
	return doInner(ctx)
}

// Work implements rivertype.WorkerMiddleware.
func (o *jobObserver) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	start := time.Now()
	m := o.s.ops
	var span trace.Span
	if o.s.tracing.on() {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "river"), attribute.String("river.kind", job.Kind),
				attribute.String("river.queue", job.Queue), attribute.Int64("river.job_id", job.ID),
				attribute.Int("river.attempt", job.Attempt), attribute.Int("river.max_attempts", job.MaxAttempts))}
		if link, ok := o.s.tracing.jobLink(job); ok {
			opts = append(opts, trace.WithLinks(link))
		}
		ctx, span = o.s.tracing.tracer.Start(ctx, "job "+job.Kind, opts...)
		defer span.End()
	}
	running := m.jobsRunning.WithLabelValues(job.Kind)
	running.Inc()
	defer running.Dec()
	err = doInner(ctx)
	outcome := jobOutcome(job, err)
	if span != nil {
		span.SetAttributes(attribute.String("river.outcome", outcome))
		if outcome == JobRetry || outcome == JobDiscarded {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	end := time.Now()
	m.jobsWorked.WithLabelValues(job.Kind, job.Queue, outcome).Inc()
	m.jobWork.WithLabelValues(job.Kind).Observe(end.Sub(start).Seconds())
	if !job.ScheduledAt.IsZero() {
		m.jobLatency.WithLabelValues(job.Kind).Observe(max(end.Sub(job.ScheduledAt), 0).Seconds())
	}
	return err
}

// jobOutcome says what River does with an attempt that returned err.
func jobOutcome(job *rivertype.JobRow, err error) string {
	if err == nil {
		return JobCompleted
	}
	if _, ok := errors.AsType[*rivertype.JobCancelError](err); ok {
		return JobCancelled
	}
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		return JobSnoozed
	}
	if job.Attempt >= job.MaxAttempts {
		return JobDiscarded
	}
	return JobRetry
}

// jobStatsCollector counts the job table at scrape time, at most once per
// ttl.
type jobStatsCollector struct {
	db   *bun.DB
	log  *slog.Logger
	ttl  time.Duration
	desc *prometheus.Desc
	up   *prometheus.Desc

	mu     sync.Mutex
	at     time.Time
	counts []JobCount
	ok     bool
}

func (c *jobStatsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.up }

func (c *jobStatsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		counts, err := queueCounts(ctx, c.db)
		cancel()
		c.at, c.counts, c.ok = time.Now(), counts, err == nil
		if err != nil && c.log != nil {
			c.log.Warn("metrics: counting jobs", slog.Any("error", err))
		}
	}
	up := 0.0
	if c.ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	for _, jc := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(jc.Count), jc.Kind, jc.Queue, jc.State)
	}
}

// queueCounts counts the jobs that are not completed or cancelled by kind,
// queue and state.
func queueCounts(ctx context.Context, db bun.IDB) ([]JobCount, error) {
	var out []JobCount
	rows, err := db.QueryContext(ctx, `SELECT kind, queue, state, count(*) FROM river_job
		WHERE state IN ('available', 'scheduled', 'running', 'retryable', 'discarded', 'pending')
		GROUP BY kind, queue, state ORDER BY kind, queue, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var jc JobCount
		if err := rows.Scan(&jc.Kind, &jc.Queue, &jc.State, &jc.Count); err != nil {
			return nil, err
		}
		out = append(out, jc)
	}
	return out, rows.Err()
}

// webhookResult is the OnResult hook of the server's webhook receivers:
// it counts every event (or request refused as a whole) by provider and
// outcome in saaskit_webhooks_received_total.
func (s *Server) webhookResult(provider, outcome string) {
	s.ops.whReceived.WithLabelValues(provider, outcome).Inc()
}

// webhookRejected is the OnReject hook of the server's webhook receivers:
// it counts refused requests by provider and reason in
// saaskit_webhooks_rejected_total.
func (s *Server) webhookRejected(r *http.Request, provider, outcome string, err error) {
	s.ops.whRejected.WithLabelValues(provider, rejectReason(outcome, err)).Inc()
}

// rejectReason maps a receiver's outcome and cause to a reason label.
func rejectReason(outcome string, err error) string {
	switch outcome {
	case webhooks.OutcomeUnauthorized:
		switch {
		case errors.Is(err, webhooks.ErrTimestampOutOfRange):
			return RejectTimestamp
		case errors.Is(err, webhooks.ErrMissingHeader), errors.Is(err, webhooks.ErrMalformedHeader):
			return RejectHeader
		}
		return RejectSignature
	case webhooks.OutcomeTooLarge:
		return RejectBodyTooLarge
	case webhooks.OutcomeUnknownSource:
		return RejectUnknownSource
	case webhooks.OutcomeMethodNotAllowed:
		return RejectMethod
	}
	return RejectMalformed
}

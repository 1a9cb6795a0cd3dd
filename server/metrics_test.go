package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	resilient "github.com/saaskit/saaskit/integrations"
	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

// scrape reads /metrics.
func (s *testServer) scrape() string {
	s.t.Helper()
	return string(s.must(http.StatusOK, "GET", "/metrics", "", nil).Body)
}

// metric returns the value of the sample of name whose labels include
// every one given as k=v, and whether there is one.
func metric(body, name string, labels ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:i]
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(series, k+`="`+v+`"`) {
				ok = false
			}
		}
		if ok {
			f, err := strconv.ParseFloat(line[i+1:], 64)
			return f, err == nil
		}
	}
	return 0, false
}

func wantMetric(t *testing.T, body string, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := metric(body, name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, want)
	}
}

// runJobs works the jobs with w through a River client that has the
// server's job middleware, and returns once each has finished for good
// (completed, discarded or cancelled).
// The jobs are inserted with ctx.
func runJobs[T river.JobArgs](t *testing.T, ctx context.Context, s *Server, w river.Worker[T], jobs ...river.InsertManyParams) {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := river.NewClient(s.integ.driver, &river.Config{
		Workers: workers, Middleware: s.jobMiddleware(), Logger: quietLogger(s.log),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		FetchPollInterval: 5 * time.Millisecond, FetchCooldown: time.Millisecond,
		RetryPolicy: retryPolicy{base: time.Millisecond, max: time.Millisecond},
		TestOnly:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := c.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	defer cancel()
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if _, err := c.InsertMany(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	done := 0
	limit := time.After(60 * time.Second) // a bound on a broken run, not a timing assertion
	for done < len(jobs) {
		select {
		case ev := <-events:
			if ev.Kind != river.EventKindJobFailed || ev.Job.State == rivertype.JobStateDiscarded {
				done++
			}
		case <-limit:
			t.Fatalf("%d of %d jobs finished", done, len(jobs))
		}
	}
}

// modeJobArgs is a job that succeeds, fails, fails once or cancels itself.
type modeJobArgs struct {
	Mode string `json:"mode"`
}

func (modeJobArgs) Kind() string { return "metrics_test_job" }

type modeWorker struct {
	river.WorkerDefaults[modeJobArgs]
}

func (modeWorker) Work(ctx context.Context, job *river.Job[modeJobArgs]) error {
	switch job.Args.Mode {
	case "fail":
		return errors.New("metrics test: always fails")
	case "flaky":
		if job.Attempt == 1 {
			return errors.New("metrics test: first attempt fails")
		}
	case "cancel":
		return river.JobCancel(errors.New("metrics test: cancelled"))
	}
	return nil
}

type queuedJobArgs struct{}

func (queuedJobArgs) Kind() string { return "metrics_test_queued" }

// TestJobMetrics works jobs of every outcome through the server's River
// middleware and reads the job metrics, then queues a job that no worker
// takes and finds it counted as available.
func TestJobMetrics(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		one := &river.InsertOpts{MaxAttempts: 1}
		runJobs(t, t.Context(), s.srv, modeWorker{},
			river.InsertManyParams{Args: modeJobArgs{Mode: "ok"}},
			river.InsertManyParams{Args: modeJobArgs{Mode: "fail"}, InsertOpts: one},
			river.InsertManyParams{Args: modeJobArgs{Mode: "flaky"}, InsertOpts: &river.InsertOpts{MaxAttempts: 2}},
			river.InsertManyParams{Args: modeJobArgs{Mode: "cancel"}},
		)
		if _, err := s.srv.integ.jobs.Insert(t.Context(), queuedJobArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		body := s.scrape()
		k := "kind=metrics_test_job"
		wantMetric(t, body, 2, "saaskit_jobs_worked_total", k, "queue=default", "outcome=completed")
		wantMetric(t, body, 1, "saaskit_jobs_worked_total", k, "outcome=retry")
		wantMetric(t, body, 1, "saaskit_jobs_worked_total", k, "outcome=discarded")
		wantMetric(t, body, 1, "saaskit_jobs_worked_total", k, "outcome=cancelled")
		wantMetric(t, body, 5, "saaskit_job_work_duration_seconds_count", k)
		wantMetric(t, body, 5, "saaskit_job_latency_seconds_count", k)
		wantMetric(t, body, 0, "saaskit_jobs_running", k)
		wantMetric(t, body, 1, "saaskit_jobs", k, "queue=default", "state=discarded")
		wantMetric(t, body, 1, "saaskit_jobs", "kind=metrics_test_queued", "queue=default", "state=available")
		wantMetric(t, body, 1, "saaskit_jobs_stats_up")
		if _, ok := metric(body, "saaskit_jobs", k, "state=completed"); ok {
			t.Error("completed jobs are counted in saaskit_jobs")
		}
	})
}

// TestWebhookMetrics sends a good event, its duplicate and one request for
// each rejection reason to receivers wired as the server wires them, and
// reads the counters from the server's /metrics.
func TestWebhookMetrics(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		p := ProviderUserService
		mux := http.NewServeMux()
		mux.Handle("/hooks/{connection}/", &webhooks.Receiver{Provider: p, Resolve: s.srv.resolveConnection(p),
			Sink: &webhookSink{s: s.srv}, MaxBodyBytes: 4096, Now: s.srv.now,
			OnResult: s.srv.webhookResult, OnReject: s.srv.webhookRejected})
		hooks := httptest.NewServer(mux)
		defer hooks.Close()
		url := hooks.URL + "/hooks/" + c.ID.String() + "/"
		post := func(u string, body []byte, hdr http.Header) int {
			t.Helper()
			req, _ := http.NewRequestWithContext(t.Context(), "POST", u, bytes.NewReader(body))
			for k, v := range hdr {
				req.Header[k] = v
			}
			resp, err := hooks.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		good := event("evt_1", "user.created", map[string]any{"id": "u1", "email": "a@example.com"})
		now := time.Now()
		steps := []struct {
			name string
			url  string
			body []byte
			hdr  http.Header
			want int
		}{
			{"accepted", url, good, webhookstest.SignStandard("evt_1", good, now, c.Secret), http.StatusAccepted},
			{"duplicate", url, good, webhookstest.SignStandard("evt_1", good, now, c.Secret), http.StatusOK},
			{"signature", url, good, webhookstest.SignStandard("evt_1", good, now, "whsec_"+strings.Repeat("QUJD", 8)), http.StatusUnauthorized},
			{"timestamp", url, good, webhookstest.SignStandard("evt_1", good, now.Add(-time.Hour), c.Secret), http.StatusUnauthorized},
			{"header", url, good, nil, http.StatusUnauthorized},
			{"body_too_large", url, bytes.Repeat([]byte("x"), 8192), nil, http.StatusRequestEntityTooLarge},
			{"malformed", url, []byte("not json"), webhookstest.SignStandard("evt_2", []byte("not json"), now, c.Secret), http.StatusBadRequest},
			{"unknown_source", hooks.URL + "/hooks/" + uuid.NewString() + "/", good, nil, http.StatusNotFound},
		}
		for _, st := range steps {
			if got := post(st.url, st.body, st.hdr); got != st.want {
				t.Fatalf("%s: status %d, want %d", st.name, got, st.want)
			}
		}
		resp, err := hooks.Client().Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()

		body := s.scrape()
		for _, reason := range []string{RejectSignature, RejectTimestamp, RejectHeader, RejectBodyTooLarge, RejectMalformed, RejectUnknownSource, RejectMethod} {
			wantMetric(t, body, 1, "saaskit_webhooks_rejected_total", "provider="+p, "reason="+reason)
		}
		wantMetric(t, body, 1, "saaskit_webhooks_received_total", "provider="+p, "outcome=accepted")
		wantMetric(t, body, 1, "saaskit_webhooks_received_total", "provider="+p, "outcome=duplicate")
		wantMetric(t, body, 3, "saaskit_webhooks_received_total", "provider="+p, "outcome=unauthorized")
		wantMetric(t, body, 1, "saaskit_webhooks_received_total", "provider="+p, "outcome=rejected")
	})
}

// TestRateLimitAndPoolMetrics causes a refusal in the anonymous scope and
// finds it counted, and finds the connection pool of the database exported.
func TestRateLimitAndPoolMetrics(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db, func(c *Config) { c.RateLimitAnon = "1/1h" })
		s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": "nope"})
		if r := s.do("POST", "/api/auth/token/refresh/", "", map[string]any{"refresh": "nope"}); r.Status != http.StatusTooManyRequests {
			t.Fatalf("second anonymous request: %d %s", r.Status, r.Body)
		}
		body := s.scrape()
		wantMetric(t, body, 1, "saaskit_ratelimit_refused_total", "scope="+scopeAnon)
		if v, ok := metric(body, "go_sql_max_open_connections", `db_name=main`); !ok || v <= 0 {
			t.Errorf("go_sql_max_open_connections = %v (found %v)", v, ok)
		}
		if _, ok := metric(body, "go_sql_wait_count_total", `db_name=main`); !ok {
			t.Error("no go_sql_wait_count_total")
		}
	})
}

// failingProvider is a provider API that answers 503 to everything.
func failingProvider(t *testing.T) string {
	t.Helper()
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(ps.Close)
	return ps.URL
}

// tripBreaker checks the providers until the user-service breaker opens.
func tripBreaker(t *testing.T, s *testServer) {
	t.Helper()
	for i := range 20 {
		s.srv.CheckIntegrations(t.Context()) //nolint:errcheck // the provider fails on purpose
		if v, _ := metric(s.scrape(), "saaskit_integration_breaker_state", "provider="+ProviderUserService); v == 2 {
			return
		}
		_ = i
	}
	t.Fatal("the breaker did not open after 20 failed checks")
}

// breakerOptions open the breaker after two failed calls without retries.
var breakerOptions = Options{Integrations: resilient.Config{MinRequests: 2, FailureRatio: 0.5, MaxAttempts: 1}}

// TestBreakerMetric checks that a provider whose calls fail shows an open
// breaker (2) in the existing saaskit_integration_breaker_state gauge.
func TestBreakerMetric(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		url := failingProvider(t)
		s := newTestServerOpts(t, db, breakerOptions, func(c *Config) {
			c.IntegrationURLs = fmt.Sprintf("%s=%s", ProviderUserService, url)
		})
		tripBreaker(t, s)
		body := s.scrape()
		wantMetric(t, body, 2, "saaskit_integration_breaker_state", "provider="+ProviderUserService)
		wantMetric(t, body, 1, "saaskit_integration_health", "provider="+ProviderUserService, "state="+HealthDown)
	})
}

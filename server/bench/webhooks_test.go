package bench

import (
	"context"
	"testing"
	"time"
)

// TestWebhookScenarios runs each webhook scenario briefly on SQLite: every
// request succeeds, the batch scenario counts its events, the raw insert
// baseline runs, and webhook-process sees every event it sent processed.
func TestWebhookScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the load scenarios")
	}
	base := Config{Concurrency: 4, Duration: 300 * time.Millisecond, Warmup: -1}
	for _, sc := range []string{"webhook-ingest", "webhook-batch", "webhook-process"} {
		t.Run(sc, func(t *testing.T) {
			cfg := base
			cfg.Scenario = sc
			if sc == "webhook-process" {
				cfg.Rate = 200
			}
			if sc == "webhook-ingest" {
				cfg.Preload = 500
			}
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Errors != 0 || r.Requests == 0 || r.PerSecond <= 0 {
					t.Errorf("%s: %d errors of %d requests, %.0f/s", r.Scenario, r.Errors, r.Requests, r.PerSecond)
				}
			}
			switch sc {
			case "webhook-ingest", "webhook-batch":
				if len(res) != 2 || res[1].Scenario != "raw single-row insert" {
					t.Fatalf("results %+v: want the scenario and the raw baseline", res)
				}
				if sc == "webhook-batch" && res[0].EventsPerSecond != 100*res[0].PerSecond {
					t.Errorf("batch events/s %.0f at %.0f requests/s", res[0].EventsPerSecond, res[0].PerSecond)
				}
			case "webhook-process":
				if len(res) != 1 || !res[0].Latency || res[0].P50 <= 0 || res[0].P99 < res[0].P50 {
					t.Fatalf("results %+v: want receipt-to-processed latencies", res)
				}
			}
		})
	}
}

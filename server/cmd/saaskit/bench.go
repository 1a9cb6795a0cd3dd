package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/saaskit/saaskit/server/bench"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.Config
	var asJSON bool
	fs := flag.NewFlagSet("saaskit bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", "users-list", "scenario to run: users-list, login, users-create (audit on and off), webhook-ingest, webhook-batch, webhook-process")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10e9, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", 1e9, "warm-up before measuring")
	fs.StringVar(&cfg.DatabaseURL, "database", "", "database of the in-process server (default: SQLite in a temporary directory); an empty Postgres database")
	fs.IntVar(&cfg.Members, "members", 10000, "members of the tenant under test")
	fs.IntVar(&cfg.OtherTenants, "other-tenants", 0, "extra tenants seeded beside the one under test")
	fs.IntVar(&cfg.OtherMembers, "other-members", 0, "members of each extra tenant")
	fs.IntVar(&cfg.Preload, "preload", 0, "webhook-ingest: processed events stored before measuring")
	fs.IntVar(&cfg.BatchSize, "batch", 0, "events a request: webhook-batch (default 100), webhook-process (default 1)")
	fs.IntVar(&cfg.Rate, "rate", 500, "webhook-process: events a second offered")
	fs.BoolVar(&asJSON, "json", false, "print results as JSON lines")
	withAudit := fs.Bool("audit", true, "record audit events; false measures without the audit log (users-create then runs without only)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "database pool size of the in-process server (0: the server's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cfg.Log = stderr
	cfg.DisableAudit = !*withAudit
	results, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	for _, r := range results {
		if asJSON {
			json.NewEncoder(stdout).Encode(r)
		} else {
			fmt.Fprintln(stdout, r)
		}
	}
	if len(results) == 2 && results[1].PerSecond > 0 {
		what, rate := "HTTP/Bun", results[0].PerSecond
		switch cfg.Scenario {
		case "users-create":
			what = "audit on/off"
		case "webhook-ingest":
			what = "events/raw inserts"
		case "webhook-batch":
			what, rate = "events/raw inserts", results[0].EventsPerSecond
		}
		fmt.Fprintf(stdout, "%s throughput ratio: %.2f\n", what, rate/results[1].PerSecond)
	}
	return nil
}

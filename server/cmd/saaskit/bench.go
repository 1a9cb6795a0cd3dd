package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/saaskit/saaskit/server/bench"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.Config
	var asJSON bool
	fs := flag.NewFlagSet("saaskit bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Scenario, "scenario", "users-list", "scenario to run: users-list, login")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10e9, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", 1e9, "warm-up before measuring")
	fs.StringVar(&cfg.DatabaseURL, "database", "", "database of the in-process server (default: SQLite in a temporary directory); an empty Postgres database")
	fs.IntVar(&cfg.Members, "members", 10000, "members of the tenant under test")
	fs.IntVar(&cfg.OtherTenants, "other-tenants", 0, "extra tenants seeded beside the one under test")
	fs.IntVar(&cfg.OtherMembers, "other-members", 0, "members of each extra tenant")
	fs.BoolVar(&asJSON, "json", false, "print results as JSON lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Log = stderr
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
		fmt.Fprintf(stdout, "HTTP/Bun throughput ratio: %.2f\n", results[0].PerSecond/results[1].PerSecond)
	}
	_ = os.Stdout
	return nil
}

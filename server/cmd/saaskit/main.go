// Command saaskit runs the saaskit reference server.
//
//	saaskit serve                 run the platform (migrates on start)
//	saaskit worker                process webhook events only (no HTTP)
//	saaskit migrate up|down|status
//	saaskit createsuperuser -email E [-password P]
//	saaskit audit keygen|pubkey|checkpoint|export|verify
//	saaskit backup [-check] FILE
//	saaskit status [-json]
//	saaskit bench -scenario users-list ...
//	saaskit version
//
// Configuration comes from SAASKIT_* environment variables, with flags of the
// same name over them; see .env.example.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "saaskit:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: saaskit <command> [flags]

commands:
  serve            run the platform: API, migrations on start, first superuser
  worker           process received webhook events (SAASKIT_WORKERS=off makes serve only receive them)
  migrate          up | down [set] | status
  createsuperuser  create a platform superadmin (-email, -password)
  audit            keygen | pubkey | checkpoint | export | verify (signed, offline-verifiable audit exports)
  backup           copy the SQLite database online to a new file; -check FILE verifies a copy
  status           job queue, failing providers, webhook events, recent failures (-json)
  bench            load-test scenarios against an in-process server or a URL
  mock-services    run the mock user and payment services (REST, signed webhooks, fault injection)
  version          print the version
  env-example      print every configuration variable with its default

Every command takes the configuration flags; run "saaskit serve -h" to list them.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "worker":
		return workerCmd(ctx, args, stderr)
	case "migrate":
		return migrateCmd(ctx, args, stdout, stderr)
	case "createsuperuser":
		return createSuperuser(ctx, args, stdout, stderr)
	case "backup":
		return backupCmd(ctx, args, stdout, stderr)
	case "status":
		return statusCmd(ctx, args, stdout, stderr)
	case "audit":
		return auditCmd(ctx, args, stdout, stderr)
	case "bench":
		return benchCmd(ctx, args, stdout, stderr)
	case "mock-services":
		return mockServicesCmd(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "saaskit", server.Version)
		return nil
	case "env-example":
		fmt.Fprint(stdout, server.EnvExample())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func loadConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (server.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("saaskit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if extra != nil {
		extra(fs)
	}
	cfg, err := server.LoadConfig(fs, args, os.Getenv)
	return cfg, fs, err
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	email, generated, err := srv.EnsureSuperuser(ctx)
	if err != nil {
		return fmt.Errorf("first superuser: %w", err)
	}
	if email != "" {
		// Hashing the password took argon2id's memory; hand it back before
		// serving, so that an idle server stays small.
		debug.FreeOSMemory()
	}
	if generated != "" {
		fmt.Fprintf(stdout, "\nCreated superuser %s with password %s\nThis password is shown once; change it with PATCH /api/auth/profile/.\n\n", email, generated)
	} else if email != "" {
		fmt.Fprintf(stdout, "Created superuser %s from SAASKIT_ADMIN_EMAIL.\n", email)
	}
	return srv.Run(ctx)
}

// workerCmd works webhook jobs until interrupted, so that receivers and
// workers scale apart.
func workerCmd(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, _, err := loadConfig("worker", args, stderr, nil)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.RunWorkers(ctx)
}

func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The subcommand and its set may come before the flags or after them.
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pos, args = append(pos, args[0]), args[1:]
	}
	cfg, fs, err := loadConfig("migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	pos = append(pos, fs.Args()...)
	sub := "up"
	if len(pos) > 0 {
		sub = pos[0]
	}
	if max := map[string]int{"up": 1, "status": 1, "down": 2}[sub]; max > 0 && len(pos) > max {
		return fmt.Errorf("migrate %s: unexpected arguments %q (flags go before or after the subcommand)", sub, pos[1:])
	}
	url := cfg.DatabaseURL
	if cfg.MigrateDatabaseURL != "" {
		url = cfg.MigrateDatabaseURL
	}
	db, err := sqldb.Open(ctx, url, sqldb.Options{Synchronous: cfg.SQLiteSynchronous})
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "up":
		if err := server.Migrate(ctx, db, cfg.DBAppRole); err != nil {
			return err
		}
		return server.MigrationStatus(ctx, db, stdout)
	case "down":
		set := ""
		if len(pos) > 1 {
			set = pos[1]
		}
		if err := server.MigrateDown(ctx, db, set); err != nil {
			return err
		}
		return server.MigrationStatus(ctx, db, stdout)
	case "status":
		return server.MigrationStatus(ctx, db, stdout)
	}
	return fmt.Errorf("migrate: unknown subcommand %q (up, down, status)", sub)
}

func createSuperuser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var email, password string
	cfg, _, err := loadConfig("createsuperuser", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "email of the superuser (required)")
		fs.StringVar(&password, "password", "", "password; empty: generate one and print it")
	})
	if err != nil {
		return err
	}
	if email == "" {
		return errors.New("createsuperuser: -email is required")
	}
	srv, err := server.New(ctx, cfg, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	generated, err := srv.CreateSuperuser(audit.WithActor(ctx, server.CLIActor), email, password)
	if err != nil {
		return err
	}
	if generated != "" {
		fmt.Fprintf(stdout, "superuser %s, password %s (shown once)\n", email, generated)
	} else {
		fmt.Fprintf(stdout, "superuser %s\n", email)
	}
	return nil
}

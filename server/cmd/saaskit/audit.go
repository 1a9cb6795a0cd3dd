package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/server"
)

const auditUsage = `usage: saaskit audit <subcommand> [flags]

subcommands:
  keygen                         print a new checkpoint signer key (for SAASKIT_AUDIT_SIGNING_KEY) and its verifier key
  pubkey                         print the verifier key of the server's checkpoints
  checkpoint [-tenant ID]        sign checkpoints now: of one chain, or of every chain with new events
  export -tenant ID [-o FILE]    write a tenant's events with proofs and a signed checkpoint (signed first if needed)
  verify -key VERIFIER_KEY FILE  check an export offline, with no database

The platform chain's tenant ID is 00000000-0000-0000-0000-000000000000.
`

func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errors.New("audit: no subcommand")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "keygen":
		fs := flag.NewFlagSet("saaskit audit keygen", flag.ContinueOnError)
		fs.SetOutput(stderr)
		name := fs.String("name", "saaskit-audit", "key name (a host-like name of the deployment)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		skey, vkey, err := audit.GenerateNoteKey(*name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "SAASKIT_AUDIT_SIGNING_KEY=%s\n# verifier key (public; give it to tenants for saaskit audit verify):\n%s\n", skey, vkey)
		return nil
	case "verify":
		fs := flag.NewFlagSet("saaskit audit verify", flag.ContinueOnError)
		fs.SetOutput(stderr)
		key := fs.String("key", "", "verifier key of the deployment (saaskit audit pubkey)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *key == "" || fs.NArg() != 1 {
			return errors.New("audit verify: usage: saaskit audit verify -key VERIFIER_KEY FILE")
		}
		return verifyExportFile(fs.Arg(0), *key, stdout)
	case "pubkey", "checkpoint", "export":
		return auditServerCmd(ctx, sub, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	}
	fmt.Fprint(stderr, auditUsage)
	return fmt.Errorf("audit: unknown subcommand %q", sub)
}

// verifyExportFile checks an export file offline and prints what it holds.
func verifyExportFile(path, key string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := server.VerifyAuditExport(f, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %d events of tenant %s, signed checkpoint of origin %s, root %s\n", res.Size, res.TenantID, res.Origin, res.Root)
	return nil
}

// auditServerCmd runs the subcommands that need the database.
func auditServerCmd(ctx context.Context, sub string, args []string, stdout, stderr io.Writer) error {
	var tenant, out string
	cfg, _, err := loadConfig("audit "+sub, args, stderr, func(fs *flag.FlagSet) {
		if sub != "pubkey" {
			fs.StringVar(&tenant, "tenant", "", "tenant id (the nil UUID: the platform chain)")
		}
		if sub == "export" {
			fs.StringVar(&out, "o", "", "output file; default standard output")
		}
	})
	if err != nil {
		return err
	}
	var tid uuid.UUID
	if tenant != "" {
		if tid, err = uuid.Parse(tenant); err != nil {
			return fmt.Errorf("audit %s: -tenant %q is not a tenant id", sub, tenant)
		}
	} else if sub == "export" {
		return errors.New("audit export: -tenant is required")
	}
	cfg.AuditCheckpointInterval = 0
	srv, err := server.New(ctx, cfg, server.Options{NoAccessLog: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	ctx = audit.WithActor(ctx, server.CLIActor)
	switch sub {
	case "pubkey":
		fmt.Fprintln(stdout, srv.AuditVerifierKey())
	case "checkpoint":
		if tenant == "" {
			n, err := srv.AuditCheckpointAll(ctx)
			fmt.Fprintf(stdout, "signed %d checkpoints\n", n)
			return err
		}
		cp, err := srv.AuditCheckpoint(ctx, tid)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s", cp.Note)
	case "export":
		w := stdout
		if out != "" {
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := srv.AuditExport(ctx, tid, w); err != nil {
			return err
		}
	}
	return nil
}

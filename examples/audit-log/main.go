// Command audit-log keeps a tamper-evident audit log of a small invoicing
// service on SQLite, with package audit alone.
//
// It shows an event recorded in the same transaction as the change it
// describes (and rolled back with it), secrets redacted by audit.Diff, the
// database refusing to edit the log, audit.Verify walking the tenant's hash
// chain, a checkpoint signed with a freshly generated note key, and an export
// that audit.VerifyExport checks offline with only the public key. One byte
// changed in the export makes that verification fail.
//
// Run it with:
//
//	go run ./examples/audit-log
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite" // the pure-Go "sqlite" database/sql driver

	"github.com/saaskit/saaskit/audit"
)

// Invoice is the service's own data; the audit log records its changes.
type Invoice struct {
	bun.BaseModel `bun:"table:invoices"`
	ID            string `bun:"id,pk" json:"id"`
	Customer      string `bun:"customer,notnull" json:"customer"`
	Amount        int64  `bun:"amount,notnull" json:"amount"`
	Status        string `bun:"status,notnull" json:"status"`
	PaymentToken  string `bun:"payment_token,notnull" json:"payment_token"`
}

var tenantID = uuid.MustParse("0190c6e8-7a3e-7000-8000-000000000001")

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func openSQLite(path string) (*bun.DB, error) {
	dsn := "file:" + path +
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	return bun.NewDB(sqldb, sqlitedialect.New()), nil
}

func run(w io.Writer) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "audit-log")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := openSQLite(filepath.Join(dir, "app.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := audit.Migrate(ctx, db); err != nil {
		return err
	}
	if _, err := db.NewCreateTable().Model((*Invoice)(nil)).Exec(ctx); err != nil {
		return err
	}

	// Origin names the deployment in signed checkpoints.
	store := &audit.Store{Origin: "audit.example.com"}
	// Middleware would set these once per request.
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: "ada"})
	ctx = audit.WithRequestInfo(ctx, audit.RequestInfo{RequestID: "req-1", IP: "192.0.2.10"})

	fmt.Fprintln(w, "== changes and their events commit together")
	inv := Invoice{ID: "inv-1", Customer: "Globex", Amount: 12000, Status: "draft", PaymentToken: "tok_live_abc"}
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&inv).Exec(ctx); err != nil {
			return err
		}
		return store.Record(ctx, tx, &audit.Event{
			TenantID: tenantID, Action: "invoice.created", ResourceType: "invoice", ResourceID: inv.ID,
			Changes: audit.Diff(nil, inv),
		})
	})
	if err != nil {
		return err
	}
	if err := update(ctx, db, store, inv.ID, func(i *Invoice) { i.Status = "sent"; i.PaymentToken = "tok_live_xyz" }); err != nil {
		return err
	}
	// A change that fails after its event was recorded rolls back both.
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := store.Record(ctx, tx, &audit.Event{
			TenantID: tenantID, Action: "invoice.deleted", ResourceType: "invoice", ResourceID: inv.ID,
		}); err != nil {
			return err
		}
		return errors.New("the invoice is already sent")
	})
	fmt.Fprintf(w, "failed delete: %v\n", err)

	// Events are chained after they commit; a server runs Seal every few
	// hundred milliseconds, and before it reads the log.
	if _, err := store.Seal(ctx, db); err != nil {
		return err
	}
	events, err := audit.List(ctx, db, audit.Query{TenantID: tenantID})
	if err != nil {
		return err
	}
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		fmt.Fprintf(w, "event %d %s by %s/%s (%s):", ev.Seq, ev.Action, ev.Actor.Type, ev.Actor.ID, ev.RequestID)
		for _, f := range []string{"amount", "status", "payment_token"} {
			if c, ok := ev.Changes[f]; ok {
				fmt.Fprintf(w, " %s %v -> %v;", f, c.Before, c.After)
			}
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintln(w, "== the log is append-only and hash-chained")
	_, err = db.ExecContext(ctx, "UPDATE audit_events SET action = 'invoice.voided' WHERE pos = 2")
	fmt.Fprintf(w, "UPDATE of an event refused: %v\n", err != nil)
	_, err = db.ExecContext(ctx, "DELETE FROM audit_events")
	fmt.Fprintf(w, "DELETE of events refused: %v\n", err != nil)
	res, err := audit.Verify(ctx, db, tenantID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "chain verified: %d events\n", res.Events)

	fmt.Fprintln(w, "== signed checkpoint and offline export")
	// Generate once and keep skey secret; give vkey to tenants.
	skey, vkey, err := audit.GenerateNoteKey("audit.example.com")
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	cp, err := store.Checkpoint(ctx, db, signer, tenantID)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "checkpoint: %d events, origin %s\n", cp.Size, cp.Origin)
	var export bytes.Buffer
	if err := audit.Export(ctx, db, tenantID, &export, cp); err != nil {
		return err
	}

	// What the tenant runs, offline, with the export file and vkey alone.
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	got, err := audit.VerifyExport(bytes.NewReader(export.Bytes()), verifier)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "export verified: %d events of tenant %s\n", got.Size, got.TenantID)

	// Change one byte: the amount 12000 becomes 92000.
	tampered := bytes.Clone(export.Bytes())
	i := bytes.Index(tampered, []byte(`"after":12000`))
	if i < 0 {
		return errors.New("amount not found in the export")
	}
	tampered[i+len(`"after":`)] = '9'
	_, err = audit.VerifyExport(bytes.NewReader(tampered), verifier)
	fmt.Fprintf(w, "tampered export: ErrBadExport=%v\n", errors.Is(err, audit.ErrBadExport))
	var ce *audit.ChainError
	if errors.As(err, &ce) {
		fmt.Fprintf(w, "first broken link: seq %d, %s\n", ce.Seq, ce.Reason)
	}

	// A checkpoint signed by someone else's key is refused too.
	_, otherVkey, err := audit.GenerateNoteKey("audit.example.com")
	if err != nil {
		return err
	}
	other, err := note.NewVerifier(otherVkey)
	if err != nil {
		return err
	}
	_, err = audit.VerifyExport(bytes.NewReader(export.Bytes()), other)
	fmt.Fprintf(w, "export checked with another key: ErrBadExport=%v\n", errors.Is(err, audit.ErrBadExport))
	return nil
}

// update changes an invoice and records what changed, in one transaction.
func update(ctx context.Context, db *bun.DB, store *audit.Store, id string, change func(*Invoice)) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		before := Invoice{ID: id}
		if err := tx.NewSelect().Model(&before).WherePK().Scan(ctx); err != nil {
			return err
		}
		after := before
		change(&after)
		if _, err := tx.NewUpdate().Model(&after).WherePK().Exec(ctx); err != nil {
			return err
		}
		return store.Record(ctx, tx, &audit.Event{
			TenantID: tenantID, Action: "invoice.updated", ResourceType: "invoice", ResourceID: id,
			Changes: audit.Diff(before, after),
		})
	})
}

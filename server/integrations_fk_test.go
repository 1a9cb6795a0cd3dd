package server

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

// TestIntegrationKeys checks the foreign keys of webhook events and links
// after the migration that joined them, then down and up again with rows
// stored: a row whose tenant is not its connection's is refused (it was
// accepted with the keys apart), rows survive both ways, and deleting a
// tenant deletes its rows through its connections.
func TestIntegrationKeys(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		other := s.register("other@example.com", "Other")
		ctx := tenancy.System(t.Context())
		tenant, otherTenant := uuid.MustParse(owner.TenantID), uuid.MustParse(other.TenantID)
		now := time.Now().UTC().Truncate(time.Microsecond)
		insert := func(tx bun.IDB, tenant uuid.UUID, key string) error {
			ev := &WebhookEvent{ID: uuid.Must(uuid.NewV7()), ConnectionID: c.ID, Provider: ProviderUserService, EventID: key,
				Type: "user.created", Payload: "{}", Status: EventReceived, ReceivedAt: now, UpdatedAt: now}
			ev.TenantID = tenant
			if _, err := tx.NewInsert().Model(ev).Exec(ctx); err != nil {
				return err
			}
			l := &integrationLink{ConnectionID: c.ID, Kind: "user", ExternalID: key, Version: now, UpdatedAt: now}
			l.TenantID = tenant
			_, err := tx.NewInsert().Model(l).Exec(ctx)
			return err
		}
		// refused reports whether the rows of insert are refused by a
		// foreign key; a transaction that stores them is rolled back.
		refused := func(tenant uuid.UUID, key string) bool {
			errKept := context.Canceled
			err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if err := insert(tx, tenant, key); err != nil {
					return err
				}
				return errKept
			})
			if err != errKept && !isForeignKeyViolation(err) {
				t.Fatalf("insert %s: %v", key, err)
			}
			return err != errKept
		}
		count := func() (n int) {
			var e, l int
			if err := db.NewRaw("SELECT (SELECT count(*) FROM webhook_events), (SELECT count(*) FROM integration_links)").Scan(ctx, &e, &l); err != nil {
				t.Fatal(err)
			}
			if e != l {
				t.Fatalf("%d events, %d links", e, l)
			}
			return e
		}
		rekey := func(joined bool) {
			err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				return rekeyIntegrationTables(ctx, tx, joined)
			})
			if err != nil {
				t.Fatalf("rekey(joined=%v): %v", joined, err)
			}
		}

		if err := insert(db, tenant, "kept"); err != nil {
			t.Fatal(err)
		}
		if !refused(otherTenant, "mismatch") {
			t.Fatal("an event and a link of another tenant than their connection's were stored")
		}
		if refused(tenant, "ok") {
			t.Fatal("an event and a link of the connection's tenant were refused")
		}
		rekey(false) // down: the keys apart, as first created
		if refused(otherTenant, "mismatch") || count() != 1 {
			t.Fatalf("keys apart: a mismatched tenant is refused, or rows were lost (%d)", count())
		}
		rekey(true) // up again
		if !refused(otherTenant, "mismatch") || count() != 1 {
			t.Fatalf("keys joined again: a mismatched tenant is accepted, or rows were lost (%d)", count())
		}
		// The indexes are back after SQLite's copy: listing by tenant
		// and status still works, and the event id stays unique per
		// connection.
		if err := insert(db, tenant, "kept"); err == nil {
			t.Fatal("a second event with the same id was stored")
		}
		if evs := s.events(owner, "&status=received"); len(evs) != 1 || evs[0].EventID != "kept" {
			t.Fatalf("events = %+v", evs)
		}
		if _, err := db.NewDelete().TableExpr("tenants").Where("id = ?", tenant).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 0 {
			t.Fatalf("%d events and links left after their tenant was deleted", n)
		}
	})
}

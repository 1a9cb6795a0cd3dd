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

// TestInsertEventsRoundTrip inserts events with insertEvents and reads
// them back through Bun: every field is as given (times to the
// microsecond), and an event already stored is skipped.
func TestInsertEventsRoundTrip(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@example.com", "Acme")
		c := s.connect(owner, ProviderUserService, "acme")
		tenant, err := s.srv.lookup.LookupTenant(t.Context(), owner.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		ctx := tenancy.WithTenant(t.Context(), tenant)
		at := time.Date(2026, 11, 27, 13, 14, 15, 123456789, time.FixedZone("x", 3600))
		occurred := at.Add(-time.Minute).Truncate(time.Microsecond)
		mk := func(id string, occ *time.Time) *WebhookEvent {
			we := &WebhookEvent{ID: uuid.Must(uuid.NewV7()), ConnectionID: c.ID, Provider: ProviderUserService, EventID: id,
				Type: "user.created", Payload: `{"id":"` + id + `","data":{"note":"it's \"quoted\" é"}}`, OccurredAt: occ,
				Status: EventReceived, ReceivedAt: at, UpdatedAt: at}
			we.TenantID = tenant.ID
			return we
		}
		in := []*WebhookEvent{mk("e1", &occurred), mk("e2", nil)}
		var ids []uuid.UUID
		err = s.srv.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			ids, err = insertEvents(ctx, tx, in)
			return err
		})
		if err != nil || len(ids) != 2 {
			t.Fatalf("inserted %v: %v", ids, err)
		}
		for _, want := range in {
			got := new(WebhookEvent)
			if err := db.NewSelect().Model(got).Where("we.id = ?", want.ID).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if got.TenantID != want.TenantID || got.ConnectionID != want.ConnectionID || got.Provider != want.Provider ||
				got.EventID != want.EventID || got.Type != want.Type || got.Payload != want.Payload || got.Status != want.Status ||
				got.Attempts != 0 || got.LastError != "" || got.ProcessedAt != nil ||
				!got.ReceivedAt.Equal(at.Truncate(time.Microsecond)) || !got.UpdatedAt.Equal(at.Truncate(time.Microsecond)) ||
				(want.OccurredAt == nil) != (got.OccurredAt == nil) || (got.OccurredAt != nil && !got.OccurredAt.Equal(occurred)) {
				t.Errorf("read back %+v, want %+v", got, want)
			}
		}
		err = s.srv.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			ids, err = insertEvents(ctx, tx, []*WebhookEvent{mk("e1", nil), mk("e3", nil), mk("e3", nil)})
			return err
		})
		if err != nil || len(ids) != 1 {
			t.Fatalf("second insert: %v %v, want one new row (e3)", ids, err)
		}
	})
}

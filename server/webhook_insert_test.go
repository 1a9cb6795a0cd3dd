package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
		var stored []string // names stored by the many-event tests below
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

		// Many events, then events that mix stored and new ones (some new
		// ones twice): exactly the new ones are returned.
		insert := func(names ...string) (want, got []uuid.UUID) {
			var wes []*WebhookEvent
			for _, n := range names {
				wes = append(wes, mk(n, nil))
			}
			err := s.srv.tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				var err error
				got, err = insertEvents(ctx, tx, wes)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{"e1": true, "e2": true, "e3": true}
			for _, n := range stored {
				seen[n] = true
			}
			for i, n := range names {
				if !seen[n] {
					seen[n] = true
					want = append(want, wes[i].ID)
					stored = append(stored, n)
				}
			}
			// The ids come back in no particular order.
			for _, ids := range [][]uuid.UUID{want, got} {
				slices.SortFunc(ids, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
			}
			return want, got
		}
		var names []string
		for i := range 21 {
			names = append(names, fmt.Sprintf("c%d", i))
		}
		if want, got := insert(names...); fmt.Sprint(got) != fmt.Sprint(want) || len(got) != 21 {
			t.Fatalf("many events: got %d ids, want %d", len(got), len(want))
		}
		var mixed []string
		for i := range 35 {
			if i%3 == 0 {
				mixed = append(mixed, fmt.Sprintf("c%d", i)) // stored (or not, past the first names)
			} else {
				mixed = append(mixed, fmt.Sprintf("m%d", i%20)) // new, some twice
			}
		}
		if want, got := insert(mixed...); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("mixed events: got %v, want %v", got, want)
		}
	})
}

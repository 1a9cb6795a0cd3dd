package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/sqldb"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(ctx, filepath.Join(dir, "app.db"), sqldb.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := audit.Migrate(ctx, db); err != nil {
		panic(err)
	}

	store := &audit.Store{}
	tenant := uuid.MustParse("0190c6e8-7a3e-7000-8000-000000000001")
	// Middleware puts the actor and request in the context once.
	ctx = audit.WithActor(ctx, audit.Actor{Type: audit.ActorUser, ID: "ada"})
	ctx = audit.WithRequestInfo(ctx, audit.RequestInfo{RequestID: "req-1", IP: "192.0.2.10"})

	type member struct {
		Email    string `json:"email"`
		Role     string `json:"role"`
		Password string `json:"password"`
	}
	before := member{Email: "grace@example.com", Role: "user", Password: "old secret"}
	after := member{Email: "grace@example.com", Role: "admin", Password: "new secret"}

	// The change and its events commit together.
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// ... write the member in tx ...
		if err := store.Record(ctx, tx, &audit.Event{
			TenantID: tenant, Action: "user.created", ResourceType: "user", ResourceID: "grace",
			Changes: audit.Diff(nil, before),
		}); err != nil {
			return err
		}
		return store.Record(ctx, tx, &audit.Event{
			TenantID: tenant, Action: "user.updated", ResourceType: "user", ResourceID: "grace",
			Changes: audit.Diff(before, after),
		})
	})
	if err != nil {
		panic(err)
	}

	// A background loop chains recorded events; reads seal first.
	if _, err := store.Seal(ctx, db); err != nil {
		panic(err)
	}
	events, _ := audit.List(ctx, db, audit.Query{TenantID: tenant})
	for _, ev := range events {
		fmt.Println(ev.Seq, ev.Action, ev.Actor.ID, ev.RequestID, ev.Changes["role"], ev.Changes["password"])
	}
	res, err := audit.Verify(ctx, db, tenant)
	fmt.Println("verified:", res.Events, "events, error:", err)
	// Output:
	// 2 user.updated ada req-1 {user admin} {[redacted] [redacted]}
	// 1 user.created ada req-1 {<nil> user} {<nil> [redacted]}
	// verified: 2 events, error: <nil>
}

package bench

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/server"
	"github.com/saaskit/saaskit/tenancy"
)

const benchPassword = "bench-password-1"

type registered struct {
	User struct {
		ID uuid.UUID `json:"id"`
	} `json:"user"`
	Tenant struct {
		ID   uuid.UUID `json:"id"`
		Slug string    `json:"slug"`
	} `json:"tenant"`
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// registerOwner registers a user with a new tenant through the API.
func (e *env) registerOwner(ctx context.Context, email, tenant string) (*registered, error) {
	var out registered
	err := e.call(ctx, http.MethodPost, "/api/auth/register/", "", map[string]string{
		"email": email, "password": benchPassword, "full_name": "Bench Owner", "tenant_name": tenant,
	}, &out, http.StatusCreated)
	return &out, err
}

// seedMembers inserts n members into tenant t directly, in batches, all
// sharing one password hash (seeding speed is not what is measured).
func seedMembers(ctx context.Context, db *bun.DB, tenantID uuid.UUID, n int, prefix string) error {
	ctx = tenancy.System(ctx)
	const batch = 1000
	base := time.Now().UTC().Add(-time.Duration(n) * time.Millisecond)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		users := make([]*server.User, 0, end-start)
		members := make([]*server.Member, 0, end-start)
		for i := start; i < end; i++ {
			at := base.Add(time.Duration(i) * time.Millisecond)
			u := &server.User{ID: uuid.Must(uuid.NewV7()), Email: fmt.Sprintf("%s-%d@bench.example.com", prefix, i),
				FullName: fmt.Sprintf("Member %d", i), PasswordHash: "-", CreatedAt: at, UpdatedAt: at}
			users = append(users, u)
			m := &server.Member{UserID: u.ID, Role: authn.RoleUser, IsActive: true, CreatedAt: at, UpdatedAt: at}
			m.TenantID = tenantID
			members = append(members, m)
		}
		err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(&users).Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewInsert().Model(&members).Exec(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench: seed: %w", err)
		}
	}
	return nil
}

func usersList(ctx context.Context, cfg Config) ([]Result, error) {
	e, err := start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	db := e.srv.DB()
	t0 := time.Now()
	store := &tenancy.Store{}
	for i := range cfg.OtherTenants {
		// Other tenants are created directly: registering each through the
		// API would spend the seeding time hashing passwords.
		o := &tenancy.Tenant{Slug: fmt.Sprintf("other-%d", i), Name: fmt.Sprintf("Other %d", i)}
		if err := store.Create(tenancy.System(ctx), db, o); err != nil {
			return nil, err
		}
		if err := seedMembers(ctx, db, o.ID, cfg.OtherMembers, fmt.Sprintf("o%d", i)); err != nil {
			return nil, err
		}
		if i%100 == 99 {
			fmt.Fprintf(cfg.Log, "seeded %d other tenants\n", i+1)
		}
	}
	owner, err := e.registerOwner(ctx, "owner@bench.example.com", "Bench")
	if err != nil {
		return nil, err
	}
	if err := seedMembers(ctx, db, owner.Tenant.ID, cfg.Members-1, "m"); err != nil {
		return nil, err
	}
	if e.dbName == "pg" {
		db.ExecContext(ctx, "ANALYZE")
	}
	fmt.Fprintf(cfg.Log, "seeded %d members in the tenant under test and %d other tenants of %d in %s\n",
		cfg.Members, cfg.OtherTenants, cfg.OtherMembers, time.Since(t0).Round(time.Millisecond))

	httpRes := measure(ctx, cfg, "users-list", e.dbName, func(ctx context.Context, _ int) error {
		return e.call(ctx, http.MethodGet, "/api/users/?limit=20", owner.Access, nil, nil, http.StatusOK)
	})

	// The same query through Bun, without HTTP, JSON or authentication.
	tenant, err := (&tenancy.Store{}).Get(tenancy.System(ctx), db, owner.Tenant.ID)
	if err != nil {
		return nil, err
	}
	tctx := tenancy.WithTenant(ctx, tenant)
	runner := e.srv.TxRunner()
	rawRes := measure(tctx, cfg, "users-list (Bun only)", e.dbName, func(ctx context.Context, _ int) error {
		return runner.Read(ctx, func(ctx context.Context, db bun.IDB) error {
			var rows []*server.Member
			return db.NewSelect().Model(&rows).Relation("User").OrderExpr("member.user_id ASC").Limit(21).Scan(ctx)
		})
	})
	return []Result{httpRes, rawRes}, nil
}

func login(ctx context.Context, cfg Config) ([]Result, error) {
	e, err := start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if _, err := e.registerOwner(ctx, "login@bench.example.com", "Login Bench"); err != nil {
		return nil, err
	}
	body := map[string]string{"email": "login@bench.example.com", "password": benchPassword}
	r := measure(ctx, cfg, "login", e.dbName, func(ctx context.Context, _ int) error {
		return e.call(ctx, http.MethodPost, "/api/auth/login/", "", body, nil, http.StatusOK)
	})
	return []Result{r}, nil
}

// usersCreate measures POST /api/users/ (a new identity and membership, no
// password so that argon2id does not dominate) with the audit log on and
// then off, each on a fresh server; with cfg.DisableAudit, off only.
func usersCreate(ctx context.Context, cfg Config) ([]Result, error) {
	var out []Result
	for _, off := range []bool{false, true} {
		if !off && cfg.DisableAudit {
			continue
		}
		c := cfg
		c.DisableAudit = off
		label := "audit on"
		if off {
			label = "audit off"
		}
		r, err := usersCreateRun(ctx, c, label)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func usersCreateRun(ctx context.Context, cfg Config, label string) (Result, error) {
	e, err := start(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	run := strings.ReplaceAll(label, " ", "-")
	owner, err := e.registerOwner(ctx, "owner-"+run+"@create.example.com", "Create "+label)
	if err != nil {
		return Result{}, err
	}
	var n atomic.Int64
	r := measure(ctx, cfg, "users-create ("+label+")", e.dbName, func(ctx context.Context, w int) error {
		body := map[string]string{
			"email":     fmt.Sprintf("u%d-%s@create.example.com", n.Add(1), run),
			"full_name": "Created Member", "role": "user",
		}
		return e.call(ctx, http.MethodPost, "/api/users/", owner.Access, body, nil, http.StatusCreated)
	})
	return r, nil
}

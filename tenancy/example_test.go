package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/uptrace/bun"

	"github.com/saaskit/saaskit/internal/sqldb"
	"github.com/saaskit/saaskit/tenancy"
)

type Project struct {
	bun.BaseModel `bun:"table:projects"`
	tenancy.Scoped
	ID   int64  `bun:"id,pk,autoincrement"`
	Name string `bun:"name,notnull"`
}

func Example() {
	dir, err := os.MkdirTemp("", "tenancy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "app.db"), sqldb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	db.AddQueryHook(tenancy.NewGuard("projects"))

	if err := tenancy.Migrate(ctx, db); err != nil {
		log.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*Project)(nil)).Exec(ctx); err != nil {
		log.Fatal(err)
	}

	store := tenancy.NewStore()
	acme := &tenancy.Tenant{Slug: tenancy.Slugify("Acme Inc."), Name: "Acme Inc."}
	globex := &tenancy.Tenant{Slug: "globex", Name: "Globex"}
	for _, t := range []*tenancy.Tenant{acme, globex} {
		if err := store.Create(ctx, db, t); err != nil {
			log.Fatal(err)
		}
	}

	// Inserts are stamped with the context's tenant.
	acmeCtx := tenancy.WithTenant(ctx, acme)
	globexCtx := tenancy.WithTenant(ctx, globex)
	db.NewInsert().Model(&[]Project{{Name: "rocket"}, {Name: "anvil"}}).Exec(acmeCtx)
	db.NewInsert().Model(&Project{Name: "doomsday device"}).Exec(globexCtx)

	// Selects see one tenant.
	var ps []Project
	db.NewSelect().Model(&ps).Order("name").Scan(acmeCtx)
	for _, p := range ps {
		fmt.Println(acme.Slug, p.Name)
	}

	// No tenant: the model query and raw SQL both fail closed.
	err = db.NewSelect().Model(&ps).Scan(ctx)
	fmt.Println(errors.Is(err, tenancy.ErrNoTenant))
	_, err = db.QueryContext(ctx, "SELECT name FROM projects")
	fmt.Println(errors.Is(err, tenancy.ErrNoTenant))

	// Output:
	// acme-inc anvil
	// acme-inc rocket
	// true
	// true
}

func ExampleSlugify() {
	fmt.Println(tenancy.Slugify("Wayne Enterprises, Ltd."))
	// Output: wayne-enterprises-ltd
}

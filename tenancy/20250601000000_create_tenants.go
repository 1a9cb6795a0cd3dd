package tenancy

import (
	"context"

	"github.com/uptrace/bun"
)

func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewCreateTable().Model((*Tenant)(nil)).IfNotExists().Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewCreateIndex().Model((*Tenant)(nil)).Index("tenants_status_idx").Column("status").IfNotExists().Exec(ctx)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.NewDropTable().Model((*Tenant)(nil)).IfExists().Exec(ctx)
		return err
	})
}

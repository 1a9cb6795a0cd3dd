package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/feature"
)

// ErrTenantMismatch means a tenant-owned model carries a tenant id other than
// the tenant in the context: the write is refused rather than moved.
var ErrTenantMismatch = errors.New("tenancy: model belongs to another tenant")

// Scoped marks a Bun model as tenant-owned. Embed it by value in every model
// whose table has a tenant_id column:
//
//	type Member struct {
//		bun.BaseModel `bun:"table:members"`
//		tenancy.Scoped
//		ID    uuid.UUID `bun:"id,pk,type:uuid"`
//		Email string    `bun:"email,notnull"`
//	}
//
// Its methods are Bun model hooks that the embedding model inherits:
//
//   - SELECT (Scan), UPDATE and DELETE get `tenant_id = <tenant>` added from the
//     context's tenant;
//   - INSERT and UPDATE of model values stamp TenantID with the context's tenant,
//     and refuse a value that already belongs to another tenant with
//     [ErrTenantMismatch].
//
// With no tenant in the context the query fails with an error wrapping
// [ErrNoTenant], unless the context is marked by [System], in which case the
// query is not scoped (and an insert must carry its own TenantID). A tenant in
// the context wins over System: the query is scoped to it.
//
// Bun calls the SELECT hook only from Scan (and ScanAndCount without limit or
// offset). Count, Exists, Rows and Exec of a SelectQuery skip it: scope those
// with [Scope], and install a [Guard], which refuses them when they were left
// unscoped. A model that defines its own BeforeSelect, BeforeUpdate,
// BeforeDelete, BeforeInsert or BeforeAppendModel hides the one of Scoped and
// must call it.
type Scoped struct {
	TenantID uuid.UUID `bun:"tenant_id,type:uuid,notnull" json:"tenant_id"`
}

// tenantScoped is implemented only by models that embed Scoped.
type tenantScoped interface{ tenantScoped() }

func (Scoped) tenantScoped() {}

var (
	_ bun.BeforeSelectHook      = (*Scoped)(nil)
	_ bun.BeforeUpdateHook      = (*Scoped)(nil)
	_ bun.BeforeDeleteHook      = (*Scoped)(nil)
	_ bun.BeforeInsertHook      = (*Scoped)(nil)
	_ bun.BeforeAppendModelHook = (*Scoped)(nil)
)

// scope returns the tenant id a query must be limited to. ok is false for an
// unscoped system query; err wraps ErrNoTenant when the query must fail.
func scope(ctx context.Context, op string) (id uuid.UUID, ok bool, err error) {
	if t, found := FromContext(ctx); found {
		return t.ID, true, nil
	}
	if IsSystem(ctx) {
		return uuid.Nil, false, nil
	}
	return uuid.Nil, false, fmt.Errorf("%w: %s on a tenant-owned model", ErrNoTenant, op)
}

// BeforeSelect adds the tenant filter to a SELECT on the model.
func (Scoped) BeforeSelect(ctx context.Context, q *bun.SelectQuery) error {
	id, ok, err := scope(ctx, "select")
	if err != nil || !ok {
		return err
	}
	q.Where("?TableAlias.tenant_id = ?", id)
	return nil
}

// BeforeUpdate adds the tenant filter to an UPDATE on the model.
func (Scoped) BeforeUpdate(ctx context.Context, q *bun.UpdateQuery) error {
	id, ok, err := scope(ctx, "update")
	if err != nil || !ok {
		return err
	}
	q.Where("? = ?", q.FQN("tenant_id"), id)
	return nil
}

// BeforeDelete adds the tenant filter to a DELETE on the model.
func (Scoped) BeforeDelete(ctx context.Context, q *bun.DeleteQuery) error {
	id, ok, err := scope(ctx, "delete")
	if err != nil || !ok {
		return err
	}
	if q.DB().HasFeature(feature.DeleteTableAlias) {
		q.Where("?TableAlias.tenant_id = ?", id)
	} else {
		q.Where("?TableName.tenant_id = ?", id)
	}
	return nil
}

// BeforeInsert refuses an INSERT on the model with no tenant in the context
// and no system access.
func (Scoped) BeforeInsert(ctx context.Context, q *bun.InsertQuery) error {
	_, _, err := scope(ctx, "insert")
	return err
}

// BeforeAppendModel stamps TenantID on a model value about to be inserted or
// updated (for slices, on each element), and refuses a value that belongs to
// another tenant.
func (s *Scoped) BeforeAppendModel(ctx context.Context, query bun.Query) error {
	var op string
	switch query.(type) {
	case *bun.InsertQuery:
		op = "insert"
	case *bun.UpdateQuery:
		op = "update"
	default:
		return nil
	}
	id, ok, err := scope(ctx, op)
	if err != nil {
		return err
	}
	if !ok {
		if s.TenantID == uuid.Nil {
			return fmt.Errorf("%w: system %s of a model with no TenantID", ErrNoTenant, op)
		}
		return nil
	}
	switch s.TenantID {
	case uuid.Nil:
		s.TenantID = id
	case id:
	default:
		return fmt.Errorf("%w: %s of a row of tenant %s under tenant %s", ErrTenantMismatch, op, s.TenantID, id)
	}
	return nil
}

// Scope returns a function for [bun.SelectQuery.Apply] that limits the query
// to the context's tenant. Bun runs the BeforeSelect hook of [Scoped] only from
// Scan, so Count, Exists, Rows and Exec need it:
//
//	n, err := db.NewSelect().Model((*Member)(nil)).Apply(tenancy.Scope(ctx)).Count(ctx)
//
// With no tenant and no system access the query fails with [ErrNoTenant]; with
// system access and no tenant it is left as it is. Scope on a query that is
// then Scanned repeats the filter, which is harmless.
func Scope(ctx context.Context) func(*bun.SelectQuery) *bun.SelectQuery {
	return func(q *bun.SelectQuery) *bun.SelectQuery {
		id, ok, err := scope(ctx, "select")
		if err != nil {
			return q.Err(err)
		}
		if ok {
			q.Where("?TableAlias.tenant_id = ?", id)
		}
		return q
	}
}

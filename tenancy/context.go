package tenancy

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors returned by this package. They are wrapped with detail; test with
// errors.Is.
var (
	// ErrNoTenant means a tenant-owned table was queried with no tenant in the
	// context and without system access.
	ErrNoTenant = errors.New("tenancy: no tenant in context")
	// ErrTenantNotFound means a resolver named a tenant that does not exist.
	ErrTenantNotFound = errors.New("tenancy: tenant not found")
	// ErrTenantSuspended means the tenant exists but is suspended.
	ErrTenantSuspended = errors.New("tenancy: tenant suspended")
)

// Status is a tenant's lifecycle state.
type Status string

// Tenant statuses.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Tenant is an organization: the unit of isolation. Users are global
// identities that join tenants through memberships.
type Tenant struct {
	ID        uuid.UUID `bun:"id,pk,type:uuid" json:"id"`
	Slug      string    `bun:"slug,notnull,unique" json:"slug"`
	Name      string    `bun:"name,notnull" json:"name"`
	Status    Status    `bun:"status,notnull" json:"status"`
	Plan      string    `bun:"plan,notnull" json:"plan"`
	CreatedAt time.Time `bun:"created_at,notnull" json:"created_at"`
	UpdatedAt time.Time `bun:"updated_at,notnull" json:"updated_at"`
}

type tenantKey struct{}
type systemKey struct{}

// WithTenant returns a copy of ctx that carries t. Queries on tenant-owned
// models made with the returned context are scoped to t.
func WithTenant(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// FromContext returns the tenant carried by ctx, if any.
func FromContext(ctx context.Context) (*Tenant, bool) {
	t, ok := ctx.Value(tenantKey{}).(*Tenant)
	return t, ok && t != nil
}

// IDFromContext returns the id of the tenant carried by ctx, if any.
func IDFromContext(ctx context.Context) (uuid.UUID, bool) {
	t, ok := FromContext(ctx)
	if !ok {
		return uuid.Nil, false
	}
	return t.ID, true
}

// System returns a copy of ctx marked for system access: queries on
// tenant-owned models are not scoped and do not fail for want of a tenant. Use
// it only in migrations, superadmin paths and workers that set the tenant
// themselves.
func System(ctx context.Context) context.Context {
	return context.WithValue(ctx, systemKey{}, true)
}

// IsSystem reports whether ctx was marked by [System].
func IsSystem(ctx context.Context) bool {
	v, _ := ctx.Value(systemKey{}).(bool)
	return v
}

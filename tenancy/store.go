package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// ErrSlugTaken means another tenant already has the slug.
var ErrSlugTaken = errors.New("tenancy: slug already taken")

// Default values [Store.Create] fills in.
const (
	DefaultPlan   = "free"
	DefaultStatus = StatusActive
)

// Store reads and writes the tenants table (see [Migrate]). The tenants table
// is global: it is not tenant-owned and has no row-level security. Its zero
// value is ready to use; every method takes the bun.IDB to run on, so that a
// change commits in the caller's transaction. A Store is safe for concurrent
// use.
type Store struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// NewStore returns a Store with the default clock.
func NewStore() *Store { return &Store{} }

func (s *Store) now() time.Time {
	if s != nil && s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Create inserts t. It assigns a UUIDv7 id when t.ID is nil, sets both
// timestamps, and defaults Status to active and Plan to "free". It returns an
// error wrapping [ErrInvalidSlug] for a bad slug and [ErrSlugTaken] when the
// slug is in use.
func (s *Store) Create(ctx context.Context, db bun.IDB, t *Tenant) error {
	if err := ValidSlug(t.Slug); err != nil {
		return err
	}
	if t.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("tenancy: create tenant: %w", err)
		}
		t.ID = id
	}
	if t.Status == "" {
		t.Status = DefaultStatus
	}
	if t.Plan == "" {
		t.Plan = DefaultPlan
	}
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	if _, err := db.NewInsert().Model(t).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: %q", ErrSlugTaken, t.Slug)
		}
		return fmt.Errorf("tenancy: create tenant: %w", err)
	}
	return nil
}

// Get returns the tenant with the given id, or an error wrapping
// [ErrTenantNotFound].
func (s *Store) Get(ctx context.Context, db bun.IDB, id uuid.UUID) (*Tenant, error) {
	t := new(Tenant)
	err := db.NewSelect().Model(t).Where("?TableAlias.id = ?", id).Limit(1).Scan(ctx)
	return found(t, err, id.String())
}

// GetBySlug returns the tenant with the given slug, or an error wrapping
// [ErrTenantNotFound].
func (s *Store) GetBySlug(ctx context.Context, db bun.IDB, slug string) (*Tenant, error) {
	t := new(Tenant)
	err := db.NewSelect().Model(t).Where("?TableAlias.slug = ?", slug).Limit(1).Scan(ctx)
	return found(t, err, slug)
}

// Lookup returns the tenant named by key, a tenant id or a slug, or an error
// wrapping [ErrTenantNotFound].
func (s *Store) Lookup(ctx context.Context, db bun.IDB, key string) (*Tenant, error) {
	if id, err := uuid.Parse(key); err == nil {
		return s.Get(ctx, db, id)
	}
	if ValidSlug(key) != nil {
		return nil, fmt.Errorf("%w: %q", ErrTenantNotFound, key)
	}
	return s.GetBySlug(ctx, db, key)
}

// Update writes the slug, name, status and plan of t and sets its UpdatedAt.
// It returns an error wrapping [ErrTenantNotFound] when no tenant has t.ID,
// [ErrInvalidSlug] or [ErrSlugTaken].
func (s *Store) Update(ctx context.Context, db bun.IDB, t *Tenant) error {
	if err := ValidSlug(t.Slug); err != nil {
		return err
	}
	t.UpdatedAt = s.now()
	res, err := db.NewUpdate().Model(t).Column("slug", "name", "status", "plan", "updated_at").WherePK().Exec(ctx)
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: %q", ErrSlugTaken, t.Slug)
		}
		return fmt.Errorf("tenancy: update tenant: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: %s", ErrTenantNotFound, t.ID)
	}
	return nil
}

// Delete deletes the tenant with the given id, or returns an error wrapping
// [ErrTenantNotFound]. Rows of tenant-owned tables are the business of their
// owners (foreign keys with ON DELETE CASCADE, or a cleanup job).
func (s *Store) Delete(ctx context.Context, db bun.IDB, id uuid.UUID) error {
	res, err := db.NewDelete().Model((*Tenant)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("tenancy: delete tenant: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: %s", ErrTenantNotFound, id)
	}
	return nil
}

func found(t *Tenant, err error, key string) (*Tenant, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %q", ErrTenantNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("tenancy: get tenant: %w", err)
	}
	return t, nil
}

// isUniqueViolation recognises a unique-constraint error of Postgres
// (SQLSTATE 23505) or SQLite (extended code 2067 or 1555) without importing
// either driver.
func isUniqueViolation(err error) bool {
	if sqlState(err) == "23505" {
		return true
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() {
		case 2067, 1555:
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

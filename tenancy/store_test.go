package tenancy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/internal/dbtest"
	"github.com/saaskit/saaskit/tenancy"
)

func TestStore(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		if err := tenancy.Migrate(ctx, db.DB); err != nil {
			t.Fatal(err)
		}
		if err := tenancy.Migrate(ctx, db.DB); err != nil { // again: nothing to do
			t.Fatal(err)
		}
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		s := &tenancy.Store{Now: func() time.Time { return now }}

		acme := &tenancy.Tenant{Slug: "acme", Name: "Acme"}
		if err := s.Create(ctx, db, acme); err != nil {
			t.Fatal(err)
		}
		if acme.ID.Version() != 7 || acme.Status != tenancy.StatusActive || acme.Plan != "free" || !acme.CreatedAt.Equal(now) {
			t.Errorf("created %+v", acme)
		}
		if err := s.Create(ctx, db, &tenancy.Tenant{Slug: "acme", Name: "Other"}); !errors.Is(err, tenancy.ErrSlugTaken) {
			t.Errorf("duplicate slug: %v", err)
		}
		if err := s.Create(ctx, db, &tenancy.Tenant{Slug: "Bad Slug"}); !errors.Is(err, tenancy.ErrInvalidSlug) {
			t.Errorf("bad slug: %v", err)
		}

		for _, key := range []string{acme.ID.String(), "acme"} {
			got, err := s.Lookup(ctx, db, key)
			if err != nil {
				t.Fatalf("Lookup(%s): %v", key, err)
			}
			if got.ID != acme.ID || got.Slug != "acme" || got.Name != "Acme" || !got.CreatedAt.Equal(now) {
				t.Errorf("Lookup(%s) = %+v", key, got)
			}
		}
		for _, key := range []string{uuid.NewString(), "nobody", "", "x'; --"} {
			if _, err := s.Lookup(ctx, db, key); !errors.Is(err, tenancy.ErrTenantNotFound) {
				t.Errorf("Lookup(%q): %v", key, err)
			}
		}

		now = now.Add(time.Hour)
		acme.Name, acme.Status, acme.Plan, acme.Slug = "Acme Inc", tenancy.StatusSuspended, "pro", "acme-inc"
		if err := s.Update(ctx, db, acme); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, db, acme.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Acme Inc" || got.Status != tenancy.StatusSuspended || got.Plan != "pro" || got.Slug != "acme-inc" || !got.UpdatedAt.Equal(now) || !got.CreatedAt.Equal(now.Add(-time.Hour)) {
			t.Errorf("after update %+v", got)
		}
		other := &tenancy.Tenant{Slug: "other", Name: "Other"}
		if err := s.Create(ctx, db, other); err != nil {
			t.Fatal(err)
		}
		other.Slug = "acme-inc"
		if err := s.Update(ctx, db, other); !errors.Is(err, tenancy.ErrSlugTaken) {
			t.Errorf("update to a taken slug: %v", err)
		}
		if err := s.Update(ctx, db, &tenancy.Tenant{ID: uuid.New(), Slug: "ghost"}); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Errorf("update of a missing tenant: %v", err)
		}

		if err := s.Delete(ctx, db, acme.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, db, acme.ID); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Errorf("second delete: %v", err)
		}
		if _, err := s.GetBySlug(ctx, db, "acme-inc"); !errors.Is(err, tenancy.ErrTenantNotFound) {
			t.Errorf("get after delete: %v", err)
		}
	})
}

func TestValidSlug(t *testing.T) {
	t.Parallel()
	for s, ok := range map[string]bool{
		"ab": true, "acme-inc": true, "a1": true, "0-9": true,
		"a": false, "": false, "-ab": false, "ab-": false, "Acme": false, "a_b": false, "a b": false, "é-a": false,
		"a23456789012345678901234567890123456789012345678901234567890123":  true,
		"a234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		err := tenancy.ValidSlug(s)
		if (err == nil) != ok {
			t.Errorf("ValidSlug(%q) = %v", s, err)
		}
		if err != nil && !errors.Is(err, tenancy.ErrInvalidSlug) {
			t.Errorf("ValidSlug(%q) error does not wrap ErrInvalidSlug", s)
		}
	}
}

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Acme Inc.":            "acme-inc",
		"  --Hello__World--  ": "hello-world",
		"Café 42":              "caf-42",
		"日本":                   "",
		"A":                    "a",
	} {
		if got := tenancy.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSlugify(f *testing.F) {
	f.Add("Acme Inc.")
	f.Add("---")
	f.Fuzz(func(t *testing.T, name string) {
		s := tenancy.Slugify(name)
		if len(s) >= 2 && tenancy.ValidSlug(s) != nil {
			t.Fatalf("Slugify(%q) = %q, not a valid slug: %v", name, s, tenancy.ValidSlug(s))
		}
	})
}

package authn_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
)

func TestRoleOrder(t *testing.T) {
	t.Parallel()
	roles := []authn.Role{authn.RoleUser, authn.RoleAdmin, authn.RoleOwner}
	for i, r := range roles {
		for j, min := range roles {
			if got := r.AtLeast(min); got != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", r, min, got)
			}
		}
		if authn.Role("root").AtLeast(r) || r.AtLeast("") {
			t.Errorf("invalid roles compare with %s", r)
		}
		parsed, err := authn.ParseRole(string(r))
		if err != nil || parsed != r || !r.Valid() {
			t.Errorf("ParseRole(%s) = %v, %v", r, parsed, err)
		}
	}
	for _, s := range []string{"", "Admin", "superadmin", "owner "} {
		if _, err := authn.ParseRole(s); !errors.Is(err, authn.ErrInvalidRole) {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if err := authn.Authorize(ctx, authn.RoleUser); !errors.Is(err, authn.ErrUnauthenticated) {
		t.Fatalf("no principal: %v", err)
	}
	p := &authn.Principal{UserID: uuid.New(), TenantID: uuid.New(), Role: authn.RoleAdmin}
	ctx = authn.WithPrincipal(ctx, p)
	if got, ok := authn.PrincipalFromContext(ctx); !ok || got != p {
		t.Fatal("principal not in context")
	}
	if err := authn.Authorize(ctx, authn.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := authn.Authorize(ctx, authn.RoleOwner); !errors.Is(err, authn.ErrForbidden) {
		t.Fatalf("admin as owner: %v", err)
	}
	if err := authn.AuthorizeSuperadmin(ctx); !errors.Is(err, authn.ErrForbidden) {
		t.Fatalf("admin as superadmin: %v", err)
	}
	sa := authn.WithPrincipal(context.Background(), &authn.Principal{UserID: uuid.New(), Superadmin: true})
	if err := authn.AuthorizeSuperadmin(sa); err != nil {
		t.Fatal(err)
	}
	if err := authn.Authorize(sa, authn.RoleUser); !errors.Is(err, authn.ErrForbidden) {
		t.Fatalf("superadmin as tenant user: %v", err)
	}
	if _, ok := authn.PrincipalFromContext(authn.WithPrincipal(context.Background(), nil)); ok {
		t.Fatal("nil principal reported as present")
	}
}

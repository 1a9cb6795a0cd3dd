package authn

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Role is a member's role within one tenant. Roles are ordered
// [RoleUser] < [RoleAdmin] < [RoleOwner].
type Role string

// The roles a tenant member may hold.
const (
	// RoleUser is an ordinary member.
	RoleUser Role = "user"
	// RoleAdmin manages the tenant's members.
	RoleAdmin Role = "admin"
	// RoleOwner may also delete the tenant and hand over ownership.
	RoleOwner Role = "owner"
)

func (r Role) rank() int {
	switch r {
	case RoleUser:
		return 1
	case RoleAdmin:
		return 2
	case RoleOwner:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is a valid role at or above min. An invalid r is
// never at least anything, and nothing is at least an invalid min.
func (r Role) AtLeast(min Role) bool {
	return r.Valid() && min.Valid() && r.rank() >= min.rank()
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

// ParseRole returns the role named s ("user", "admin" or "owner"), or an error
// wrapping [ErrInvalidRole].
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("%w: %q", ErrInvalidRole, s)
	}
	return r, nil
}

// Principal is the authenticated caller of a request, as read from a verified
// access token.
type Principal struct {
	// UserID is the user (the token's sub).
	UserID uuid.UUID
	// TenantID is the tenant the token was issued for (tid); uuid.Nil for a
	// token that is not bound to a tenant.
	TenantID uuid.UUID
	// Role is the user's role in TenantID; empty when TenantID is uuid.Nil.
	Role Role
	// Superadmin marks a platform operator (the sa claim). It grants the
	// platform-level operations only, not any role inside a tenant.
	Superadmin bool
	// TokenID is the token's jti.
	TokenID string
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal that ctx carries, if any.
func PrincipalFromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Authorize checks that ctx carries a principal whose role in its tenant is at
// least min. It returns an error wrapping [ErrUnauthenticated] when there is
// no principal and [ErrForbidden] when the role is too low. Superadmin does not
// count as a tenant role.
func Authorize(ctx context.Context, min Role) error {
	p, ok := PrincipalFromContext(ctx)
	if !ok {
		return ErrUnauthenticated
	}
	if p.TenantID == uuid.Nil || !p.Role.AtLeast(min) {
		return fmt.Errorf("%w: role %q is below %q", ErrForbidden, p.Role, min)
	}
	return nil
}

// AuthorizeSuperadmin checks that ctx carries a superadmin principal. It
// returns an error wrapping [ErrUnauthenticated] or [ErrForbidden].
func AuthorizeSuperadmin(ctx context.Context) error {
	p, ok := PrincipalFromContext(ctx)
	if !ok {
		return ErrUnauthenticated
	}
	if !p.Superadmin {
		return fmt.Errorf("%w: superadmin required", ErrForbidden)
	}
	return nil
}

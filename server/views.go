package server

import (
	"time"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// UserView is a member of a tenant as the API shows it.
type UserView struct {
	ID        uuid.UUID  `json:"id"`
	Email     string     `json:"email"`
	FullName  string     `json:"full_name"`
	Role      authn.Role `json:"role" enum:"user,admin,owner"`
	IsActive  bool       `json:"is_active"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// TenantView is a tenant as the API shows it.
type TenantView struct {
	ID        uuid.UUID      `json:"id"`
	Slug      string         `json:"slug"`
	Name      string         `json:"name"`
	Status    tenancy.Status `json:"status" enum:"active,suspended"`
	Plan      string         `json:"plan"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// TokenPair is the answer of login, token and refresh.
type TokenPair struct {
	Access    string `json:"access" doc:"Access token (JWT, typ at+jwt)."`
	Refresh   string `json:"refresh" doc:"Opaque refresh token; rotated on every use."`
	TokenType string `json:"token_type" example:"Bearer"`
	ExpiresIn int    `json:"expires_in" doc:"Seconds until the access token expires."`
}

func memberView(m *Member) UserView {
	v := UserView{ID: m.UserID, Role: m.Role, IsActive: m.IsActive, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	if m.User != nil {
		v.Email, v.FullName = m.User.Email, m.User.FullName
		if m.User.UpdatedAt.After(v.UpdatedAt) {
			v.UpdatedAt = m.User.UpdatedAt
		}
	}
	return v
}

func tenantView(t *tenancy.Tenant) TenantView {
	return TenantView{ID: t.ID, Slug: t.Slug, Name: t.Name, Status: t.Status, Plan: t.Plan, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

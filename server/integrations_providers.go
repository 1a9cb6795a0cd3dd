package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/tenancy"
)

// Provider names.
const (
	ProviderUserService    = "user-service"
	ProviderPaymentService = "payment-service"
)

// integrationProvider is an external system the server receives webhooks
// from and the handler that applies its events.
type integrationProvider struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Scheme      string   `json:"signature_scheme"`
	EventTypes  []string `json:"event_types"`
	// handle applies the event in pc's transaction; handled false means the
	// type is not one the provider knows (the event is skipped).
	handle func(ctx context.Context, pc *processing) (handled bool, err error)
	// prefetch adds to f what handle will read for ev, so that a batch job
	// reads it for all its events at once.
	prefetch func(ev *WebhookEvent, f *prefetch)
}

// providers are the built-in providers, by name. Both sign with Standard
// Webhooks (webhook-id, webhook-timestamp, webhook-signature) and the
// connection's whsec_ secrets.
var providers = map[string]*integrationProvider{
	ProviderUserService: {
		Name:        ProviderUserService,
		Description: "External user directory: user.created, user.updated and user.deleted sync memberships of the connection's tenant.",
		Scheme:      "standard-webhooks",
		EventTypes:  []string{"user.created", "user.updated", "user.deleted"},
		handle:      handleUserEvent,
		prefetch:    prefetchUserEvent,
	},
	ProviderPaymentService: {
		Name: ProviderPaymentService,
		Description: "Billing: subscription.created, subscription.updated, subscription.canceled, payment.succeeded and payment.failed " +
			"set the tenant's plan and status (canceled or long unpaid: suspended).",
		Scheme: "standard-webhooks",
		EventTypes: []string{"subscription.created", "subscription.updated", "subscription.canceled",
			"payment.succeeded", "payment.failed"},
		handle: handlePaymentEvent,
		prefetch: func(ev *WebhookEvent, f *prefetch) {
			f.links = append(f.links, linkKey{ev.ConnectionID, "billing", "tenant"})
		},
	},
}

// providerNames lists the providers in order.
func providerNames() []string {
	var out []string
	for n := range providers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// eventEnvelope is the body both providers send.
type eventEnvelope[T any] struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data T      `json:"data"`
}

func decodeData[T any](ev *WebhookEvent) (T, error) {
	var env eventEnvelope[T]
	if err := json.Unmarshal([]byte(ev.Payload), &env); err != nil {
		return env.Data, fmt.Errorf("%w: data: %v", ErrPermanent, err)
	}
	return env.Data, nil
}

// version is the external version of an object: its updated_at, or the
// event's time when it has none.
func version(updatedAt *time.Time, ev *WebhookEvent) time.Time {
	switch {
	case updatedAt != nil:
		return updatedAt.UTC().Truncate(time.Microsecond)
	case ev.OccurredAt != nil:
		return ev.OccurredAt.UTC()
	}
	return time.Time{}
}

// loadLink returns the link of an external object, or nil, locked for the
// rest of tx on Postgres (see batchStore.loadLinks).
func loadLink(ctx context.Context, tx bun.Tx, conn uuid.UUID, kind, externalID string) (*integrationLink, error) {
	l := new(integrationLink)
	q := tx.NewSelect().Model(l).Where("il.connection_id = ?", conn).Where("il.kind = ?", kind).
		Where("il.external_id = ?", externalID)
	if tx.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE") // see batchStore.loadLinks
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return l, err
}

// stale reports whether an event of version v is not newer than what the
// link already applied (a replay, or an event that arrived late).
func stale(l *integrationLink, v time.Time) bool {
	return l != nil && !v.After(l.Version)
}

func (pc *processing) saveLink(ctx context.Context, l *integrationLink) error {
	l.ConnectionID, l.UpdatedAt = pc.ev.ConnectionID, pc.s.now()
	return pc.st.saveLink(ctx, l)
}

// externalUser is the data of a user-service event.
type externalUser struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	FullName  string     `json:"full_name"`
	Role      string     `json:"role"`
	Active    *bool      `json:"active"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// handleUserEvent syncs a user of the external directory to a membership
// of the tenant. Roles are user or admin (an external directory never
// grants or takes away ownership); a deleted user loses the membership,
// not the identity, which may belong to other tenants.
func handleUserEvent(ctx context.Context, pc *processing) (bool, error) {
	ev := pc.ev
	switch ev.Type {
	case "user.created", "user.updated", "user.deleted":
	default:
		return false, nil
	}
	d, err := decodeData[externalUser](ev)
	if err != nil {
		return false, err
	}
	if d.ID == "" {
		return false, fmt.Errorf("%w: data.id is required", ErrPermanent)
	}
	v := version(d.UpdatedAt, ev)
	link, err := pc.st.link(ctx, ev.ConnectionID, "user", d.ID)
	if err != nil || stale(link, v) {
		return true, err
	}
	if ev.Type == "user.deleted" {
		if link != nil && !link.Deleted && link.InternalID != "" {
			if err := pc.removeMember(ctx, link.InternalID); err != nil {
				return false, err
			}
		}
		internal := ""
		if link != nil {
			internal = link.InternalID
		}
		return true, pc.saveLink(ctx, &integrationLink{Kind: "user", ExternalID: d.ID, InternalID: internal, Version: v, Deleted: true})
	}
	role := authn.RoleUser
	if d.Role == string(authn.RoleAdmin) {
		role = authn.RoleAdmin
	}
	active := d.Active == nil || *d.Active
	userID, err := pc.upsertMember(ctx, link, d, role, active)
	if err != nil {
		return false, err
	}
	return true, pc.saveLink(ctx, &integrationLink{Kind: "user", ExternalID: d.ID, InternalID: userID.String(), Version: v})
}

// upsertMember finds or creates the user (by the link, then by email) and
// creates or updates its membership, recording the change.
func (pc *processing) upsertMember(ctx context.Context, link *integrationLink, d externalUser, role authn.Role, active bool) (uuid.UUID, error) {
	s, st := pc.s, pc.st
	now := s.now()
	var user *User
	if link != nil && link.InternalID != "" {
		if id, err := uuid.Parse(link.InternalID); err == nil {
			if user, err = st.userByID(ctx, id); err != nil {
				return uuid.Nil, err
			}
		}
	}
	created := false
	if user == nil {
		email, err := normalizeEmail("data.email", d.Email)
		if err != nil {
			return uuid.Nil, fmt.Errorf("%w: data.email is not a valid address", ErrPermanent)
		}
		if user, err = st.userByEmail(ctx, email); err != nil {
			return uuid.Nil, err
		}
		if user == nil {
			// No user has the email; a concurrent insert of the same email
			// fails this attempt, which is retried.
			user = &User{ID: uuid.Must(uuid.NewV7()), Email: email, FullName: d.FullName, CreatedAt: now, UpdatedAt: now}
			if err := st.insertUser(ctx, user); err != nil {
				return uuid.Nil, err
			}
			created = true
		}
	}
	m, err := (*Member)(nil), ErrNotFound
	if !created { // a user created just now is nobody's member yet
		m, err = st.member(ctx, user.ID)
	}
	if errors.Is(err, ErrNotFound) {
		m = &Member{UserID: user.ID, User: user, Role: role, IsActive: active, CreatedAt: now, UpdatedAt: now}
		if err := st.insertMember(ctx, m); err != nil {
			return uuid.Nil, err
		}
		changes := audit.Diff(nil, auditMember(m))
		changes["external_id"] = audit.Change{After: d.ID}
		return user.ID, st.record(ctx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberCreated,
			ResourceType: "member", ResourceID: user.ID.String(), Changes: changes})
	}
	if err != nil {
		return uuid.Nil, err
	}
	before := auditMember(m)
	if m.Role != authn.RoleOwner {
		m.Role = role
	}
	m.IsActive = active || m.Role == authn.RoleOwner
	changes := audit.Diff(before, auditMember(m))
	if len(changes) == 0 {
		return user.ID, nil
	}
	m.UpdatedAt = now
	if err := st.updateMember(ctx, m); err != nil {
		return uuid.Nil, err
	}
	return user.ID, st.record(ctx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberUpdated,
		ResourceType: "member", ResourceID: user.ID.String(), Changes: changes})
}

// removeMember removes the membership of a user, if it still exists. An
// owner is not removed by an integration.
func (pc *processing) removeMember(ctx context.Context, userID string) error {
	id, err := uuid.Parse(userID)
	if err != nil {
		return fmt.Errorf("%w: bad link %q", ErrPermanent, userID)
	}
	m, err := pc.st.member(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Role == authn.RoleOwner {
		return fmt.Errorf("%w: an integration does not remove an owner", ErrPermanent)
	}
	if err := pc.st.deleteMember(ctx, m); err != nil {
		return err
	}
	return pc.st.record(ctx, &audit.Event{TenantID: m.TenantID, Action: ActionMemberRemoved,
		ResourceType: "member", ResourceID: id.String(), Changes: audit.Diff(auditMember(m), nil)})
}

// prefetchUserEvent names the link and the email a user event reads.
func prefetchUserEvent(ev *WebhookEvent, f *prefetch) {
	d, err := decodeData[externalUser](ev)
	if err != nil || d.ID == "" {
		return
	}
	f.links = append(f.links, linkKey{ev.ConnectionID, "user", d.ID})
	if email, err := normalizeEmail("data.email", d.Email); err == nil {
		f.emails = append(f.emails, email)
	}
}

// externalBilling is the data of a payment-service event.
type externalBilling struct {
	// ID is the subscription id (for payment events, the subscription
	// paid for).
	ID           string     `json:"id"`
	Subscription string     `json:"subscription"`
	Plan         string     `json:"plan"`
	Status       string     `json:"status"`
	UnpaidSince  *time.Time `json:"unpaid_since"`
	UpdatedAt    *time.Time `json:"updated_at"`
}

// handlePaymentEvent sets the tenant's plan and status from its
// subscription. A canceled subscription, or one whose payments have failed
// for longer than Config.PaymentGrace, suspends the tenant; a successful
// payment or an active subscription reactivates it. All payment-service
// events of a connection share one version, so that an older event never
// overrides a newer state.
func handlePaymentEvent(ctx context.Context, pc *processing) (bool, error) {
	ev := pc.ev
	switch ev.Type {
	case "subscription.created", "subscription.updated", "subscription.canceled", "payment.succeeded", "payment.failed":
	default:
		return false, nil
	}
	d, err := decodeData[externalBilling](ev)
	if err != nil {
		return false, err
	}
	sub := d.ID
	if d.Subscription != "" {
		sub = d.Subscription
	}
	if sub == "" {
		return false, fmt.Errorf("%w: data.id or data.subscription is required", ErrPermanent)
	}
	v := version(d.UpdatedAt, ev)
	link, err := pc.st.link(ctx, ev.ConnectionID, "billing", "tenant")
	if err != nil || stale(link, v) {
		return true, err
	}
	id, ok := tenancy.IDFromContext(ctx)
	if !ok {
		return false, tenancy.ErrNoTenant
	}
	t, err := pc.s.tenants.Get(ctx, pc.tx, id)
	if err != nil {
		return false, err
	}
	after := *t
	switch ev.Type {
	case "subscription.canceled":
		after.Status = tenancy.StatusSuspended
	case "subscription.created", "subscription.updated":
		if d.Plan != "" {
			after.Plan = d.Plan
		}
		switch d.Status {
		case "canceled", "unpaid":
			after.Status = tenancy.StatusSuspended
		case "past_due":
			if d.UnpaidSince != nil && pc.s.now().Sub(*d.UnpaidSince) > pc.s.cfg.PaymentGrace {
				after.Status = tenancy.StatusSuspended
			}
		default:
			after.Status = tenancy.StatusActive
		}
	case "payment.succeeded":
		after.Status = tenancy.StatusActive
	case "payment.failed":
		if d.UnpaidSince != nil && pc.s.now().Sub(*d.UnpaidSince) > pc.s.cfg.PaymentGrace {
			after.Status = tenancy.StatusSuspended
		}
	}
	if changes := audit.Diff(auditTenant(t), auditTenant(&after)); len(changes) > 0 {
		if err := pc.s.tenants.Update(ctx, pc.tx, &after); err != nil {
			return false, err
		}
		if err := pc.st.record(ctx, &audit.Event{TenantID: t.ID, Action: ActionTenantUpdated,
			ResourceType: "tenant", ResourceID: t.ID.String(), Changes: changes}); err != nil {
			return false, err
		}
		pc.tenant = &after
	}
	return true, pc.saveLink(ctx, &integrationLink{Kind: "billing", ExternalID: "tenant", InternalID: sub, Version: v,
		State: string(after.Status) + ":" + after.Plan})
}

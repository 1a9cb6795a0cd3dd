package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Errors returned by this package. They are wrapped with detail; test with
// errors.Is.
var (
	// ErrInvalidEvent means an event was refused before it was written: no
	// action, an unknown actor type, or a field that is not valid UTF-8 text.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrChainBroken means a tenant's hash chain does not verify. The error is
	// a [*ChainError] that says where and why.
	ErrChainBroken = errors.New("audit: chain broken")
	// ErrNoCheckpoint means a tenant has no signed checkpoint yet.
	ErrNoCheckpoint = errors.New("audit: no checkpoint")
	// ErrBadCheckpoint means a checkpoint does not match the log it claims to
	// sign, or names another tenant.
	ErrBadCheckpoint = errors.New("audit: bad checkpoint")
	// ErrBadExport means an export failed offline verification: malformed,
	// edited, badly signed, or incomplete.
	ErrBadExport = errors.New("audit: bad export")
)

// ActorType says what kind of principal caused an event.
type ActorType string

// Actor types.
const (
	// ActorUser is a human user, identified by the user id.
	ActorUser ActorType = "user"
	// ActorSystem is the platform itself: jobs, migrations, the CLI.
	ActorSystem ActorType = "system"
	// ActorIntegration is an external system acting through an integration,
	// identified by the provider or connection id.
	ActorIntegration ActorType = "integration"
)

// Actor is who caused an event.
type Actor struct {
	Type ActorType `json:"type"`
	ID   string    `json:"id"`
}

// IsZero reports whether a is the zero Actor.
func (a Actor) IsZero() bool { return a.Type == "" && a.ID == "" }

// Change is the value of one field before and after a modification. Before is
// nil for a created field and After is nil for a removed one.
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// Event is one audit record. The recorder fills ID and CreatedAt, and the
// chaining ([Store.Seal]) Seq, PrevHash and Hash, which the events that
// [List] and [Get] return carry; the caller sets the rest (Actor and the request fields may come
// from the context, see [WithActor] and [WithRequestInfo]).
type Event struct {
	// ID is a UUIDv7, set by Record when nil.
	ID uuid.UUID `json:"id"`
	// TenantID is the tenant whose chain holds the event. uuid.Nil is the
	// platform's own chain (superuser creation, tenant creation by an
	// operator, and other events that belong to no tenant).
	TenantID uuid.UUID `json:"tenant_id"`
	// Seq is the 1-based position in the tenant's chain, set when the event
	// is chained ([Store.Seal]); zero in an event Record has just written.
	Seq int64 `json:"seq"`
	// Actor is who caused the event.
	Actor Actor `json:"actor"`
	// Action names what happened, as "resource.verb": "user.created".
	Action string `json:"action"`
	// ResourceType and ResourceID name what the action was applied to.
	ResourceType string `json:"resource_type"`
	ResourceID   string `json:"resource_id"`
	// Changes holds the fields that changed, by name; see [Diff].
	Changes map[string]Change `json:"changes"`
	// RequestID, IP and UserAgent describe the request that caused the event.
	RequestID string `json:"request_id"`
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	// CreatedAt is when the event was recorded, in UTC truncated to the
	// microsecond; set by Record from Store.Now when zero.
	CreatedAt time.Time `json:"created_at"`
	// PrevHash is the hash of the previous event in the chain (32 zero bytes
	// for the first) and Hash is SHA-256(PrevHash || canonical event); both
	// are set when the event is chained.
	PrevHash []byte `json:"prev_hash"`
	Hash     []byte `json:"hash"`
}

// RequestInfo describes the request an event comes from.
type RequestInfo struct {
	RequestID string
	IP        string
	UserAgent string
}

type requestInfoKey struct{}
type actorKey struct{}

// WithRequestInfo returns a copy of ctx that carries info. Record fills an
// event's empty RequestID, IP and UserAgent from it.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFromContext returns the request information carried by ctx, if
// any.
func RequestInfoFromContext(ctx context.Context) (RequestInfo, bool) {
	info, ok := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info, ok
}

// WithActor returns a copy of ctx that carries a. Record uses it for an event
// whose Actor is zero.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor carried by ctx, if any.
func ActorFromContext(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}

// fillFromContext sets ev's empty actor and request fields from ctx.
func fillFromContext(ctx context.Context, ev *Event) {
	if ev.Actor.IsZero() {
		if a, ok := ActorFromContext(ctx); ok {
			ev.Actor = a
		}
	}
	if info, ok := RequestInfoFromContext(ctx); ok {
		if ev.RequestID == "" {
			ev.RequestID = info.RequestID
		}
		if ev.IP == "" {
			ev.IP = info.IP
		}
		if ev.UserAgent == "" {
			ev.UserAgent = info.UserAgent
		}
	}
}

// maxField bounds every text field but the changes.
const maxField = 1024

// validate checks the fields a caller sets.
func (ev *Event) validate() error {
	if ev.Action == "" {
		return fmt.Errorf("%w: empty action", ErrInvalidEvent)
	}
	switch ev.Actor.Type {
	case ActorUser, ActorSystem, ActorIntegration:
	case "":
		return fmt.Errorf("%w: no actor (set Event.Actor or use WithActor)", ErrInvalidEvent)
	default:
		return fmt.Errorf("%w: unknown actor type %q", ErrInvalidEvent, ev.Actor.Type)
	}
	fields := []struct{ name, v string }{
		{"actor id", ev.Actor.ID},
		{"action", ev.Action},
		{"resource type", ev.ResourceType},
		{"resource id", ev.ResourceID},
		{"request id", ev.RequestID},
		{"ip", ev.IP},
		{"user agent", ev.UserAgent},
	}
	for _, f := range fields {
		if err := checkText(f.v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidEvent, f.name, err)
		}
		if len(f.v) > maxField {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidEvent, f.name, maxField)
		}
	}
	return nil
}

func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("contains a NUL byte")
	}
	return nil
}

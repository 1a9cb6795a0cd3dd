package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// canonicalVersion is the "v" field of the canonical encoding.
const canonicalVersion = 1

// HashSize is the size of an event hash: SHA-256.
const HashSize = sha256.Size

// maxChanges bounds the encoded changes of one event.
const maxChanges = 1 << 20

// genesis is the PrevHash of the first event of every chain.
var genesis = make([]byte, HashSize)

// canonicalEvent is the hashed form of an event. Its fields are in sorted
// key order; see the package documentation for the exact rules.
type canonicalEvent struct {
	Action       string          `json:"action"`
	Actor        canonicalActor  `json:"actor"`
	Changes      json.RawMessage `json:"changes"`
	CreatedAt    string          `json:"created_at"`
	ID           string          `json:"id"`
	IP           string          `json:"ip"`
	RequestID    string          `json:"request_id"`
	ResourceID   string          `json:"resource_id"`
	ResourceType string          `json:"resource_type"`
	Seq          int64           `json:"seq"`
	TenantID     string          `json:"tenant_id"`
	UserAgent    string          `json:"user_agent"`
	V            int             `json:"v"`
}

type canonicalActor struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// eventRow is an event as read back: a row of audit_events joined with its
// link of audit_chain (Seq, EventID, PrevHash and Hash are zero for an event
// not yet sealed).
type eventRow struct {
	Pos          int64     `bun:"pos"`
	TenantID     uuid.UUID `bun:"tenant_id,type:uuid"`
	ID           uuid.UUID `bun:"id,type:uuid"`
	ActorType    string    `bun:"actor_type"`
	ActorID      string    `bun:"actor_id"`
	Action       string    `bun:"action"`
	ResourceType string    `bun:"resource_type"`
	ResourceID   string    `bun:"resource_id"`
	Changes      string    `bun:"changes"`
	RequestID    string    `bun:"request_id"`
	IP           string    `bun:"ip"`
	UserAgent    string    `bun:"user_agent"`
	CreatedAt    time.Time `bun:"created_at"`
	Seq          int64     `bun:"seq"`
	EventID      uuid.UUID `bun:"event_id,type:uuid"`
	PrevHash     []byte    `bun:"prev_hash"`
	Hash         []byte    `bun:"hash"`
}

// eventColumns selects an eventRow from audit_chain AS c joined with
// audit_events AS e. The event's own tenant and id are read (and hashed), so
// that a chain link moved to another event does not verify.
const eventColumns = `e.pos, e.tenant_id, e.id, e.actor_type, e.actor_id, e.action,
e.resource_type, e.resource_id, e.changes, e.request_id, e.ip, e.user_agent,
e.created_at, c.seq, c.event_id, c.prev_hash, c.hash`

// chainRow is a row of audit_chain: the link of event Pos at Seq.
type chainRow struct {
	bun.BaseModel `bun:"table:audit_chain"`

	TenantID uuid.UUID `bun:"tenant_id,pk,type:uuid"`
	Seq      int64     `bun:"seq,pk"`
	Pos      int64     `bun:"pos"`
	EventID  uuid.UUID `bun:"event_id,type:uuid"`
	PrevHash []byte    `bun:"prev_hash"`
	Hash     []byte    `bun:"hash"`
}

// formatTime is the canonical form of a time: UTC, RFC 3339 with up to six
// fractional digits.
func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// canonical returns the canonical encoding of the row's event fields.
func (r *eventRow) canonical() ([]byte, error) {
	if !json.Valid([]byte(r.Changes)) {
		return nil, fmt.Errorf("audit: changes of event %d are not JSON", r.Seq)
	}
	return encodeJSON(canonicalEvent{
		Action:       r.Action,
		Actor:        canonicalActor{ID: r.ActorID, Type: r.ActorType},
		Changes:      json.RawMessage(r.Changes),
		CreatedAt:    formatTime(r.CreatedAt),
		ID:           r.ID.String(),
		IP:           r.IP,
		RequestID:    r.RequestID,
		ResourceID:   r.ResourceID,
		ResourceType: r.ResourceType,
		Seq:          r.Seq,
		TenantID:     r.TenantID.String(),
		UserAgent:    r.UserAgent,
		V:            canonicalVersion,
	})
}

// chainHash returns SHA-256(prev || canon).
func chainHash(prev, canon []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canon)
	return h.Sum(nil)
}

// encodeJSON encodes v as compact JSON without HTML escaping and without the
// trailing newline.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeChanges returns the stored, canonical form of changes: compact JSON
// with every object's keys sorted at every depth.
func encodeChanges(changes map[string]Change) (string, error) {
	if len(changes) == 0 {
		return "{}", nil
	}
	if generic(changes) {
		// Values made of JSON's own types (as [Diff] returns) encode in
		// canonical form in one pass: encoding/json sorts map keys.
		m := make(map[string]any, len(changes))
		for k, c := range changes {
			m[k] = map[string]any{"after": c.After, "before": c.Before}
		}
		data, err := encodeJSON(m)
		if err != nil {
			return "", fmt.Errorf("%w: changes: %v", ErrInvalidEvent, err)
		}
		if len(data) > maxChanges {
			return "", fmt.Errorf("%w: changes longer than %d bytes", ErrInvalidEvent, maxChanges)
		}
		return string(data), nil
	}
	data, err := encodeJSON(changes)
	if err != nil {
		return "", fmt.Errorf("%w: changes: %v", ErrInvalidEvent, err)
	}
	// A second round through generic values sorts the keys of structs too.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "", fmt.Errorf("%w: changes: %v", ErrInvalidEvent, err)
	}
	data, err = encodeJSON(x)
	if err != nil {
		return "", fmt.Errorf("%w: changes: %v", ErrInvalidEvent, err)
	}
	if len(data) > maxChanges {
		return "", fmt.Errorf("%w: changes longer than %d bytes", ErrInvalidEvent, maxChanges)
	}
	return string(data), nil
}

// generic reports whether every value in changes is made of nil, bool,
// valid UTF-8 string, json.Number, float64 and int, in map[string]any and
// []any, and keys that are valid UTF-8.
func generic(changes map[string]Change) bool {
	for k, c := range changes {
		if !utf8.ValidString(k) || !genericValue(c.Before, 0) || !genericValue(c.After, 0) {
			return false
		}
	}
	return true
}

func genericValue(v any, depth int) bool {
	if depth > 32 {
		return false
	}
	switch x := v.(type) {
	case nil, bool, json.Number, int, int64, float64:
		return true
	case string:
		// encoding/json writes invalid UTF-8 as \ufffd escapes, which the
		// second round of the general path turns into the character itself.
		return utf8.ValidString(x)
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) || !genericValue(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !genericValue(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// event converts a row to an Event.
func (r *eventRow) event() (Event, error) {
	ev := Event{
		ID:           r.ID,
		TenantID:     r.TenantID,
		Seq:          r.Seq,
		Actor:        Actor{Type: ActorType(r.ActorType), ID: r.ActorID},
		Action:       r.Action,
		ResourceType: r.ResourceType,
		ResourceID:   r.ResourceID,
		RequestID:    r.RequestID,
		IP:           r.IP,
		UserAgent:    r.UserAgent,
		CreatedAt:    r.CreatedAt.UTC(),
		PrevHash:     r.PrevHash,
		Hash:         r.Hash,
	}
	if r.Changes != "" && r.Changes != "{}" {
		dec := json.NewDecoder(bytes.NewReader([]byte(r.Changes)))
		dec.UseNumber()
		if err := dec.Decode(&ev.Changes); err != nil {
			return Event{}, fmt.Errorf("audit: decode changes of event %d: %w", r.Seq, err)
		}
	}
	return ev, nil
}

// Canonical returns the canonical encoding of ev, the bytes its hash covers:
// Hash = SHA-256(PrevHash || Canonical()). It is meaningful for an event as
// recorded (Seq, ID and CreatedAt set).
func (ev *Event) Canonical() ([]byte, error) {
	changes, err := encodeChanges(ev.Changes)
	if err != nil {
		return nil, err
	}
	r := eventRow{
		TenantID: ev.TenantID, Seq: ev.Seq, ID: ev.ID,
		ActorType: string(ev.Actor.Type), ActorID: ev.Actor.ID,
		Action: ev.Action, ResourceType: ev.ResourceType, ResourceID: ev.ResourceID,
		Changes: changes, RequestID: ev.RequestID, IP: ev.IP, UserAgent: ev.UserAgent,
		CreatedAt: ev.CreatedAt,
	}
	return r.canonical()
}

package webhooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxIDLength is the longest event id or type the parsers accept, in bytes,
// so that a sink can store them in bounded columns.
const MaxIDLength = 255

// Event is one verified inbound webhook event, handed to a [Sink].
type Event struct {
	// Provider names the sender, from [Receiver.Provider]. (Provider, ID)
	// is the idempotency key.
	Provider string
	// ID is the sender's event id.
	ID string
	// Type is the sender's event type, such as "invoice.paid".
	Type string
	// Timestamp is when the sender says the event happened; zero when the
	// event does not say.
	Timestamp time.Time
	// ReceivedAt is when the receiver accepted the request.
	ReceivedAt time.Time
	// Payload is the raw event body, byte for byte as signed (for a batch,
	// the raw bytes of the item).
	Payload json.RawMessage
	// Headers are the request's headers. They are shared by the events of
	// one batch and must not be modified.
	Headers http.Header
}

// Parser reads an event's id, type and timestamp from a verified body.
//
// Parse returns an Event with ID, Type and optionally Timestamp set; the
// receivers fill in the other fields. It returns an error wrapping
// [ErrMalformedEvent] when the body is not a readable event (the receivers
// answer 400, or reject the batch item); any other error is treated as
// internal. For the items of a batch, h is nil: the request's headers
// describe the whole batch, not one event. Implementations must be safe for
// concurrent use.
type Parser interface {
	Parse(h http.Header, body []byte) (Event, error)
}

// ParserFunc adapts a function to a [Parser].
type ParserFunc func(h http.Header, body []byte) (Event, error)

// Parse calls f(h, body).
func (f ParserFunc) Parse(h http.Header, body []byte) (Event, error) { return f(h, body) }

// DefaultTimestampFields are the fields [JSONParser] reads the event time
// from when TimestampFields is nil, the first present one winning.
var DefaultTimestampFields = []string{"created", "timestamp", "occurred_at"}

// JSONParser reads events that are JSON objects. The zero value reads the
// top-level fields "id" and "type" (both required) and the time from the
// first of [DefaultTimestampFields] present.
//
// An id may be a JSON string or number. A timestamp may be a number of Unix
// seconds (milliseconds when above 1e12, as some senders use), a string of
// such digits, or an RFC 3339 string; null or absent gives a zero time.
type JSONParser struct {
	// IDField names the id field. Default "id".
	IDField string
	// TypeField names the type field. Default "type".
	TypeField string
	// TimestampFields name the candidate time fields. Default
	// DefaultTimestampFields.
	TimestampFields []string
	// IDHeader, when set and present in the request, gives the id instead
	// of the body (Standard Webhooks' webhook-id, GitHub's
	// X-GitHub-Delivery).
	IDHeader string
	// TypeHeader, when set and present in the request, gives the type
	// instead of the body (GitHub's X-GitHub-Event).
	TypeHeader string
}

var _ Parser = JSONParser{}

// StandardWebhooksParser returns the parser for Standard Webhooks: the id
// from the webhook-id header, the type and timestamp from the payload's
// "type" and "timestamp" fields.
func StandardWebhooksParser() JSONParser {
	return JSONParser{IDHeader: StandardIDHeader, TimestampFields: []string{"timestamp"}}
}

// GitHubParser returns the parser for GitHub: the id from X-GitHub-Delivery,
// the type from X-GitHub-Event. GitHub payloads carry no event time.
func GitHubParser() JSONParser {
	return JSONParser{IDHeader: "X-GitHub-Delivery", TypeHeader: "X-GitHub-Event", TimestampFields: []string{}}
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedEvent}, args...)...)
}

// Parse implements [Parser].
func (p JSONParser) Parse(h http.Header, body []byte) (Event, error) {
	var ev Event
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ev, malformed("body is not a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return ev, malformed("body is not valid JSON")
	}
	idField := cmpOr(p.IDField, "id")
	typeField := cmpOr(p.TypeField, "type")

	var err error
	if v := headerValue(h, p.IDHeader); v != "" {
		ev.ID = v
	} else if ev.ID, err = idValue(fields[idField], idField); err != nil {
		return ev, err
	}
	if v := headerValue(h, p.TypeHeader); v != "" {
		ev.Type = v
	} else if ev.Type, err = stringValue(fields[typeField], typeField); err != nil {
		return ev, err
	}
	if ev.ID == "" {
		return ev, malformed("missing id")
	}
	if ev.Type == "" {
		return ev, malformed("missing type")
	}
	if len(ev.ID) > MaxIDLength || !utf8.ValidString(ev.ID) {
		return ev, malformed("id is longer than %d bytes or not UTF-8", MaxIDLength)
	}
	if len(ev.Type) > MaxIDLength || !utf8.ValidString(ev.Type) {
		return ev, malformed("type is longer than %d bytes or not UTF-8", MaxIDLength)
	}
	tsFields := p.TimestampFields
	if tsFields == nil {
		tsFields = DefaultTimestampFields
	}
	for _, f := range tsFields {
		raw, ok := fields[f]
		if !ok {
			continue
		}
		if ev.Timestamp, err = timeValue(raw, f); err != nil {
			return ev, err
		}
		break
	}
	return ev, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func headerValue(h http.Header, name string) string {
	if h == nil || name == "" {
		return ""
	}
	return strings.TrimSpace(h.Get(name))
}

// idValue reads a string or a number; absent or null gives "".
func idValue(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", malformed("field %q is not a string", field)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", malformed("field %q is not a string or a number", field)
	}
	return n.String(), nil
}

func stringValue(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed("field %q is not a string", field)
	}
	return s, nil
}

func timeValue(raw json.RawMessage, field string) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	bad := malformed("field %q is not a time", field)
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, bad
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		raw = json.RawMessage(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e16 {
		return time.Time{}, bad
	}
	if f > 1e12 {
		return time.UnixMilli(int64(f)).UTC(), nil
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

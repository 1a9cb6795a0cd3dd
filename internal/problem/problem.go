// Package problem writes RFC 9457 problem details (application/problem+json).
// Library middleware (tenancy, authn, ratelimit, webhooks) uses it so that
// every error a saaskit handler writes has one shape; the reference server's
// API layer produces the same shape through huma.
package problem

import (
	"encoding/json"
	"net/http"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// Detail is an RFC 9457 problem document. Type defaults to "about:blank" and
// Title to the status text.
type Detail struct {
	Type     string       `json:"type,omitempty"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Extra members are merged into the document (for example "retry_after").
	Extra map[string]any `json:"-"`
}

// FieldError locates one invalid input, in the shape huma uses.
type FieldError struct {
	Location string `json:"location,omitempty"`
	Message  string `json:"message"`
	Value    any    `json:"value,omitempty"`
}

// MarshalJSON merges Extra into the document.
func (d Detail) MarshalJSON() ([]byte, error) {
	type plain Detail
	if d.Type == "" {
		d.Type = "about:blank"
	}
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	b, err := json.Marshal(plain(d))
	if err != nil || len(d.Extra) == 0 {
		return b, err
	}
	m := map[string]any{}
	for k, v := range d.Extra {
		m[k] = v
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Write writes d with its status code. Headers already set on w (such as
// WWW-Authenticate or Retry-After) are kept.
func Write(w http.ResponseWriter, d Detail) {
	b, err := json.Marshal(d)
	if err != nil {
		b = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		d.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	w.Write(append(b, '\n'))
}

// Error writes a problem with the given status and detail message.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Detail{Status: status, Detail: detail})
}

package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/saaskit/saaskit/internal/problem"
)

// DefaultMaxBodyBytes is the body limit of a [Receiver] whose MaxBodyBytes
// is zero.
const DefaultMaxBodyBytes = 1 << 20

// Outcomes reported to OnResult hooks, and statuses in responses.
const (
	OutcomeAccepted         = "accepted"           // new event stored
	OutcomeDuplicate        = "duplicate"          // event already stored
	OutcomeRejected         = "rejected"           // malformed event (400 or batch item)
	OutcomeFailed           = "failed"             // batch item the sink could not store
	OutcomeUnauthorized     = "unauthorized"       // verification failed (401)
	OutcomeTooLarge         = "too_large"          // body or batch over the limit (413)
	OutcomeMethodNotAllowed = "method_not_allowed" // not a POST (405)
	OutcomeUnknownSource    = "unknown_source"     // Resolve found no connection (404)
	OutcomeError            = "error"              // internal error (500)
)

// Response is the JSON body a [Receiver] answers with when it stores an
// event (202) or finds it already stored (200).
type Response struct {
	Status string `json:"status"` // OutcomeAccepted or OutcomeDuplicate
	ID     string `json:"id"`
}

// Receiver is an http.Handler that receives one webhook event per request.
//
// It accepts only POST (405 otherwise), reads at most MaxBodyBytes (413
// beyond), verifies the signature over the raw bytes (401 with the reason),
// parses the event (400 when malformed) and hands it to the Sink: 202
// {"status":"accepted","id":...} for a new event, 200
// {"status":"duplicate","id":...} for one already stored, 500 "internal
// error" (logged) when the sink fails, so that the sender retries. Errors are
// RFC 9457 problem+json.
//
// A Receiver must not be modified once it serves requests; it is safe for
// concurrent use.
type Receiver struct {
	// Provider names the sender; it becomes Event.Provider and the first
	// half of the idempotency key.
	Provider string
	// Verifier checks every request. Either Verifier or Resolve must be set;
	// with neither, every request fails with 500 (the receiver fails closed).
	Verifier Verifier
	// Resolve, when set, is called before the body is read and picks the
	// verifier for the request, for example from the integration connection
	// named in the URL. It returns the context for the rest of the request
	// (derived from r.Context(), or nil to keep it), which typically carries
	// the connection and its tenant. That context reaches the parser and the
	// sink only after the signature has been verified with the returned
	// verifier: the tenant must come from the connection, never from
	// unsigned data in the request. An error wrapping ErrUnknownSource
	// answers 404; other errors 500.
	Resolve func(r *http.Request) (Verifier, context.Context, error)
	// Parser reads the event's id, type and timestamp. Default: a
	// StandardWebhooksParser for a StandardWebhooks verifier, a
	// GitHubParser for a GitHub verifier, JSONParser{} otherwise.
	Parser Parser
	// Sink stores the events. Required.
	Sink Sink
	// MaxBodyBytes limits the body. Default DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// Logger receives verification failures (info) and internal errors
	// (error). Nil discards. Secrets and signatures are never logged.
	Logger *slog.Logger
	// OnResult, when set, is called once per request with the provider and
	// one of the Outcome constants, for metrics.
	OnResult func(provider, outcome string)
	// OnReject, when set, is called once per request refused with a 4xx
	// answer, after OnResult, with the outcome and the error behind it, so
	// that refusals can be counted by reason: for OutcomeUnauthorized the
	// verifier's error (errors.Is finds ErrSignatureMismatch,
	// ErrTimestampOutOfRange, ErrMissingHeader or ErrMalformedHeader), for
	// OutcomeUnknownSource Resolve's error, for OutcomeRejected the
	// parser's or sink's error (wrapping ErrMalformedEvent) or the read
	// error; for OutcomeTooLarge an *http.MaxBytesError or nil, for
	// OutcomeMethodNotAllowed nil. It must not write to the response.
	OnReject func(r *http.Request, provider, outcome string, err error)
	// Now returns the current time for Event.ReceivedAt. Default time.Now.
	Now func() time.Time
}

var _ http.Handler = (*Receiver)(nil)

// ServeHTTP implements http.Handler.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := front{
		provider: rc.Provider, verifier: rc.Verifier, resolve: rc.Resolve,
		maxBody: rc.MaxBodyBytes, logger: rc.Logger, onResult: rc.OnResult, onReject: rc.OnReject,
	}
	if f.maxBody <= 0 {
		f.maxBody = DefaultMaxBodyBytes
	}
	ctx, v, body, ok := f.receive(w, r)
	if !ok {
		return
	}
	if rc.Sink == nil {
		f.internal(ctx, w, "webhooks: receiver has no sink", nil)
		return
	}
	parsed, err := defaultParser(rc.Parser, v).Parse(r.Header, body)
	if err != nil {
		if errors.Is(err, ErrMalformedEvent) {
			f.failWith(ctx, w, http.StatusBadRequest, OutcomeRejected, reason(err), err)
			return
		}
		f.internal(ctx, w, "webhooks: parser failed", err)
		return
	}
	ev := &parsed
	ev.Provider = rc.Provider
	ev.Payload = json.RawMessage(body)
	ev.Headers = r.Header
	ev.ReceivedAt = now(rc.Now)
	dup, err := rc.Sink.Accept(ctx, ev)
	switch {
	case errors.Is(err, ErrMalformedEvent):
		f.failWith(ctx, w, http.StatusBadRequest, OutcomeRejected, reason(err), err)
	case errors.Is(err, ErrUnknownSource):
		// The source went away between its resolution and the store.
		f.failWith(ctx, w, http.StatusNotFound, OutcomeUnknownSource, "unknown webhook source", err)
	case err != nil:
		f.internal(ctx, w, "webhooks: sink failed", err, slog.String("event_id", ev.ID))
	case dup:
		f.result(OutcomeDuplicate)
		writeJSON(w, http.StatusOK, Response{Status: OutcomeDuplicate, ID: ev.ID})
	default:
		f.result(OutcomeAccepted)
		writeJSON(w, http.StatusAccepted, Response{Status: OutcomeAccepted, ID: ev.ID})
	}
}

// front holds the steps both receivers share: method, resolution, body,
// verification.
type front struct {
	provider string
	verifier Verifier
	resolve  func(*http.Request) (Verifier, context.Context, error)
	maxBody  int64
	logger   *slog.Logger
	onResult func(provider, outcome string)
	onReject func(r *http.Request, provider, outcome string, err error)
	req      *http.Request // set by receive
}

// receive runs the shared steps. When ok is false it has written the
// response. ctx is the context for the parser and the sink.
func (f *front) receive(w http.ResponseWriter, r *http.Request) (ctx context.Context, v Verifier, body []byte, ok bool) {
	ctx = r.Context()
	f.req = r
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		f.fail(ctx, w, http.StatusMethodNotAllowed, OutcomeMethodNotAllowed, "method "+r.Method+" not allowed; use POST")
		return nil, nil, nil, false
	}
	v = f.verifier
	resolved := ctx
	if f.resolve != nil {
		var rctx context.Context
		var err error
		v, rctx, err = f.resolve(r)
		switch {
		case errors.Is(err, ErrUnknownSource):
			f.failWith(ctx, w, http.StatusNotFound, OutcomeUnknownSource, "unknown webhook source", err)
			return nil, nil, nil, false
		case err != nil:
			f.internal(ctx, w, "webhooks: resolve failed", err)
			return nil, nil, nil, false
		}
		if rctx != nil {
			resolved = rctx
		}
	}
	if v == nil {
		f.internal(ctx, w, "webhooks: receiver has no verifier", nil)
		return nil, nil, nil, false
	}
	tooLarge := fmt.Sprintf("body larger than %d bytes", f.maxBody)
	if r.ContentLength > f.maxBody {
		f.fail(ctx, w, http.StatusRequestEntityTooLarge, OutcomeTooLarge, tooLarge)
		return nil, nil, nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			f.failWith(ctx, w, http.StatusRequestEntityTooLarge, OutcomeTooLarge, tooLarge, err)
		} else {
			f.failWith(ctx, w, http.StatusBadRequest, OutcomeRejected, "could not read body", err)
		}
		return nil, nil, nil, false
	}
	if err := v.Verify(r, body); err != nil {
		if msg, ok := verifyReason(err); ok {
			f.log(ctx, slog.LevelInfo, "webhooks: verification failed", slog.String("reason", msg))
			f.failWith(ctx, w, http.StatusUnauthorized, OutcomeUnauthorized, msg, err)
		} else {
			f.internal(ctx, w, "webhooks: verifier failed", err)
		}
		return nil, nil, nil, false
	}
	return resolved, v, body, true
}

// verifyReason reports whether err is a verification failure (rather than
// a configuration error) and the reason to give the sender.
func verifyReason(err error) (string, bool) {
	if ve, ok := errors.AsType[*VerifyError](err); ok && isVerifyFailure(ve.Err) {
		return ve.Reason(), true
	}
	for _, s := range []error{ErrMissingHeader, ErrMalformedHeader, ErrSignatureMismatch, ErrTimestampOutOfRange} {
		if errors.Is(err, s) {
			return reason(s), true
		}
	}
	return "", false
}

func isVerifyFailure(err error) bool {
	return errors.Is(err, ErrMissingHeader) || errors.Is(err, ErrMalformedHeader) ||
		errors.Is(err, ErrSignatureMismatch) || errors.Is(err, ErrTimestampOutOfRange)
}

// reason is an error message without the package prefix.
func reason(err error) string { return strings.TrimPrefix(err.Error(), "webhooks: ") }

func (f *front) result(outcome string) {
	if f.onResult != nil {
		f.onResult(f.provider, outcome)
	}
}

func (f *front) fail(ctx context.Context, w http.ResponseWriter, status int, outcome, detail string) {
	f.failWith(ctx, w, status, outcome, detail, nil)
}

// failWith is fail with the error behind a 4xx answer, for OnReject.
func (f *front) failWith(ctx context.Context, w http.ResponseWriter, status int, outcome, detail string, cause error) {
	f.result(outcome)
	if f.onReject != nil && f.req != nil && status >= 400 && status < 500 {
		f.onReject(f.req, f.provider, outcome, cause)
	}
	problem.Error(w, status, detail)
}

func (f *front) internal(ctx context.Context, w http.ResponseWriter, msg string, err error, attrs ...slog.Attr) {
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	f.log(ctx, slog.LevelError, msg, attrs...)
	f.fail(ctx, w, http.StatusInternalServerError, OutcomeError, "internal error")
}

func (f *front) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if f.logger == nil {
		return
	}
	attrs = append(attrs, slog.String("provider", f.provider))
	f.logger.LogAttrs(ctx, level, msg, attrs...)
}

func defaultParser(p Parser, v Verifier) Parser {
	if p != nil {
		return p
	}
	switch v.(type) {
	case StandardWebhooks, *StandardWebhooks:
		return StandardWebhooksParser()
	case GitHub, *GitHub:
		return GitHubParser()
	}
	return JSONParser{}
}

func now(f func() time.Time) time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem.Error(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

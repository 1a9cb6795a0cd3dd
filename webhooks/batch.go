package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Batch limits used when a [BatchReceiver]'s fields are zero.
const (
	DefaultMaxBatchBodyBytes = 10 << 20
	DefaultMaxBatchEvents    = 1000
)

// ItemResult is the outcome of one event of a batch.
type ItemResult struct {
	// Index is the event's position in the batch, from 0.
	Index int `json:"index"`
	// ID is the event id, when it could be read.
	ID string `json:"id,omitempty"`
	// Status is OutcomeAccepted, OutcomeDuplicate, OutcomeRejected (the
	// event is malformed: do not send it again) or OutcomeFailed (it could
	// not be stored: send it again).
	Status string `json:"status"`
	// Error says why an event was rejected or failed.
	Error string `json:"error,omitempty"`
}

// BatchResponse is the JSON body a [BatchReceiver] answers with (207).
type BatchResponse struct {
	Results    []ItemResult `json:"results"`
	Accepted   int          `json:"accepted"`
	Duplicates int          `json:"duplicates"`
	Rejected   int          `json:"rejected"`
	Failed     int          `json:"failed"`
}

// BatchReceiver is an http.Handler that receives many events in one
// request. The sender signs the whole body, so the signature is verified
// once over the raw bytes, exactly as [Receiver] does (same 405, 413, 401
// and 404 answers). The body is a JSON array of events or an object
// {"events": [...]}.
//
// Each event is then parsed and stored on its own: a malformed event is
// rejected with its reason without failing the others, and an id that
// appears twice in the batch is stored once and reported as a duplicate
// the second time. Events are stored through the sink's AcceptBatch when it
// is a [BatchSink] (one transaction for the batch), and through Accept per
// event otherwise. The answer is 207 Multi-Status with a [BatchResponse];
// 400 when the body is not a batch, 413 over MaxEvents, 500 when a
// BatchSink fails as a whole.
//
// A BatchReceiver must not be modified once it serves requests; it is safe
// for concurrent use.
type BatchReceiver struct {
	// Provider names the sender; it becomes Event.Provider.
	Provider string
	// Verifier checks every request; see Receiver.Verifier.
	Verifier Verifier
	// Resolve picks the verifier per request; see Receiver.Resolve.
	Resolve func(r *http.Request) (Verifier, context.Context, error)
	// Parser reads each event; it is called with nil headers, since the
	// request's headers describe the batch, so every event must carry its
	// own id and type. Default as for Receiver.
	Parser Parser
	// Sink stores the events. Required.
	Sink Sink
	// MaxBodyBytes limits the body. Default DefaultMaxBatchBodyBytes
	// (10 MiB).
	MaxBodyBytes int64
	// MaxEvents limits the number of events. Default DefaultMaxBatchEvents.
	MaxEvents int
	// Logger: see Receiver.Logger.
	Logger *slog.Logger
	// OnResult, when set, is called once per event with its outcome, or
	// once per request when the request fails as a whole.
	OnResult func(provider, outcome string)
	// OnReject: see Receiver.OnReject; it is also called once per event
	// of the batch rejected as malformed, with the parser's or sink's
	// error.
	OnReject func(r *http.Request, provider, outcome string, err error)
	// Now returns the current time for Event.ReceivedAt. Default time.Now.
	Now func() time.Time
}

var _ http.Handler = (*BatchReceiver)(nil)

// errNotBatch is the reason for a body that is not a batch.
var errNotBatch = errors.New("body is not a JSON array of events or an object with an events array")

// decodeBatch splits a batch body into its raw events.
func decodeBatch(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errNotBatch
	}
	switch trimmed[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, errNotBatch
		}
		return items, nil
	case '{':
		var wrapper struct {
			Events *[]json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(body, &wrapper); err != nil || wrapper.Events == nil {
			return nil, errNotBatch
		}
		return *wrapper.Events, nil
	}
	return nil, errNotBatch
}

// ServeHTTP implements http.Handler.
func (br *BatchReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := front{
		provider: br.Provider, verifier: br.Verifier, resolve: br.Resolve,
		maxBody: br.MaxBodyBytes, logger: br.Logger, onResult: br.OnResult, onReject: br.OnReject,
	}
	if f.maxBody <= 0 {
		f.maxBody = DefaultMaxBatchBodyBytes
	}
	maxEvents := br.MaxEvents
	if maxEvents <= 0 {
		maxEvents = DefaultMaxBatchEvents
	}
	ctx, v, body, ok := f.receive(w, r)
	if !ok {
		return
	}
	if br.Sink == nil {
		f.internal(ctx, w, "webhooks: batch receiver has no sink", nil)
		return
	}
	items, err := decodeBatch(body)
	if err != nil {
		f.failWith(ctx, w, http.StatusBadRequest, OutcomeRejected, err.Error(), fmt.Errorf("%w: %w", ErrMalformedEvent, err))
		return
	}
	if len(items) > maxEvents {
		f.fail(ctx, w, http.StatusRequestEntityTooLarge, OutcomeTooLarge,
			fmt.Sprintf("batch holds %d events; the limit is %d", len(items), maxEvents))
		return
	}
	parser := defaultParser(br.Parser, v)
	received := now(br.Now)
	results := make([]ItemResult, len(items))
	var pending []*Event
	var pendingIdx []int
	seen := make(map[string]bool, len(items))
	for i, raw := range items {
		res := &results[i]
		res.Index = i
		parsed, err := parser.Parse(nil, raw)
		if err != nil {
			res.Status = OutcomeRejected
			res.Error = reason(err)
			if !errors.Is(err, ErrMalformedEvent) {
				f.log(ctx, slog.LevelError, "webhooks: parser failed", slog.Int("index", i), slog.Any("error", err))
				res.Status, res.Error = OutcomeFailed, "internal error"
			} else {
				f.rejectItem(err)
			}
			continue
		}
		res.ID = parsed.ID
		if seen[parsed.ID] {
			res.Status = OutcomeDuplicate
			continue
		}
		seen[parsed.ID] = true
		ev := &parsed
		ev.Provider = br.Provider
		ev.Payload = raw
		ev.Headers = r.Header
		ev.ReceivedAt = received
		pending = append(pending, ev)
		pendingIdx = append(pendingIdx, i)
	}

	if bs, ok := br.Sink.(BatchSink); ok && len(pending) > 0 {
		sinkResults, err := bs.AcceptBatch(ctx, pending)
		if err == nil && len(sinkResults) != len(pending) {
			err = fmt.Errorf("webhooks: AcceptBatch returned %d results for %d events", len(sinkResults), len(pending))
		}
		if errors.Is(err, ErrUnknownSource) {
			f.failWith(ctx, w, http.StatusNotFound, OutcomeUnknownSource, "unknown webhook source", err)
			return
		}
		if err != nil {
			f.internal(ctx, w, "webhooks: batch sink failed", err, slog.Int("events", len(pending)))
			return
		}
		for j, sr := range sinkResults {
			f.itemResult(ctx, &results[pendingIdx[j]], sr.Duplicate, sr.Err)
		}
	} else {
		for j, ev := range pending {
			dup, err := br.Sink.Accept(ctx, ev)
			f.itemResult(ctx, &results[pendingIdx[j]], dup, err)
		}
	}

	resp := BatchResponse{Results: results}
	for _, res := range results {
		switch res.Status {
		case OutcomeAccepted:
			resp.Accepted++
		case OutcomeDuplicate:
			resp.Duplicates++
		case OutcomeRejected:
			resp.Rejected++
		case OutcomeFailed:
			resp.Failed++
		}
		f.result(res.Status)
	}
	writeJSON(w, http.StatusMultiStatus, resp)
}

// itemResult fills res from what the sink said about its event.
func (f *front) itemResult(ctx context.Context, res *ItemResult, dup bool, err error) {
	switch {
	case errors.Is(err, ErrMalformedEvent):
		res.Status, res.Error = OutcomeRejected, reason(err)
		f.rejectItem(err)
	case err != nil:
		f.log(ctx, slog.LevelError, "webhooks: sink failed", slog.String("event_id", res.ID), slog.Any("error", err))
		res.Status, res.Error = OutcomeFailed, "internal error"
	case dup:
		res.Status = OutcomeDuplicate
	default:
		res.Status = OutcomeAccepted
	}
}

// rejectItem reports one rejected event of a batch to OnReject.
func (f *front) rejectItem(err error) {
	if f.onReject != nil && f.req != nil {
		f.onReject(f.req, f.provider, OutcomeRejected, err)
	}
}

package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/webhooks"
	"github.com/saaskit/saaskit/webhooks/webhookstest"
)

func batchReceiver(sink webhooks.Sink, o *outcomes) *webhooks.BatchReceiver {
	br := &webhooks.BatchReceiver{
		Provider: "payments",
		Verifier: webhooks.Stripe{Secrets: []string{stripeKey}, Now: testClock},
		Sink:     sink,
		Now:      testClock,
	}
	if o != nil {
		br.OnResult = o.hook
	}
	return br
}

func decodeBatchResponse(t *testing.T, b []byte) webhooks.BatchResponse {
	t.Helper()
	var resp webhooks.BatchResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatalf("batch response %s: %v", b, err)
	}
	return resp
}

func TestBatchMixed(t *testing.T) {
	t.Parallel()
	body := []byte(`{"events":[
		{"id":"evt_1","type":"invoice.paid","created":1740830400},
		{"id":"evt_2"},
		"not an event",
		{"id":"evt_1","type":"invoice.paid"},
		{"id":"evt_old","type":"invoice.paid"},
		{"id":"evt_3","type":"invoice.failed","created":"bad"},
		{"id":"evt_4","type":"invoice.failed"}
	]}`)
	want := []webhooks.ItemResult{
		{Index: 0, ID: "evt_1", Status: "accepted"},
		{Index: 1, Status: "rejected", Error: "malformed event: missing type"},
		{Index: 2, Status: "rejected", Error: "malformed event: body is not a JSON object"},
		{Index: 3, ID: "evt_1", Status: "duplicate"},
		{Index: 4, ID: "evt_old", Status: "duplicate"},
		{Index: 5, Status: "rejected", Error: `malformed event: field "created" is not a time`},
		{Index: 6, ID: "evt_4", Status: "accepted"},
	}
	for _, mode := range []string{"BatchSink", "Accept per event"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			mem := &webhookstest.MemorySink{}
			mem.Accept(t.Context(), &webhooks.Event{Provider: "payments", ID: "evt_old"})
			// The sink must see each id of the batch once.
			var sinkIDs []string
			var sink webhooks.Sink = recordingBatchSink{mem, &sinkIDs}
			if mode != "BatchSink" {
				sink = webhooks.SinkFunc(func(ctx context.Context, ev *webhooks.Event) (bool, error) {
					sinkIDs = append(sinkIDs, ev.ID)
					return mem.Accept(ctx, ev)
				})
			}
			var o outcomes
			rec := serve(batchReceiver(sink, &o), stripeRequest(body))
			if rec.Code != http.StatusMultiStatus {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			resp := decodeBatchResponse(t, rec.Body.Bytes())
			if len(resp.Results) != len(want) {
				t.Fatalf("results %+v", resp.Results)
			}
			for i := range want {
				if resp.Results[i] != want[i] {
					t.Errorf("result %d = %+v, want %+v", i, resp.Results[i], want[i])
				}
			}
			if resp.Accepted != 2 || resp.Duplicates != 2 || resp.Rejected != 3 || resp.Failed != 0 {
				t.Fatalf("counts %+v", resp)
			}
			if strings.Join(sinkIDs, ",") != "evt_1,evt_old,evt_4" {
				t.Fatalf("sink saw ids %v, want each id once", sinkIDs)
			}
			if mem.Len() != 3 {
				t.Fatalf("%d events stored, want 3", mem.Len())
			}
			ev, _ := mem.Event("payments", "evt_1")
			var item map[string]any
			if err := json.Unmarshal(ev.Payload, &item); err != nil || item["id"] != "evt_1" || !bytes.Contains(body, ev.Payload) {
				t.Fatalf("payload %s is not the item's raw bytes", ev.Payload)
			}
			if o.get("payments/accepted") != 2 || o.get("payments/rejected") != 3 || o.get("payments/duplicate") != 2 {
				t.Fatalf("outcomes %v", o.m)
			}
		})
	}
}

// recordingBatchSink records the ids handed to AcceptBatch.
type recordingBatchSink struct {
	*webhookstest.MemorySink
	ids *[]string
}

func (s recordingBatchSink) AcceptBatch(ctx context.Context, evs []*webhooks.Event) ([]webhooks.BatchResult, error) {
	for _, ev := range evs {
		*s.ids = append(*s.ids, ev.ID)
	}
	return s.MemorySink.AcceptBatch(ctx, evs)
}

func TestBatchBareArray(t *testing.T) {
	t.Parallel()
	mem := &webhookstest.MemorySink{}
	body := []byte(` [{"id":1,"type":"a"},{"id":2,"type":"b"}]`)
	rec := serve(batchReceiver(mem, nil), stripeRequest(body))
	if rec.Code != http.StatusMultiStatus {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if resp := decodeBatchResponse(t, rec.Body.Bytes()); resp.Accepted != 2 {
		t.Fatalf("%+v", resp)
	}
	if _, ok := mem.Event("payments", "2"); !ok {
		t.Fatal("numeric id not stored as a string")
	}
}

func TestBatchRequestErrors(t *testing.T) {
	t.Parallel()
	many := "[" + strings.Repeat(`{"id":"x","type":"t"},`, 3) + `{"id":"y","type":"t"}]`
	for _, c := range []struct {
		name   string
		br     func(*webhooks.BatchReceiver)
		req    *http.Request
		status int
		detail string
	}{
		{"not a batch", nil, stripeRequest([]byte(`{"event":[]}`)), 400, "not a JSON array of events"},
		{"not JSON", nil, stripeRequest([]byte(`[{"id":`)), 400, "not a JSON array"},
		{"scalar", nil, stripeRequest([]byte(`42`)), 400, "not a JSON array"},
		{"too many events", func(br *webhooks.BatchReceiver) { br.MaxEvents = 3 }, stripeRequest([]byte(many)), 413, "batch holds 4 events; the limit is 3"},
		{"body too large", func(br *webhooks.BatchReceiver) { br.MaxBodyBytes = 10 }, stripeRequest([]byte(many)), 413, "body larger than 10 bytes"},
		{"bad signature", nil, webhookstest.NewRequest("/", []byte(many), webhookstest.SignStripe([]byte(many), testNow, "whsec_x")), 401, "signature mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := &webhookstest.MemorySink{}
			br := batchReceiver(mem, nil)
			if c.br != nil {
				c.br(br)
			}
			wantProblem(t, serve(br, c.req), c.status, c.detail)
			if mem.Len() != 0 {
				t.Fatal("events stored")
			}
		})
	}
}

// partialSink stores through a MemorySink but fails chosen ids.
type partialSink struct {
	*webhookstest.MemorySink
	fail map[string]error
}

func (s partialSink) Accept(ctx context.Context, ev *webhooks.Event) (bool, error) {
	if err := s.fail[ev.ID]; err != nil {
		return false, err
	}
	return s.MemorySink.Accept(ctx, ev)
}

func (s partialSink) AcceptBatch(ctx context.Context, evs []*webhooks.Event) ([]webhooks.BatchResult, error) {
	res := make([]webhooks.BatchResult, len(evs))
	for i, ev := range evs {
		res[i].Duplicate, res[i].Err = s.Accept(ctx, ev)
	}
	return res, nil
}

func TestBatchSinkFailures(t *testing.T) {
	t.Parallel()
	body := []byte(`[{"id":"a","type":"t"},{"id":"b","type":"t"},{"id":"c","type":"t"}]`)
	fail := map[string]error{
		"b": errors.New("deadlock detected"),
		"c": errors.Join(webhooks.ErrMalformedEvent, errors.New("unknown type t")),
	}
	for _, mode := range []string{"BatchSink", "Accept per event"} {
		t.Run(mode, func(t *testing.T) {
			mem := &webhookstest.MemorySink{}
			var sink webhooks.Sink = partialSink{mem, fail}
			if mode != "BatchSink" {
				sink = webhooks.SinkFunc(partialSink{mem, fail}.Accept)
			}
			rec := serve(batchReceiver(sink, nil), stripeRequest(body))
			resp := decodeBatchResponse(t, rec.Body.Bytes())
			if rec.Code != http.StatusMultiStatus || resp.Accepted != 1 || resp.Failed != 1 || resp.Rejected != 1 {
				t.Fatalf("status %d, %+v", rec.Code, resp)
			}
			if r := resp.Results[1]; r.Status != "failed" || r.Error != "internal error" {
				t.Fatalf("failed item %+v", r)
			}
			if r := resp.Results[2]; r.Status != "rejected" || !strings.Contains(r.Error, "unknown type t") {
				t.Fatalf("rejected item %+v", r)
			}
		})
	}

	// A BatchSink that fails as a whole fails the request.
	mem := &webhookstest.MemorySink{}
	mem.FailWith(errors.New("connection refused"))
	wantProblem(t, serve(batchReceiver(mem, nil), stripeRequest(body)), 500, "internal error")

	// So does one that breaks its contract.
	short := struct{ webhooks.BatchSink }{}
	short.BatchSink = shortSink{}
	wantProblem(t, serve(batchReceiver(short, nil), stripeRequest(body)), 500, "internal error")
}

type shortSink struct{}

func (shortSink) Accept(context.Context, *webhooks.Event) (bool, error) { return false, nil }
func (shortSink) AcceptBatch(context.Context, []*webhooks.Event) ([]webhooks.BatchResult, error) {
	return []webhooks.BatchResult{{}}, nil
}

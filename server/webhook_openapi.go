package server

import (
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/saaskit/saaskit/webhooks"
)

// webhookEventDoc is the body a provider sends: one event (its data is the
// provider's own).
type webhookEventDoc struct {
	ID   string         `json:"id" doc:"The provider's event id: the idempotency key, with the connection."`
	Type string         `json:"type" doc:"The event type, e.g. user.created or subscription.updated; unknown types are stored as skipped."`
	Data map[string]any `json:"data" doc:"The object the event is about."`
}

// documentWebhooks adds the webhook receivers to the OpenAPI document.
// They are plain handlers on the mux (the signature is verified on the raw
// body before anything is parsed), so huma documents them without serving
// them.
func documentWebhooks(api huma.API) {
	oapi := api.OpenAPI()
	reg := oapi.Components.Schemas
	event := reg.Schema(reflect.TypeFor[webhookEventDoc](), true, "WebhookEvent")
	batch := reg.Schema(reflect.TypeFor[webhooks.BatchResponse](), true, "WebhookBatchResponse")
	problem := reg.Schema(reflect.TypeFor[huma.ErrorModel](), true, "ErrorModel")
	names := providerNames()
	enum := make([]any, len(names))
	for i, n := range names {
		enum[i] = n
	}
	params := []*huma.Param{
		{Name: "provider", In: "path", Required: true, Schema: &huma.Schema{Type: "string", Enum: enum}},
		{Name: "connection", In: "path", Required: true, Description: "The connection's id: its secrets verify the signature, its tenant receives the event.",
			Schema: &huma.Schema{Type: "string", Format: "uuid"}},
		{Name: "webhook-id", In: "header", Required: true, Description: "Standard Webhooks message id.", Schema: &huma.Schema{Type: "string"}},
		{Name: "webhook-timestamp", In: "header", Required: true, Description: "Unix seconds; refused more than 5 minutes off.", Schema: &huma.Schema{Type: "string"}},
		{Name: "webhook-signature", In: "header", Required: true, Description: "Space-separated v1,<base64 HMAC-SHA256> signatures (several during a secret rotation).",
			Schema: &huma.Schema{Type: "string"}},
	}
	problemResp := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problem}}}
	}
	refusals := map[string]*huma.Response{
		"400": problemResp("Malformed body: not a JSON event, or no id or type."),
		"401": problemResp("Missing or bad signature, or a timestamp out of range."),
		"404": problemResp("Unknown provider or connection."),
		"413": problemResp("Body larger than the limit (1 MiB for one event, 10 MiB for a batch)."),
	}
	with := func(extra map[string]*huma.Response) map[string]*huma.Response {
		out := map[string]*huma.Response{}
		for k, v := range refusals {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "receive-webhook", Method: http.MethodPost, Path: "/api/integrations/webhooks/{provider}/{connection}/",
		Tags: []string{"integrations"}, Summary: "Receive one signed event from a provider",
		Description: "Verifies the Standard Webhooks signature on the raw body with the connection's secrets, stores the event " +
			"and queues its processing in one transaction, and answers 202 only after that commit. The same event id " +
			"again answers 200 and changes nothing.",
		Parameters:  params,
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"application/json": {Schema: event}}},
		Responses: with(map[string]*huma.Response{
			"202": {Description: "Stored; processed in the background."},
			"200": {Description: "A duplicate of an event already stored."},
		}),
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "receive-webhook-batch", Method: http.MethodPost, Path: "/api/integrations/webhooks/{provider}/{connection}/batch/",
		Tags: []string{"integrations"}, Summary: "Receive many signed events in one request",
		Description: "The signature covers the whole body: a JSON array of events, or {\"events\": [...]} (up to 1,000). " +
			"Each event is accepted, a duplicate, or rejected with its reason, without one bad event failing the rest; " +
			"the accepted ones are stored in one transaction before the answer.",
		Parameters: params,
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{"application/json": {
			Schema: &huma.Schema{Type: "array", Items: event}}}},
		Responses: with(map[string]*huma.Response{
			"207": {Description: "One result per event.", Content: map[string]*huma.MediaType{"application/json": {Schema: batch}}},
		}),
	})
}

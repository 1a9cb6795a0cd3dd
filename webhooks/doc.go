// Package webhooks receives inbound webhooks: it verifies their signatures,
// reads each event's id and type, and hands the raw event to a [Sink] that
// stores it idempotently, so that processing can happen later and retries by
// the sender are harmless.
//
// # Verifying
//
// A [Verifier] checks a request against its raw body. Four schemes are
// built in, each a struct whose zero value (plus secrets) is a safe
// default:
//
//   - [HMAC]: a plain HMAC of the body in one header, hex or base64, with an
//     optional prefix such as "sha256=" and an optional signed timestamp.
//   - [Stripe]: "Stripe-Signature: t=...,v1=..." over t + "." + body.
//   - [GitHub]: "X-Hub-Signature-256: sha256=..." over the body.
//   - [StandardWebhooks]: webhook-id, webhook-timestamp and webhook-signature
//     with "v1," (HMAC, whsec_ secrets) and "v1a," (Ed25519, whpk_ keys)
//     entries over id + "." + timestamp + "." + body.
//
// Every scheme compares in constant time (hmac.Equal), accepts several
// active secrets so that a secret can be rotated without dropping events
// (list them newest first; remove the old one once the sender has switched),
// and, where the scheme signs a timestamp, refuses one more than Tolerance
// (default [DefaultTolerance], five minutes) in the past or in the future.
// Failures are a [*VerifyError] wrapping [ErrMissingHeader],
// [ErrMalformedHeader], [ErrSignatureMismatch] or [ErrTimestampOutOfRange];
// the error names the header or check that failed and never the expected
// signature. Secrets never appear in String or log output.
//
// # Receiving
//
// [Receiver] is an http.Handler for one event per request:
//
//	http.Handle("POST /webhooks/stripe", &webhooks.Receiver{
//		Provider: "stripe",
//		Verifier: webhooks.Stripe{Secrets: []string{os.Getenv("STRIPE_WEBHOOK_SECRET")}},
//		Sink:     sink, // stores (provider, id) idempotently
//	})
//
// It answers 202 for a new event, 200 for a duplicate, and RFC 9457
// problem+json errors: 405 for a method other than POST, 413 over the body
// limit, 401 for a missing or wrong signature or a stale timestamp (with the
// reason), 400 for a body without an id or type, 500 when the sink fails (so
// that the sender retries). [BatchReceiver] takes many events in one signed
// request and answers 207 with one result per event; it stores them through
// a [BatchSink] in one call when the sink is one.
//
// A [Parser] reads the id, type and time; [JSONParser] is the default,
// configurable by field and header names ([StandardWebhooksParser],
// [GitHubParser]).
//
// # Tenants
//
// The tenant of an event is never taken from unsigned data. A server that
// serves several integration connections sets [Receiver.Resolve]: it finds
// the connection named by the URL, returns that connection's verifier and a
// context carrying the connection (and its tenant), and the receiver passes
// that context to the parser and the sink only after the signature has been
// verified with the connection's own secrets.
//
// The sibling package webhookstest signs requests for every scheme and
// provides an in-memory sink and a conformance suite for Sink
// implementations.
package webhooks

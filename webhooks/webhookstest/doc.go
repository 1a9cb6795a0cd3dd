// Package webhookstest helps test code that receives webhooks, as
// net/http/httptest helps test handlers.
//
// Sign helpers produce the headers of every scheme of package webhooks for a
// body at a given time ([SignHMAC], [SignStripe], [SignGitHub],
// [SignStandard]); [GenerateStandardSecret] and [GenerateEd25519] make keys
// in the Standard Webhooks encodings; [NewRequest] builds the request.
// [MemorySink] is an in-memory webhooks.BatchSink, and [RunSinkTests] checks
// that another Sink implementation (for example one over a database) keeps
// the contract the receivers rely on.
//
//	body := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
//	req := webhookstest.NewRequest("/webhooks/stripe", body,
//		webhookstest.SignStripe(body, time.Now(), "whsec_test"))
//	rec := httptest.NewRecorder()
//	receiver.ServeHTTP(rec, req) // 202
package webhookstest

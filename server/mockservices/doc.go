// Package mockservices runs stand-ins for the external services the server
// integrates with: a user directory ([UserService]) and a billing service
// ([PaymentService]). Each is an http.Handler with its state in memory, a
// REST API to list and change that state, a [Sender] that posts every
// change to the platform as a signed webhook (Standard Webhooks, the scheme
// the server's user-service and payment-service providers verify), and
// [Faults] injected into its API and its webhooks: errors, added latency,
// 429 with Retry-After, requests that hang until the caller gives up, and
// webhooks that are never sent.
//
// The shortest real use:
//
//	users := mockservices.NewUserService(mockservices.Config{
//		Webhook: mockservices.Webhook{URL: "http://localhost:8080/api/integrations/webhooks/user-service/<connection id>/", Secret: "whsec_..."},
//	})
//	http.ListenAndServe(":9101", users)
//
// # User service
//
//	GET    /v1/users?limit=50&cursor=...   a page of users, oldest first: {"data": [...], "next_cursor": "..."}
//	POST   /v1/users                       create {"email", "full_name", "role", "active"}  -> user.created
//	GET    /v1/users/{id}
//	PATCH  /v1/users/{id}                  change any of those fields                       -> user.updated
//	DELETE /v1/users/{id}                                                                   -> user.deleted
//
// # Payment service
//
//	GET    /v1/subscriptions?limit=&cursor=
//	POST   /v1/subscriptions               create {"plan", "status"}                        -> subscription.created
//	GET    /v1/subscriptions/{id}
//	PATCH  /v1/subscriptions/{id}          change plan or status                            -> subscription.updated
//	POST   /v1/subscriptions/{id}/cancel                                                    -> subscription.canceled
//	GET    /v1/payments?limit=&cursor=
//	POST   /v1/payments                    {"subscription", "status": "succeeded"|"failed"} -> payment.succeeded or payment.failed
//
// Both answer GET /v1/health, and GET or PUT /admin/faults reads or sets
// the [Faults] (the admin paths and the health check are never faulted,
// except by Faults.Down, which takes the whole API down).
//
// Every object carries updated_at, strictly increasing, so that the
// receiver can order events; webhook bodies are
// {"id", "type", "timestamp", "data"} with the object as data.
//
// Randomness (which request fails, event ids) comes from a source seeded
// by Config.Seed, so a test that sets it sees the same faults every run.
package mockservices

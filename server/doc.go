// Package server is the reference server: the SDK's packages composed into
// one http.Handler (huma v2 on net/http) over one database, SQLite or
// Postgres. The saaskit command runs it:
//
//	srv, err := server.New(ctx, cfg, server.Options{})
//	if err != nil { ... }
//	defer srv.Close()
//	err = srv.Run(ctx)
//
// [Config] holds every setting (SAASKIT_* variables, see .env.example);
// [Migrate] runs every package's migrations; [Server.Handler] serves the API
// described at /api/openapi.json.
//
// # Audit log
//
// Every data modification records an audit event (package audit) in the
// transaction of the change, so that a change without its event, or an
// event without its change, never commits: registration (user.created,
// tenant.created, member.created), tenant updates and deletion, member
// creation (one member.created event carrying the identity's fields and
// whether it is new), role changes (member.role_changed), other member
// changes (member.updated), removal (member.removed), profile changes
// (user.updated; user.password_changed, which holds no password or hash)
// and superuser grants (user.superadmin_granted, in the platform chain,
// tenant uuid.Nil). Security events are recorded too: auth.login_succeeded
// with the refresh token it issues; auth.login_failed in a transaction of
// its own, in the chain of the user's tenant, or of the platform for an
// unknown address, which is not recorded (it is often a password typed
// into the wrong field); auth.refresh_reuse_detected with the revocation of
// the token family. The actor comes from the access token; the request id,
// client IP (forwarding headers believed only from SAASKIT_TRUSTED_PROXIES)
// and user agent from a middleware.
//
// GET /api/audit/logs/ lists a tenant's events, newest first, with filters
// and a seq cursor; GET /api/audit/verify/ walks its hash chain. Admins and
// owners read their tenant; superadmins any tenant and the platform chain
// (tenant=00000000-0000-0000-0000-000000000000). Every
// SAASKIT_AUDIT_CHECKPOINT_INTERVAL the server signs a checkpoint (a Merkle
// tree head, sumdb/note) of every chain with new events; "saaskit audit
// export" writes a tenant's events with inclusion proofs and "saaskit audit
// verify" checks such a file offline with the verifier key alone. The
// signer key is SAASKIT_AUDIT_SIGNING_KEY; without it one is generated on
// first start and kept in the database, which is convenient but means that
// whoever can write the database can also sign: set your own key in
// production. On Postgres the application role may insert into the audit
// tables but not update, delete or truncate them ([Migrate] revokes it).
//
// # Rate limits
//
// Three scopes apply to the API, each "N/duration[,burst]" or 0 for none:
// auth (register, login, token) per client IP and, in the handler, per
// email; api (authenticated requests) per user and tenant, with per-plan
// quotas from SAASKIT_RATE_LIMIT_PLANS; anon (other public requests and
// requests whose token does not verify) per client IP. Answers carry the
// RateLimit-Policy and RateLimit fields; a refusal is 429 problem+json with
// Retry-After. Limits live in memory, or in Redis (SAASKIT_REDIS_URL) to be
// shared by every replica. When Redis is unreachable the api and anon
// scopes fail open (logged, counted in saaskit_ratelimit_errors_total) and
// the auth scope fails closed with 503, so that an outage does not open the
// door to password guessing. Refusals are counted in
// saaskit_ratelimit_refused_total. Health, metrics and JWKS are not limited.
package server

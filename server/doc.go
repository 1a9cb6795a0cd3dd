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
//
// # Webhooks and jobs
//
// An integration connection (POST /api/integrations/connections/, admins)
// maps an account of a provider (user-service, payment-service; GET
// /api/integrations/providers/) to the tenant and holds its Standard
// Webhooks signing secrets: the answer that creates or rotates one shows the
// new secret once, and a rotation keeps the previous secret verifying until
// retire_previous drops it. Events arrive at
// POST /api/integrations/webhooks/{provider}/{connection_id}/ (and .../batch/
// for many): the connection named in the URL gives the secrets, and its
// tenant becomes the event's only after the signature verifies. Receiving is
// one transaction: the event is inserted into webhook_events (unique per
// connection and event id: 202 when new, 200 for a duplicate) together with
// its River job, so that an accepted event is processed even if the process
// dies the next instant; no request is answered before that commit.
// Concurrent single events of a tenant share one transaction (group commit;
// on Postgres two such transactions are in flight at once), and a batch
// request is one transaction. Each transaction queues one job for its events
// (up to 100 a job): River's cost is per job, not per event. River's tables
// are migrated by [Migrate].
//
// Workers run inside serve (SAASKIT_WORKERS=off turns them off there) and in
// "saaskit worker", so that receivers and workers scale apart. A worker
// applies a job's events in one transaction, each with its effect, its audit
// event (actor integration:<provider>) and its new status: processed, or
// skipped for a type the provider does not handle. It reads what the events
// need (their links, users and memberships) with a few queries for the whole
// job, applies the events one after the other on what it read, each seeing
// the ones before it, and writes each table with one statement (the audit
// events with [audit.Store.RecordMany]): about ten statements for a hundred
// events instead of seven hundred. When one event fails, or a write does,
// the transaction is undone and run again with a savepoint and a statement
// for each read and write of each event, so that only the failing event's
// work is undone; it is marked with its error and retried by a job of its
// own. Each external object keeps the
// newest version applied (its updated_at, else the event's time), so that an
// older event arriving late changes nothing and a replay is idempotent.
// Its failed attempts are retried with exponential backoff and jitter
// (SAASKIT_WEBHOOK_RETRY_BASE doubling up to SAASKIT_WEBHOOK_RETRY_MAX) up to
// SAASKIT_WEBHOOK_MAX_ATTEMPTS; then the event is failed with its last error
// (the dead letter) until POST /api/integrations/events/{id}/replay/
// enqueues it again. GET /api/integrations/events/ lists them (filters
// status, provider, type, received_after/before; cursor pages).
//
// # Integration health and reconciliation
//
// Each process tracks its outbound calls to the providers named in
// SAASKIT_INTEGRATION_URLS (breaker state, error rate, latency) for GET
// /api/integrations/health/ and /metrics. The active schedule is River's:
// the leader elected among the processes that run workers inserts a health
// check job every SAASKIT_INTEGRATION_CHECK_INTERVAL and a reconciliation
// schedule job every SAASKIT_RECONCILE_INTERVAL, which inserts one
// reconcile job per connection, unique per connection while it waits or
// runs. So with several replicas the work is done once, by whichever worker
// takes the job. There is no other schedule: a process with SAASKIT_WORKERS=off
// schedules nothing, and the checks and reconciliations run in the processes
// that work jobs ("saaskit worker" or serve with workers on), as webhooks
// do. POST /api/integrations/connections/{id}/reconcile/ reconciles at
// once and answers the report; a reconciliation, by job or by hand, holds
// the connection's lease row in the database (integration_reconcile_leases,
// taken in one atomic upsert, released at the end or expired after ten
// minutes), so that a second one anywhere answers 409 Conflict instead of
// running at the same time.
package server

// Package saaskit is an embeddable SDK for multi-tenant SaaS backends and the
// home of a reference server that composes it into a complete platform.
//
// The root package holds no code; it is the map. Import the packages you need:
//
//   - [github.com/saaskit/saaskit/tenancy]: tenant context, resolvers, HTTP
//     middleware, Bun hooks that scope every query on tenant-owned models,
//     a guard for raw SQL, and Postgres row-level security.
//   - [github.com/saaskit/saaskit/authn]: roles and principals, argon2id
//     passwords, JWT access tokens (go-jose) with key rotation and JWKS,
//     rotating refresh-token families, Bearer middleware and Require(role).
//   - [github.com/saaskit/saaskit/authn/authntest]: tokens and keys for tests.
//   - [github.com/saaskit/saaskit/audit]: an append-only, hash-chained audit
//     log with signed checkpoints.
//   - [github.com/saaskit/saaskit/ratelimit]: the Limiter interface, an
//     in-memory limiter and HTTP middleware; ratelimit/redislimit shares
//     limits across replicas through Redis.
//   - [github.com/saaskit/saaskit/webhooks]: inbound webhook signature
//     schemes and an idempotent receiver.
//   - [github.com/saaskit/saaskit/server]: the reference server; its binary is
//     server/cmd/saaskit.
//
// Each package's documentation starts with the shortest real use.
package saaskit

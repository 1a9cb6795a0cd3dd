// Package authn authenticates the callers of a multi-tenant service and
// checks what they may do: principals and roles, password hashing, signing
// keys and JWKS, access tokens, HTTP middleware and refresh tokens.
//
// # Access tokens
//
// A [KeySet] holds signing keys (Ed25519 by default; ES256 and RS256 too),
// an [Issuer] signs short-lived JWT access tokens with its newest active key,
// and a [Verifier] checks them and returns the [Principal]:
//
//	ks := authn.NewKeySet(authn.KeySetConfig{})
//	ks.Rotate(time.Now()) // first active key, and the next one
//	iss := &authn.Issuer{Keys: ks, Issuer: "https://auth.example.com", Audience: "https://api.example.com"}
//	tok, _, err := iss.Issue(ctx, authn.Claims{Subject: userID, TenantID: tenantID, Role: authn.RoleAdmin})
//
//	v := &authn.Verifier{Keys: ks, Issuer: iss.Issuer, Audience: iss.Audience, Cache: authn.NewTokenCache(0)}
//	mux.Handle("GET /.well-known/jwks.json", authn.JWKSHandler(ks, 5*time.Minute))
//	mux.Handle("/api/", authn.Middleware(v)(authn.Require(authn.RoleUser)(api)))
//
// Tokens carry the JWT header typ "at+jwt" (RFC 9068) and kid, and the claims
// iss, aud, sub (user id), exp, nbf, iat, jti, tid (tenant id), role, and sa
// (true for a superadmin). Verification pins the algorithms to asymmetric
// ones and to the algorithm of the key the kid names (no none, no HMAC, no
// key confusion), requires the typ, iss, aud and exp, and allows a small
// leeway on times. go-jose makes and signs the tokens and handles the JWKs;
// the verifier reads the compact serialisation itself (one pass over the
// token, one JSON decode of the header, the signature checked over the
// token's own prefix with crypto/ed25519, crypto/ecdsa or crypto/rsa), which
// keeps an uncached verification close to the cost of the bare signature
// check. The cache keys verified tokens by their SHA-256 and never
// serves one past its exp; an optional [Verifier.Revoked] hook sees every
// principal, cached or not.
//
// # Key rotation
//
// Keys are next (published, not signing), active (the newest signs) or
// retired (published, not signing, until every token they signed has
// expired). [KeySet.Rotate] promotes the next key, retires the active one and
// generates a new next key; [KeySet.Prune] drops retired keys after the
// longest token lifetime. The JWKS therefore lists a key before it signs and
// after it stops, and clients that cache it for its max-age never meet an
// unknown kid. Persist a key set with its MarshalJSON / UnmarshalJSON.
//
// # Roles
//
// A member's [Role] in a tenant is [RoleUser] < [RoleAdmin] < [RoleOwner].
// [Require] (middleware) and [Authorize] (in a handler) check it; the
// platform superadmin flag is checked by [RequireSuperadmin] and does not
// stand in for a tenant role.
//
// # Passwords
//
// [Hasher] hashes with argon2id into PHC strings, verifies in constant time,
// says when a stored hash needs an upgrade, bounds how many hashes run at
// once, and offers [Hasher.VerifyDummy] for unknown accounts so that timing
// does not reveal them. [ValidatePassword] applies a [PasswordPolicy]: a
// minimum length and a list of common passwords, no composition rules.
//
// # Refresh tokens
//
// [RefreshStore] issues opaque refresh tokens ("skr_" and 32 random bytes),
// stores their SHA-256 in the refresh_tokens table ([Migrate] creates it),
// rotates them on every use within a family, and revokes the whole family
// when a rotated token is presented again after a short grace. Every method
// takes a bun.IDB so that it runs in the caller's transaction.
//
// Package authntest mints valid and deliberately invalid tokens for tests.
package authn

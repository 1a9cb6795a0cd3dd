package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrNoSigningKey is returned by [Issuer.Issue] when the key set has no active
// key.
var ErrNoSigningKey = errors.New("authn: no active signing key")

// ErrUnsupportedAlgorithm is returned for a signature algorithm other than
// EdDSA (Ed25519), ES256 and RS256.
var ErrUnsupportedAlgorithm = errors.New("authn: unsupported signature algorithm")

// KeyState is where a key is in its life: [KeyNext], [KeyActive] or
// [KeyRetired].
type KeyState string

// Key states.
const (
	// KeyNext keys are published in the JWKS but do not sign yet, so that
	// clients caching the JWKS know them before the first token they sign.
	KeyNext KeyState = "next"
	// KeyActive keys may sign; the newest active key signs new tokens.
	KeyActive KeyState = "active"
	// KeyRetired keys no longer sign but stay published, and keep verifying,
	// until every token they signed has expired.
	KeyRetired KeyState = "retired"
)

// Supported algorithms, in order of preference.
var supportedAlgorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}

// Key is one signing key of a [KeySet]: its private JWK, its kid (the RFC 7638
// SHA-256 thumbprint, base64url) and its life-cycle state. A Key is immutable
// once added to a key set; the set replaces it to change its state. Its
// String and LogValue never show the private key.
type Key struct {
	// ID is the key's kid.
	ID string
	// Algorithm is the key's signature algorithm.
	Algorithm jose.SignatureAlgorithm
	// State is the key's life-cycle state; [KeySet.Add] takes an empty state
	// as [KeyActive].
	State KeyState
	// CreatedAt is when the key was generated.
	CreatedAt time.Time
	// ActivatedAt is when the key started signing; zero while next.
	ActivatedAt time.Time
	// RetiredAt is when the key stopped signing; zero unless retired.
	RetiredAt time.Time

	private jose.JSONWebKey
	public  *jose.JSONWebKey
	signer  jose.Signer // typ at+jwt
}

// GenerateKey creates a new key for alg: jose.EdDSA (Ed25519, the default when
// alg is empty), jose.ES256 (P-256) or jose.RS256 (RSA 2048). The key's state
// is empty (active once added) and its CreatedAt is now.
func GenerateKey(alg jose.SignatureAlgorithm) (*Key, error) {
	if alg == "" {
		alg = jose.EdDSA
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if err != nil {
		return nil, fmt.Errorf("authn: generate %s key: %w", alg, err)
	}
	return newKey(jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}, time.Now())
}

// newKey completes a private JWK: it checks the key type against the
// algorithm, computes the kid and prepares the public JWK and the signer.
func newKey(jwk jose.JSONWebKey, created time.Time) (*Key, error) {
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	ok := false
	switch k := jwk.Key.(type) {
	case ed25519.PrivateKey:
		ok = alg == jose.EdDSA && len(k) == ed25519.PrivateKeySize
	case *ecdsa.PrivateKey:
		ok = alg == jose.ES256 && k.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		ok = alg == jose.RS256 && k.N.BitLen() >= 2048
	}
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T for %q", ErrUnsupportedAlgorithm, jwk.Key, alg)
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("authn: key thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	jwk.Use = "sig"
	pub := jwk.Public()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk},
		(&jose.SignerOptions{}).WithType(AccessTokenType))
	if err != nil {
		return nil, fmt.Errorf("authn: signer: %w", err)
	}
	return &Key{
		ID:        jwk.KeyID,
		Algorithm: alg,
		CreatedAt: created,
		private:   jwk,
		public:    &pub,
		signer:    signer,
	}, nil
}

// PublicJWK returns the key's public JWK (kid, alg, use "sig").
func (k *Key) PublicJWK() jose.JSONWebKey { return *k.public }

// PrivateJWK returns the key's private JWK. Handle it as a secret.
func (k *Key) PrivateJWK() jose.JSONWebKey { return k.private }

// String describes the key without its private part.
func (k *Key) String() string { return fmt.Sprintf("%s key %s (%s)", k.Algorithm, k.ID, k.State) }

// LogValue describes the key without its private part.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", string(k.Algorithm)), slog.String("state", string(k.State)))
}

func (k *Key) with(state KeyState, at time.Time) *Key {
	c := *k
	c.State = state
	switch state {
	case KeyActive:
		c.ActivatedAt = at
	case KeyRetired:
		c.RetiredAt = at
	}
	return &c
}

// KeySetConfig configures a [KeySet]. The zero value is the default.
type KeySetConfig struct {
	// Algorithm is the algorithm of the keys Rotate generates; default
	// jose.EdDSA.
	Algorithm jose.SignatureAlgorithm
	// MaxTokenTTL is the longest lifetime of a token signed by the set's keys:
	// a retired key stays published for MaxTokenTTL+Leeway after it stopped
	// signing, then Prune drops it. Default 15 minutes (the default
	// [Issuer.TTL]); an [Issuer] refuses a longer TTL.
	MaxTokenTTL time.Duration
	// Leeway is the clock skew verifiers allow; default 30 seconds.
	Leeway time.Duration
	// Now returns the current time; default time.Now. Add uses it for keys
	// that carry no time.
	Now func() time.Time
}

// DefaultTokenTTL is the default lifetime of an access token.
const DefaultTokenTTL = 15 * time.Minute

// DefaultLeeway is the default clock skew allowed when verifying.
const DefaultLeeway = 30 * time.Second

// KeySet holds the signing keys of an issuer: the newest active key signs,
// every key is published in the JWKS and verifies tokens, and [KeySet.Rotate]
// and [KeySet.Prune] move keys through their life. It is safe for concurrent
// use: readers (signing, verifying, serving the JWKS) never block on a
// rotation.
//
// Persist a key set with [KeySet.MarshalJSON] and restore it with
// [KeySet.UnmarshalJSON]; the JSON holds private keys.
type KeySet struct {
	cfg  KeySetConfig
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[keySnapshot]
}

// keySnapshot is an immutable view of a key set.
type keySnapshot struct {
	keys    []*Key // active (newest first), next, retired
	byKID   map[string]*Key
	signing *Key
	jwks    jose.JSONWebKeySet
	json    []byte
	etag    string
}

// NewKeySet returns an empty key set. The zero KeySet is an empty key set
// with the default configuration. Add keys with [KeySet.Add] or generate
// the first ones with [KeySet.Rotate].
func NewKeySet(cfg KeySetConfig) *KeySet {
	ks := &KeySet{cfg: cfg.withDefaults()}
	ks.snap.Store(buildSnapshot(nil))
	return ks
}

func (cfg KeySetConfig) withDefaults() KeySetConfig {
	if cfg.Algorithm == "" {
		cfg.Algorithm = jose.EdDSA
	}
	if cfg.MaxTokenTTL <= 0 {
		cfg.MaxTokenTTL = DefaultTokenTTL
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Config returns the key set's configuration with defaults filled in.
func (ks *KeySet) Config() KeySetConfig { return ks.config() }

// config returns the configuration with defaults; a zero KeySet has them all.
func (ks *KeySet) config() KeySetConfig { return ks.cfg.withDefaults() }

func buildSnapshot(keys []*Key) *keySnapshot {
	rank := map[KeyState]int{KeyActive: 0, KeyNext: 1, KeyRetired: 2}
	keys = slices.Clone(keys)
	slices.SortStableFunc(keys, func(a, b *Key) int {
		if d := rank[a.State] - rank[b.State]; d != 0 {
			return d
		}
		if c := b.ActivatedAt.Compare(a.ActivatedAt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	s := &keySnapshot{keys: keys, byKID: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		s.byKID[k.ID] = k
		if k.State == KeyActive && s.signing == nil {
			s.signing = k
		}
		s.jwks.Keys = append(s.jwks.Keys, *k.public)
	}
	if s.jwks.Keys == nil {
		s.jwks.Keys = []jose.JSONWebKey{}
	}
	b, err := json.Marshal(s.jwks)
	if err != nil {
		// Keys are validated when they enter the set; a public JWK always
		// marshals.
		panic("authn: marshal JWKS: " + err.Error())
	}
	s.json = b
	sum := sha256.Sum256(b)
	s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
	return s
}

var emptySnapshot = buildSnapshot(nil)

// load returns the current snapshot; a zero KeySet is empty.
func (ks *KeySet) load() *keySnapshot {
	if s := ks.snap.Load(); s != nil {
		return s
	}
	return emptySnapshot
}

func (ks *KeySet) update(fn func(keys []*Key) ([]*Key, error)) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	keys, err := fn(slices.Clone(ks.load().keys))
	if err != nil {
		return err
	}
	ks.snap.Store(buildSnapshot(keys))
	return nil
}

// Add adds k to the set. An empty k.State is taken as [KeyActive], and a
// missing ActivatedAt or RetiredAt for that state is set to now. Adding a kid
// that is already in the set replaces that key.
func (ks *KeySet) Add(k *Key) error {
	if k == nil || k.public == nil {
		return errors.New("authn: add: key not made by GenerateKey or a key set")
	}
	now := ks.config().Now()
	c := *k
	if c.State == "" {
		c.State = KeyActive
	}
	switch c.State {
	case KeyActive:
		if c.ActivatedAt.IsZero() {
			c.ActivatedAt = now
		}
	case KeyRetired:
		if c.RetiredAt.IsZero() {
			c.RetiredAt = now
		}
	case KeyNext:
	default:
		return fmt.Errorf("authn: add: unknown key state %q", c.State)
	}
	return ks.update(func(keys []*Key) ([]*Key, error) {
		keys = slices.DeleteFunc(keys, func(o *Key) bool { return o.ID == c.ID })
		return append(keys, &c), nil
	})
}

// Rotate moves the set one step: the newest next key becomes active (a fresh
// key when there is none), every previously active key is retired, and a new
// next key is generated. On an empty set it creates the first active key and
// its successor.
//
// Clients cache the JWKS for the max-age [JWKSHandler] sends: call Rotate no
// sooner than that after the previous Rotate, so that the next key has been
// published long enough before it signs.
func (ks *KeySet) Rotate(now time.Time) error {
	fresh, err := GenerateKey(ks.config().Algorithm)
	if err != nil {
		return err
	}
	fresh.CreatedAt = now
	return ks.update(func(keys []*Key) ([]*Key, error) {
		var promote *Key
		for _, k := range keys {
			if k.State == KeyNext && (promote == nil || k.CreatedAt.After(promote.CreatedAt)) {
				promote = k
			}
		}
		var extra *Key
		if promote == nil {
			var err error
			if promote, err = GenerateKey(ks.config().Algorithm); err != nil {
				return nil, err
			}
			promote.CreatedAt = now
			extra = promote
		}
		for i, k := range keys {
			switch {
			case k == promote:
				keys[i] = k.with(KeyActive, now)
			case k.State == KeyActive:
				keys[i] = k.with(KeyRetired, now)
			}
		}
		if extra != nil {
			keys = append(keys, extra.with(KeyActive, now))
		}
		return append(keys, fresh.with(KeyNext, now)), nil
	})
}

// Prune drops retired keys whose tokens have all expired: those retired more
// than MaxTokenTTL+Leeway before now. It returns the kids it dropped.
func (ks *KeySet) Prune(now time.Time) []string {
	var dropped []string
	cutoff := now.Add(-ks.config().MaxTokenTTL - ks.config().Leeway)
	_ = ks.update(func(keys []*Key) ([]*Key, error) {
		return slices.DeleteFunc(keys, func(k *Key) bool {
			if k.State == KeyRetired && k.RetiredAt.Before(cutoff) {
				dropped = append(dropped, k.ID)
				return true
			}
			return false
		}), nil
	})
	return dropped
}

// Remove drops the key with the given kid at once, whatever its state: use it
// for a compromised key. Tokens it signed stop verifying.
func (ks *KeySet) Remove(kid string) bool {
	found := false
	_ = ks.update(func(keys []*Key) ([]*Key, error) {
		return slices.DeleteFunc(keys, func(k *Key) bool {
			found = found || k.ID == kid
			return k.ID == kid
		}), nil
	})
	return found
}

// Keys returns the set's keys: active ones newest first, then next, then
// retired.
func (ks *KeySet) Keys() []*Key { return slices.Clone(ks.load().keys) }

// SigningKey returns the key that signs new tokens: the newest active one.
func (ks *KeySet) SigningKey() (*Key, bool) {
	k := ks.load().signing
	return k, k != nil
}

// JWKS returns the public keys of every key in the set.
func (ks *KeySet) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: slices.Clone(ks.load().jwks.Keys)}
}

// PublicKey returns the public JWK with the given kid, or an error wrapping
// [ErrUnknownKey]. It makes *KeySet a [KeySource].
func (ks *KeySet) PublicKey(_ context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, ok := ks.load().byKID[kid]; ok {
		return k.public, nil
	}
	return nil, ErrUnknownKey
}

type keyJSON struct {
	State       KeyState        `json:"state"`
	CreatedAt   time.Time       `json:"created_at"`
	ActivatedAt *time.Time      `json:"activated_at,omitempty"`
	RetiredAt   *time.Time      `json:"retired_at,omitempty"`
	JWK         jose.JSONWebKey `json:"jwk"`
}

type keySetJSON struct {
	Keys []keyJSON `json:"keys"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// MarshalJSON encodes every key with its state, times and private JWK, for
// storage. The result is secret.
func (ks *KeySet) MarshalJSON() ([]byte, error) {
	var out keySetJSON
	out.Keys = []keyJSON{}
	for _, k := range ks.load().keys {
		out.Keys = append(out.Keys, keyJSON{
			State: k.State, CreatedAt: k.CreatedAt,
			ActivatedAt: timePtr(k.ActivatedAt), RetiredAt: timePtr(k.RetiredAt),
			JWK: k.private,
		})
	}
	return json.Marshal(out)
}

// UnmarshalJSON replaces the set's keys with those encoded by
// [KeySet.MarshalJSON]. The kid of each key is recomputed from the key. A
// zero KeySet has the default configuration.
func (ks *KeySet) UnmarshalJSON(b []byte) error {
	var in keySetJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("authn: decode key set: %w", err)
	}
	keys := make([]*Key, 0, len(in.Keys))
	for i, kj := range in.Keys {
		if kj.JWK.IsPublic() {
			return fmt.Errorf("authn: decode key set: key %d is not a private key", i)
		}
		k, err := newKey(kj.JWK, kj.CreatedAt)
		if err != nil {
			return fmt.Errorf("authn: decode key set: key %d: %w", i, err)
		}
		switch kj.State {
		case KeyNext, KeyActive, KeyRetired:
		default:
			return fmt.Errorf("authn: decode key set: key %d: unknown state %q", i, kj.State)
		}
		k.State = kj.State
		if kj.ActivatedAt != nil {
			k.ActivatedAt = *kj.ActivatedAt
		}
		if kj.RetiredAt != nil {
			k.RetiredAt = *kj.RetiredAt
		}
		keys = append(keys, k)
	}
	return ks.update(func([]*Key) ([]*Key, error) { return keys, nil })
}

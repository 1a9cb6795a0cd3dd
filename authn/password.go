package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Errors returned by [Hasher].
var (
	// ErrPasswordMismatch means the password does not match the hash.
	ErrPasswordMismatch = errors.New("authn: password mismatch")
	// ErrMalformedHash means a stored hash is not an argon2id PHC string this
	// package accepts.
	ErrMalformedHash = errors.New("authn: malformed password hash")
)

// Default argon2id parameters: OWASP's recommendation of 19 MiB, two passes and
// one lane, with a 16-byte salt and a 32-byte key.
const (
	DefaultMemory      = 19456 // KiB
	DefaultIterations  = 2
	DefaultParallelism = 1
	DefaultSaltLen     = 16
	DefaultKeyLen      = 32
)

// Limits on parameters read from a stored hash, so that a corrupt or hostile
// row cannot make Verify allocate gigabytes or spin for minutes.
const (
	maxMemory      = 1 << 20 // 1 GiB in KiB
	maxIterations  = 64
	maxParallelism = 64
	maxSaltLen     = 64
	maxKeyLen      = 128
)

// Params are argon2id cost parameters. A zero field takes its default:
// [DefaultMemory] KiB, [DefaultIterations], [DefaultParallelism],
// [DefaultSaltLen] and [DefaultKeyLen] bytes.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the number of passes.
	Iterations uint32
	// Parallelism is the number of lanes.
	Parallelism uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key in bytes.
	KeyLen uint32
}

func (p Params) withDefaults() Params {
	if p.Memory == 0 {
		p.Memory = DefaultMemory
	}
	if p.Iterations == 0 {
		p.Iterations = DefaultIterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = DefaultParallelism
	}
	if p.SaltLen == 0 {
		p.SaltLen = DefaultSaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultKeyLen
	}
	return p
}

// Hasher hashes and verifies passwords with argon2id. Its zero value is ready
// to use with the default [Params]. A Hasher is safe for concurrent use and
// must not be copied after first use.
//
// Each argon2id computation holds Params.Memory KiB, so a Hasher runs at most
// Concurrency of them at once; the others wait for a slot, or give up when
// their context ends. This keeps memory bounded under a flood of logins.
type Hasher struct {
	// Params are the cost parameters of new hashes. Zero fields take defaults.
	Params Params
	// Concurrency is the number of hashes computed at once; default
	// runtime.GOMAXPROCS(0).
	Concurrency int

	once  sync.Once
	sem   chan struct{}
	dummy string
}

func (h *Hasher) init() {
	h.once.Do(func() {
		n := h.Concurrency
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		h.sem = make(chan struct{}, n)
		// The dummy hash has the same parameters as real ones, so verifying
		// against it costs the same time. Its salt is fixed: it protects nothing.
		p := h.Params.withDefaults()
		salt := make([]byte, p.SaltLen)
		key := argon2.IDKey([]byte("saaskit dummy password"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
		h.dummy = encodePHC(p, salt, key)
	})
}

func (h *Hasher) acquire(ctx context.Context) error {
	h.init()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("authn: waiting to hash: %w", ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the argon2id hash of password as a PHC string,
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>" with unpadded base64. It
// returns ctx's error if ctx ends while waiting for a slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	p := h.Params.withDefaults()
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("authn: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. On a mismatch it returns false and an error wrapping
// [ErrPasswordMismatch]; on a hash it cannot read, [ErrMalformedHash].
// needsRehash is true when the password matched but phc was made with other
// parameters than h.Params: the caller should store a fresh [Hasher.Hash].
func (h *Hasher) Verify(ctx context.Context, password, phc string) (ok, needsRehash bool, err error) {
	p, salt, key, err := decodePHC(phc)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, ErrPasswordMismatch
	}
	return true, p != h.Params.withDefaults(), nil
}

// VerifyDummy spends the time of a [Hasher.Verify] against a fixed hash made
// with h.Params, and discards the result. Call it when the account does not
// exist, so that the response time does not reveal which emails are
// registered. It returns ctx's error if ctx ends while waiting for a slot.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	h.init()
	_, _, err := h.Verify(ctx, password, h.dummy)
	if errors.Is(err, ErrPasswordMismatch) {
		return nil
	}
	return err
}

var b64 = base64.RawStdEncoding

func encodePHC(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decodePHC parses an argon2id PHC string. The returned Params carry the salt
// and key lengths found in it.
func decodePHC(s string) (Params, []byte, []byte, error) {
	var p Params
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("parameters")
	}
	for i, name := range []string{"m", "t", "p"} {
		k, v, ok := strings.Cut(fields[i], "=")
		if !ok || k != name || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("parameters")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return bad("parameters")
		}
		switch name {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Iterations = uint32(n)
		case "p":
			if n > maxParallelism {
				return bad("parallelism too high")
			}
			p.Parallelism = uint8(n)
		}
	}
	if p.Memory > maxMemory || p.Iterations > maxIterations {
		return bad("cost too high")
	}
	if p.Memory < 8*uint32(p.Parallelism) {
		return bad("memory below 8*parallelism")
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxSaltLen {
		return bad("salt")
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return bad("key")
	}
	p.SaltLen = uint32(len(salt))
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}

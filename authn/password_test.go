package authn_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/saaskit/saaskit/authn"
)

// fast are cheap parameters for tests; production uses the defaults.
var fast = authn.Params{Memory: 64, Iterations: 1, Parallelism: 1}

func TestHashDefaults(t *testing.T) {
	t.Parallel()
	var h authn.Hasher
	phc, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("PHC %q", phc)
	}
	parts := strings.Split(phc, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 || strings.ContainsAny(parts[4]+parts[5], "=") {
		t.Fatalf("salt %q / key %q not raw base64 of 16 / 32 bytes", parts[4], parts[5])
	}
	ok, rehash, err := h.Verify(t.Context(), "correct horse battery staple", phc)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := &authn.Hasher{Params: fast}
	a, _ := h.Hash(t.Context(), "pässwörd-one")
	b, _ := h.Hash(t.Context(), "pässwörd-one")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if ok, _, err := h.Verify(t.Context(), "pässwörd-one", b); !ok || err != nil {
		t.Fatalf("match: %v %v", ok, err)
	}
	ok, rehash, err := h.Verify(t.Context(), "pässwörd-two", a)
	if ok || rehash || !errors.Is(err, authn.ErrPasswordMismatch) {
		t.Fatalf("mismatch: %v %v %v", ok, rehash, err)
	}
	// Stronger parameters now: the old hash still verifies, and asks for a rehash.
	h2 := &authn.Hasher{Params: authn.Params{Memory: 128, Iterations: 1, Parallelism: 1}}
	if ok, rehash, err := h2.Verify(t.Context(), "pässwörd-one", a); !ok || !rehash || err != nil {
		t.Fatalf("old params: %v %v %v", ok, rehash, err)
	}
	// VerifyDummy does the work and reports nothing.
	if err := h.VerifyDummy(t.Context(), "anything"); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	h := &authn.Hasher{Params: fast}
	good, _ := h.Hash(t.Context(), "password")
	p := strings.Split(good, "$")
	for _, phc := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=64,t=1,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=16$m=64,t=1,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=64,t=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$t=1,m=64,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=64,t=0,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=64,t=1,p=0$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=64,t=1000,p=1$" + p[4] + "$" + p[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + p[4] + "=$" + p[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!$" + p[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + p[4] + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + p[4] + "$" + p[5] + "$",
		"$argon2id$v=19$m=064,t=1,p=1$" + p[4] + "$" + p[5],
	} {
		ok, _, err := h.Verify(t.Context(), "password", phc)
		if ok || !errors.Is(err, authn.ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v", phc, ok, err)
		}
	}
}

func TestHasherConcurrent(t *testing.T) {
	t.Parallel()
	h := &authn.Hasher{Params: fast, Concurrency: 2}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			pw := strings.Repeat("x", i+10)
			phc, err := h.Hash(t.Context(), pw)
			if err != nil {
				t.Error(err)
				return
			}
			if ok, _, err := h.Verify(t.Context(), pw, phc); !ok {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pw   string
		want error
	}{
		{"tr0ub4dor&3-horse", nil},
		{"short", authn.ErrPasswordTooShort},
		{"ninechars", authn.ErrPasswordTooShort},
		{"éééééééééé", nil}, // ten characters, twenty bytes
		{strings.Repeat("a", 257), authn.ErrPasswordTooLong},
		{strings.Repeat("ab", 128), nil},
		{"password123", authn.ErrPasswordTooCommon},
		{"Password123", authn.ErrPasswordTooCommon},
		{"qwertyuiop", authn.ErrPasswordTooCommon},
		{"1234567890", authn.ErrPasswordTooCommon},
		{"iloveyou123", authn.ErrPasswordTooCommon},
	}
	for _, tt := range tests {
		if err := authn.ValidatePassword(tt.pw); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("ValidatePassword(%q) = %v, want %v", tt.pw, err, tt.want)
		}
	}
	p := authn.PasswordPolicy{MinLength: 4, MaxBytes: 8, AllowCommon: true}
	if err := p.Validate("password"); err != nil {
		t.Errorf("custom policy: %v", err)
	}
	if err := p.Validate("password1"); !errors.Is(err, authn.ErrPasswordTooLong) {
		t.Errorf("custom policy, 9 bytes: %v", err)
	}
}

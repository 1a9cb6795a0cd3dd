package authn_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func benchClaims() authn.Claims {
	return authn.Claims{Subject: uuid.New(), TenantID: uuid.New(), Role: authn.RoleAdmin}
}

func BenchmarkIssue(b *testing.B) {
	kit := authntest.New(b)
	c := benchClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := kit.Issuer.Issue(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	kit := authntest.New(b)
	tok := kit.Token(benchClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kit.Verifier.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	kit := authntest.New(b)
	kit.Verifier.Cache = authn.NewTokenCache(0)
	tok := kit.Token(benchClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kit.Verifier.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the floor for BenchmarkVerify: the bare signature
// check over a message as long as a token's signing input.
func BenchmarkEd25519Verify(b *testing.B) {
	kit := authntest.New(b)
	tok := kit.Token(benchClaims())
	msg := []byte(tok[:strings.LastIndexByte(tok, '.')])
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

package authn_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer a.b.c", "Bearer  x", "Basic x", "Bearer a==", "Bearer =a", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := authn.ParseBearer(header)
		if err != nil {
			if tok != "" {
				t.Fatal("token returned with an error")
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t,\"") || !strings.EqualFold(header[:7], "bearer ") || header[7:] != tok {
			t.Fatalf("ParseBearer(%q) = %q", header, tok)
		}
	})
}

// FuzzVerify feeds mutations of valid and invalid tokens to a verifier whose
// only valid token is the seed; nothing else may be accepted.
func FuzzVerify(f *testing.F) {
	kit := authntest.New(f)
	c := authn.Claims{Subject: uuid.New(), TenantID: uuid.New(), Role: authn.RoleUser}
	valid := kit.Token(c)
	for _, s := range []string{
		valid, kit.AlgNone(c), kit.HMACWithPublicKey(c), kit.WrongType(c, "JWT"), kit.Expired(c),
		kit.UnknownKey(c), kit.Mint(authntest.Spec{Claims: c, NoExpiry: true}), "", "a.b.c", "{}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := kit.Verifier.Verify(t.Context(), tok)
		if err == nil {
			if tok != valid || p.UserID != c.Subject {
				t.Fatalf("accepted %q", tok)
			}
			return
		}
		if p != nil || !authn.IsTokenError(err) {
			t.Fatalf("Verify(%q) = %v, %v", tok, p, err)
		}
	})
}

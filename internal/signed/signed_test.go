package signed

import (
	"strings"
	"testing"
)

type state struct {
	A string `json:"a"`
	N int64  `json:"n"`
}

func TestSealOpen(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s := Seal(key, "login", "issuer|client", state{"x", 7})
	var got state
	if !Open(key, "login", "issuer|client", s, &got) || got != (state{"x", 7}) {
		t.Fatalf("round trip: %v %+v", s, got)
	}
	p, sig, _ := strings.Cut(s, ".")
	for name, bad := range map[string]func() bool{
		"other key": func() bool {
			return Open([]byte("another key, same length, 32 byt"), "login", "issuer|client", s, &got)
		},
		"other purpose": func() bool { return Open(key, "logout", "issuer|client", s, &got) },
		"other binding": func() bool { return Open(key, "login", "issuer|other", s, &got) },
		"no signature":  func() bool { return Open(key, "login", "issuer|client", p, &got) },
		"tampered":      func() bool { return Open(key, "login", "issuer|client", p[:len(p)-1]+"A."+sig, &got) },
		"garbage":       func() bool { return Open(key, "login", "issuer|client", "!!.!!", &got) },
	} {
		if bad() {
			t.Errorf("%s: opened", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	key := []byte("k")
	f.Add(Seal(key, "p", "b", state{"x", 1}))
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		var v state
		if Open(key, "p", "b", s, &v) && Seal(key, "p", "b", v) == "" {
			t.Fatal("opened a value that does not seal")
		}
	})
}

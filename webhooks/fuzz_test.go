package webhooks

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The parsers of untrusted headers and bodies must never panic, and must
// fail only with the documented errors.

func FuzzParseStripeHeader(f *testing.F) {
	for _, s := range []string{
		"t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
		"t=1,v1=zz", ",,,=,t=,v1=", "t=-1,v1=" + strings.Repeat("a", 64), "t=99999999999999999999",
		strings.Repeat("v1=a,", 50) + "t=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseStripeHeader(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(h.v1) == 0 || len(h.v1) > maxSignatures {
			t.Fatalf("parsed %d signatures", len(h.v1))
		}
		v := Stripe{Secrets: []string{"whsec_x"}, Now: func() time.Time { return time.Unix(h.unix, 0) }}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set(StripeHeader, s)
		if err := v.Verify(r, nil); err != nil && !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzParseStandardSignatures(f *testing.F) {
	for _, s := range []string{
		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
		"v1a,AAAA v1,BBBB", "v1,", ",", "v2,abc v1", strings.Repeat("v1,AAAA ", 40),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sigs, err := parseStandardSignatures(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for _, sig := range sigs {
			if (sig.version == "v1" && len(sig.sig) != 32) || (sig.version == "v1a" && len(sig.sig) != 64) {
				t.Fatalf("signature %s of %d bytes", sig.version, len(sig.sig))
			}
		}
		v := StandardWebhooks{Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
			PublicKeys: []string{"whpk_" + strings.Repeat("A", 43) + "="}, Tolerance: -1}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set(StandardIDHeader, "msg_1")
		r.Header.Set(StandardTimestampHeader, "1614265330")
		r.Header.Set(StandardSignatureHeader, s)
		if err := v.Verify(r, []byte("{}")); err != nil && !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzDecodeHMACSignature(f *testing.F) {
	for _, s := range []string{
		"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		"dXNlcg==", "sha256=abc", "", "====", strings.Repeat("A", 43), strings.Repeat("-", 43),
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, enc uint8) {
		e := Encoding(enc % 3)
		if b, ok := decodeSignature(s, e, 32); ok && len(b) != 32 {
			t.Fatalf("decoded %d bytes", len(b))
		}
		v := HMAC{Secrets: [][]byte{[]byte("k")}, Encoding: e, Prefix: "sha256="}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		r.Header.Set(DefaultHMACHeader, s)
		err := v.Verify(r, nil)
		if err != nil && !errors.Is(err, ErrMalformedHeader) && !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrMissingHeader) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"id":"a","type":"t"},{"id":"a"}]}`, `[1,"x",null,{}]`, `{"events":null}`,
		`{"EVENTS":[]}`, `[`, ` `, `{"events":[{"id":1e400,"type":"t","created":1e300}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := decodeBatch(body)
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("invalid JSON %q decoded as a batch", body)
		}
		for _, it := range items {
			ev, err := JSONParser{}.Parse(nil, it)
			if err != nil {
				if !errors.Is(err, ErrMalformedEvent) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if ev.ID == "" || ev.Type == "" || len(ev.ID) > MaxIDLength {
				t.Fatalf("parsed event %+v", ev)
			}
		}
	})
}

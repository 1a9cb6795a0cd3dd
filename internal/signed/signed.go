// Package signed seals small values into strings that a client carries and
// hands back, such as the state of a login between its start and its
// callback: the value is JSON, base64url-encoded and signed with
// HMAC-SHA256. A purpose and a binding string enter the signature, so that a
// value sealed for one purpose or configuration is refused by another.
package signed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Seal encodes v as JSON and signs it. It panics only if v cannot be
// encoded as JSON, which callers rule out by sealing plain structs.
func Seal(key []byte, purpose, binding string, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic("signed: " + err.Error())
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(key, purpose, binding, p))
}

// Open checks the signature of s and decodes its value into v. It reports
// false for a value that is malformed, signed with another key, purpose or
// binding, or that does not decode into v.
func Open(key []byte, purpose, binding, s string, v any) bool {
	p, sig, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, purpose, binding, p)) {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	return err == nil && json.Unmarshal(payload, v) == nil
}

func mac(key []byte, purpose, binding, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	return h.Sum(nil)
}

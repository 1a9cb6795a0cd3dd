package saml

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// pending is what the login cookie carries from Start to Finish.
type pending struct {
	RequestID string `json:"r"`
	Expires   int64  `json:"e"`
}

func seal(key []byte, binding string, p pending) string {
	payload, _ := json.Marshal(p) // a string and an int: cannot fail
	s := base64.RawURLEncoding.EncodeToString(payload)
	return s + "." + base64.RawURLEncoding.EncodeToString(mac(key, binding, s))
}

func open(key []byte, binding, v string, now time.Time) (pending, bool) {
	var p pending
	s, sig, ok := strings.Cut(v, ".")
	if !ok {
		return p, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, binding, s)) {
		return p, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(payload, &p) != nil || p.RequestID == "" || now.Unix() >= p.Expires {
		return p, false
	}
	return p, true
}

func mac(key []byte, binding, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("saaskit-saml-login\x00"))
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	return h.Sum(nil)
}

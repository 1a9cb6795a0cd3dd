package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// loginState is what the login cookie carries between Start and Finish.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// seal encodes st and signs it with HMAC-SHA256 over the payload and a
// binding string (issuer and client id), so that a cookie made for one
// provider configuration is refused by another.
func seal(key []byte, binding string, st loginState) string {
	payload, _ := json.Marshal(st) // a struct of strings and an int: cannot fail
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(key, binding, p))
}

// open checks the signature and expiry of a sealed value and decodes it.
func open(key []byte, binding, v string, now time.Time) (loginState, bool) {
	var st loginState
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return st, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, binding, p)) {
		return st, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &st) != nil {
		return st, false
	}
	if now.Unix() >= st.Expires || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return st, false
	}
	return st, true
}

func mac(key []byte, binding, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte("saaskit-oidc-login\x00"))
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	return h.Sum(nil)
}

package oidc

import (
	"time"

	"github.com/saaskit/saaskit/internal/signed"
)

// loginState is what the login cookie carries between Start and Finish.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

// cookiePurpose separates these cookies from other values signed with the
// same key.
const cookiePurpose = "saaskit-oidc-login"

// seal signs st with the binding string (issuer and client id), so that a
// cookie made for one provider configuration is refused by another.
func seal(key []byte, binding string, st loginState) string {
	return signed.Seal(key, cookiePurpose, binding, st)
}

// open checks the signature and expiry of a sealed value and decodes it.
func open(key []byte, binding, v string, now time.Time) (loginState, bool) {
	var st loginState
	if !signed.Open(key, cookiePurpose, binding, v, &st) {
		return st, false
	}
	if now.Unix() >= st.Expires || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return st, false
	}
	return st, true
}

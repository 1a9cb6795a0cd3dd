package saml

import (
	"time"

	"github.com/saaskit/saaskit/internal/signed"
)

// pending is what the login cookie carries from Start to Finish.
type pending struct {
	RequestID string `json:"r"`
	Expires   int64  `json:"e"`
}

// cookiePurpose separates these cookies from other values signed with the
// same key.
const cookiePurpose = "saaskit-saml-login"

func seal(key []byte, binding string, p pending) string {
	return signed.Seal(key, cookiePurpose, binding, p)
}

func open(key []byte, binding, v string, now time.Time) (pending, bool) {
	var p pending
	if !signed.Open(key, cookiePurpose, binding, v, &p) || p.RequestID == "" || now.Unix() >= p.Expires {
		return p, false
	}
	return p, true
}

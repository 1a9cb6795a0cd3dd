package oidc

// Endpoints are what discovery found at the provider.
type Endpoints struct {
	Issuer        string `json:"issuer"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	UserInfo      string `json:"userinfo_endpoint,omitempty"`
	JWKS          string `json:"jwks_uri"`
}

// Endpoints returns the provider's endpoints, as discovered by [New].
func (rp *RelyingParty) Endpoints() Endpoints {
	var doc struct {
		JWKS string `json:"jwks_uri"`
	}
	_ = rp.provider.Claims(&doc) // the document parsed once already, in New
	ep := rp.provider.Endpoint()
	return Endpoints{Issuer: rp.cfg.Issuer, Authorization: ep.AuthURL, Token: ep.TokenURL,
		UserInfo: rp.provider.UserInfoEndpoint(), JWKS: doc.JWKS}
}

package saml

import (
	"slices"
	"strings"

	crewjam "github.com/crewjam/saml"
)

// AttributeMap names the assertion attributes that carry each field of an
// [Identity]. An attribute matches a name when its Name or FriendlyName is
// equal to it (case-insensitively). An empty list means the default names
// (DefaultEmailAttributes and so on), which cover the usual OIDs, the
// Microsoft claim URIs and the short names most IdPs send.
type AttributeMap struct {
	Email  []string `json:"email,omitempty"`
	Name   []string `json:"name,omitempty"`
	Role   []string `json:"role,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Default attribute names, used for the empty fields of an [AttributeMap].
var (
	DefaultEmailAttributes = []string{
		"email", "mail", "emailaddress", "urn:oid:0.9.2342.19200300.100.1.3",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
	}
	DefaultNameAttributes = []string{
		"name", "displayName", "cn", "urn:oid:2.16.840.1.113730.3.1.241", "urn:oid:2.5.4.3",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
	}
	DefaultRoleAttributes = []string{
		"role", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
	}
	DefaultGroupsAttributes = []string{
		"groups", "memberOf", "eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
	}
)

func or(names, def []string) []string {
	if len(names) == 0 {
		return def
	}
	return names
}

// values returns the values of the first attribute in the assertion that
// matches one of names, in the order of names.
func values(a *crewjam.Assertion, names []string) []string {
	for _, n := range names {
		for _, st := range a.AttributeStatements {
			for _, attr := range st.Attributes {
				if strings.EqualFold(attr.Name, n) || (attr.FriendlyName != "" && strings.EqualFold(attr.FriendlyName, n)) {
					var out []string
					for _, v := range attr.Values {
						if s := strings.TrimSpace(v.Value); s != "" {
							out = append(out, s)
						}
					}
					if len(out) > 0 {
						return out
					}
				}
			}
		}
	}
	return nil
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// identity maps a verified assertion to an Identity.
func (m AttributeMap) identity(a *crewjam.Assertion) (*Identity, error) {
	id := &Identity{
		Email:  first(values(a, or(m.Email, DefaultEmailAttributes))),
		Name:   first(values(a, or(m.Name, DefaultNameAttributes))),
		Role:   first(values(a, or(m.Role, DefaultRoleAttributes))),
		Groups: values(a, or(m.Groups, DefaultGroupsAttributes)),
		Issuer: a.Issuer.Value,
	}
	if a.Subject != nil && a.Subject.NameID != nil {
		id.NameID = a.Subject.NameID.Value
		if id.Email == "" && a.Subject.NameID.Format == string(crewjam.EmailAddressNameIDFormat) {
			id.Email = id.NameID
		}
	}
	for _, st := range a.AuthnStatements {
		if st.SessionIndex != "" {
			id.SessionIndex = st.SessionIndex
			break
		}
	}
	id.Groups = slices.Compact(id.Groups)
	if id.Email == "" || !strings.Contains(id.Email, "@") {
		return nil, ErrNoEmail
	}
	return id, nil
}

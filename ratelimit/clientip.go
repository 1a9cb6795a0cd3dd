package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that sent r.
//
// It is the direct peer (r.RemoteAddr) unless the peer is in one of the
// trusted prefixes, that is a proxy the deployment runs. Only then are
// X-Forwarded-For and X-Real-IP read: X-Forwarded-For is walked from the
// right (the entry the trusted proxy appended) towards the left, skipping
// entries that are themselves trusted proxies, and the first untrusted entry
// is the client. Entries to its left were written by the client and are
// ignored. When X-Forwarded-For is absent, a valid X-Real-IP is used.
// When the walk meets an entry that is not an IP address, the last trusted
// hop is returned, since nothing to its left can be believed.
//
// The result is unmapped (an IPv4-mapped IPv6 address becomes IPv4) and
// carries no zone. It is the zero Addr only when r.RemoteAddr is not an
// address and no trusted proxy vouches for one. With no trusted prefixes,
// forwarding headers are never honoured.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hop := peer
		for i := len(xff) - 1; i >= 0; i-- {
			list := xff[i]
			for list != "" {
				var item string
				if j := strings.LastIndexByte(list, ','); j >= 0 {
					item, list = list[j+1:], list[:j]
				} else {
					item, list = list, ""
				}
				item = strings.TrimSpace(item)
				if item == "" {
					continue
				}
				a := parseHost(item)
				if !a.IsValid() {
					return hop
				}
				if !isTrusted(a, trusted) {
					return a
				}
				hop = a
			}
		}
		return hop
	}
	if a := parseHost(strings.TrimSpace(r.Header.Get("X-Real-IP"))); a.IsValid() {
		return a
	}
	return peer
}

// parseHost parses "ip", "ip:port" or "[ipv6]:port".
func parseHost(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return norm(a)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return norm(ap.Addr())
	}
	// "[::1]" without a port, or a host:port whose port is not numeric.
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return norm(a)
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return norm(a)
		}
	}
	return netip.Addr{}
}

func norm(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/saaskit/saaskit/ratelimit"
)

var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("fd00::/8"),
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		remote string
		xff    []string
		realIP string
		want   string
	}{
		{"direct peer", "198.51.100.1:1234", nil, "", "198.51.100.1"},
		{"untrusted peer ignores headers", "198.51.100.1:1234", []string{"1.2.3.4"}, "5.6.7.8", "198.51.100.1"},
		{"trusted peer, one hop", "10.0.0.1:80", []string{"203.0.113.5"}, "", "203.0.113.5"},
		{"forged left entries ignored", "10.0.0.1:80", []string{"6.6.6.6, 203.0.113.5"}, "", "203.0.113.5"},
		{"trusted hops skipped", "10.0.0.1:80", []string{"6.6.6.6, 203.0.113.5, 10.1.2.3, 10.0.0.9"}, "", "203.0.113.5"},
		{"several header lines", "10.0.0.1:80", []string{"6.6.6.6, 203.0.113.5", "10.9.9.9"}, "", "203.0.113.5"},
		{"all trusted: leftmost", "10.0.0.1:80", []string{"10.2.2.2, 10.3.3.3"}, "", "10.2.2.2"},
		{"garbage stops the walk", "10.0.0.1:80", []string{"203.0.113.5, nonsense, 10.3.3.3"}, "", "10.3.3.3"},
		{"garbage right after peer", "10.0.0.1:80", []string{"203.0.113.5, nonsense"}, "", "10.0.0.1"},
		{"entry with port", "10.0.0.1:80", []string{"203.0.113.5:5555"}, "", "203.0.113.5"},
		{"bracketed v6 with port", "10.0.0.1:80", []string{"[2001:db8::7]:443"}, "", "2001:db8::7"},
		{"v6 peer trusted", "[fd00::1]:80", []string{"2001:db8::9"}, "", "2001:db8::9"},
		{"mapped v4 unmapped", "[::ffff:10.0.0.1]:80", []string{"::ffff:203.0.113.5"}, "", "203.0.113.5"},
		{"zone dropped", "[fe80::1%eth0]:80", nil, "", "fe80::1"},
		{"empty entries skipped", "10.0.0.1:80", []string{" , 203.0.113.5 ,, "}, "", "203.0.113.5"},
		{"x-real-ip from trusted peer", "10.0.0.1:80", nil, "203.0.113.8", "203.0.113.8"},
		{"invalid x-real-ip", "10.0.0.1:80", nil, "nope", "10.0.0.1"},
		{"xff wins over x-real-ip", "10.0.0.1:80", []string{"203.0.113.5"}, "203.0.113.8", "203.0.113.5"},
		{"remote without port", "198.51.100.1", nil, "", "198.51.100.1"},
		{"unparseable remote", "pipe", []string{"203.0.113.5"}, "", "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-IP", tt.realIP)
			}
			if got := ratelimit.ClientIP(r, trusted).String(); got != tt.want {
				t.Errorf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClientIPNoTrustedProxies(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:80"
	r.Header.Set("X-Forwarded-For", "203.0.113.5")
	r.Header.Set("X-Real-IP", "203.0.113.5")
	if got := ratelimit.ClientIP(r, nil).String(); got != "10.0.0.1" {
		t.Fatalf("ClientIP with no trusted proxies = %s, want the peer", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "203.0.113.5, 10.0.0.2", "")
	f.Add("10.0.0.1:80", "[2001:db8::1]:80,,garbage", "1.2.3.4")
	f.Add("[fd00::1]:1", "::ffff:1.2.3.4%eth0", "")
	f.Add("198.51.100.1:1", "1.1.1.1", "2.2.2.2")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, remote, xff, realIP string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", realIP)
		got := ratelimit.ClientIP(r, trusted)
		peer := ratelimit.ClientIP(&http.Request{RemoteAddr: remote}, nil)
		if got == peer {
			return
		}
		if !got.IsValid() || got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP = %v: not a plain valid address", got)
		}
		if !peer.IsValid() || !trustedAddr(peer) {
			t.Fatalf("ClientIP = %v from headers, but the peer %v is not trusted", got, peer)
		}
		// The result must be one of the addresses the headers name.
		found := false
		for item := range strings.SplitSeq(xff+","+realIP, ",") {
			if a := ratelimit.ClientIP(&http.Request{RemoteAddr: strings.TrimSpace(item)}, nil); a == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("ClientIP = %v, not in X-Forwarded-For %q or X-Real-IP %q", got, xff, realIP)
		}
	})
}

func trustedAddr(a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

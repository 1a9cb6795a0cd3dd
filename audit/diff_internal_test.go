package audit

import (
	"strings"
	"testing"
)

// TestSecretNames checks the name matching of redaction against its
// definition, and the snake_case fast path against the general one.
func TestSecretNames(t *testing.T) {
	names := []string{"key", "api_key", "key_id", "keyboard", "monkey", "my_key_id", "keys", "password_hash",
		"old_password_hash_v2", "passwordhash", "token", "refresh_token", "tokenizer", "_key", "key_", "k", ""}
	words := []string{"key", "password_hash", "token", "k"}
	for _, n := range names {
		for _, w := range words {
			want := n == w || strings.HasPrefix(n, w+"_") || strings.HasSuffix(n, "_"+w) || strings.Contains(n, "_"+w+"_")
			if got := hasPart(n, w); got != want {
				t.Errorf("hasPart(%q, %q) = %v, want %v", n, w, got, want)
			}
		}
	}
	for in, want := range map[string]string{"api_key": "api_key", "apiKey": "api_key", "APIKey": "api_key",
		"api-key": "api_key", "API_KEY": "api_key", "key2": "key2", "v2_token": "v2_token"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

package audit

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"unicode"
)

// Redacted replaces the value of a secret field in [Diff].
const Redacted = "[redacted]"

// DefaultRedact lists the field names whose values [Diff] always redacts. A
// name matches a field whose snake_case name equals it or contains it as an
// underscore-separated part: "key" matches "api_key" and "key_id", "token"
// matches "refresh_token", "secret" matches "client_secret".
var DefaultRedact = []string{"password", "password_hash", "secret", "token", "key"}

// Diff compares before and after field by field, by their JSON names, and
// returns the fields whose values differ. Either may be nil (a creation or a
// deletion); both should encode to JSON objects (structs, maps, or pointers to
// them); any other value is compared as a whole under the name "value".
//
// The values in the result are decoded JSON (string, json.Number, bool, nil,
// []any, map[string]any). Fields named in [DefaultRedact] or in redact, at any
// depth, have their values replaced by [Redacted], so that a password change
// is recorded as a change without revealing either password. Diff returns nil
// when nothing changed.
func Diff(before, after any, redact ...string) map[string]Change {
	b, a := fields(before), fields(after)
	words := make([]string, 0, len(DefaultRedact)+len(redact))
	for _, w := range append(append([]string(nil), DefaultRedact...), redact...) {
		words = append(words, snake(w))
	}
	var out map[string]Change
	keys := make([]string, 0, len(b)+len(a))
	for k := range b {
		keys = append(keys, k)
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		bv, inB := b[k]
		av, inA := a[k]
		if inB && inA && jsonEqual(bv, av) {
			continue
		}
		if out == nil {
			out = make(map[string]Change)
		}
		if secret(k, words) {
			out[k] = Change{Before: redactAll(bv), After: redactAll(av)}
			continue
		}
		out[k] = Change{Before: redactIn(bv, words), After: redactIn(av, words)}
	}
	return out
}

// fields encodes v to JSON and decodes it back as an object.
func fields(v any) map[string]any {
	if v == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"value": "[unencodable: " + err.Error() + "]"}
	}
	if string(data) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return map[string]any{"value": "[unencodable: " + err.Error() + "]"}
	}
	if m, ok := x.(map[string]any); ok {
		return m
	}
	return map[string]any{"value": x}
}

func jsonEqual(x, y any) bool {
	bx, err1 := json.Marshal(x)
	by, err2 := json.Marshal(y)
	return err1 == nil && err2 == nil && bytes.Equal(bx, by)
}

func redactAll(v any) any {
	if v == nil {
		return nil
	}
	return Redacted
}

// redactIn copies v with the values of secret keys of nested objects
// redacted.
func redactIn(v any, words []string) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if secret(k, words) {
				m[k] = redactAll(e)
			} else {
				m[k] = redactIn(e, words)
			}
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = redactIn(e, words)
		}
		return s
	default:
		return v
	}
}

func secret(name string, words []string) bool {
	n := snake(name)
	for _, w := range words {
		if w == "" {
			continue
		}
		if hasPart(n, w) {
			return true
		}
	}
	return false
}

// hasPart reports whether w occurs in n between underscores or the ends of
// n: n is w, or starts with w+"_", ends with "_"+w, or contains "_"+w+"_".
func hasPart(n, w string) bool {
	for i := 0; i <= len(n); {
		j := strings.Index(n[i:], w)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(w)
		if (j == 0 || n[j-1] == '_') && (end == len(n) || n[end] == '_') {
			return true
		}
		i = j + 1
	}
	return false
}

// snake turns "apiKey", "APIKey", "api-key" and "API_KEY" into "api_key".
func snake(s string) string {
	simple := true
	for i := 0; i < len(s) && simple; i++ {
		c := s[i]
		simple = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	if simple {
		return s // already snake_case: the common case of JSON names
	}
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if c == '-' || c == ' ' || c == '.' {
			b.WriteByte('_')
			continue
		}
		if unicode.IsUpper(c) && i > 0 {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

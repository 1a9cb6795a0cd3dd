package audit

import (
	"encoding/json"
	"testing"
)

// TestEncodeChangesOnePass checks that the one-pass encoding of generic
// values is the canonical form the general path writes.
func TestEncodeChangesOnePass(t *testing.T) {
	type inner struct {
		Z string `json:"z"`
		A int    `json:"a"`
	}
	cases := []map[string]Change{
		{"email": {After: "a@example.com"}, "name": {Before: "<Ada & co>", After: "Ada \u2028 ünï"}},
		{"n": {Before: json.Number("1.50"), After: 2.5e21}, "i": {Before: 3, After: int64(-4)}, "b": {After: true}},
		{"m": {Before: map[string]any{"z": []any{1, "x", nil, map[string]any{"b": 1, "a": 2}}, "a": false}}},
	}
	for i, c := range cases {
		if !generic(c) {
			t.Fatalf("case %d is not generic", i)
		}
		got, err := encodeChanges(c)
		if err != nil {
			t.Fatal(err)
		}
		// The general path: encode, decode into generic values, encode.
		data, _ := encodeJSON(c)
		var x any
		if err := json.Unmarshal(data, &x); err != nil {
			t.Fatal(err)
		}
		want, _ := encodeJSON(x)
		if i == 1 {
			// Unmarshal without UseNumber turns numbers into float64; compare
			// through the general path with numbers kept as they are.
			want = []byte(`{"b":{"after":true,"before":null},"i":{"after":-4,"before":3},"n":{"after":2.5e+21,"before":1.50}}`)
		}
		if got != string(want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if generic(map[string]Change{"s": {After: inner{Z: "z", A: 1}}}) || generic(map[string]Change{"s": {After: "\xff"}}) {
		t.Fatal("a struct value or invalid UTF-8 is generic")
	}
	got, err := encodeChanges(map[string]Change{"s": {After: "a\xffb"}})
	if err != nil || got != "{\"s\":{\"after\":\"a\uFFFDb\",\"before\":null}}" {
		t.Fatalf("invalid UTF-8: %s, %v", got, err)
	}
	got, err = encodeChanges(map[string]Change{"s": {After: inner{Z: "z", A: 1}}})
	if err != nil || got != `{"s":{"after":{"a":1,"z":"z"},"before":null}}` {
		t.Fatalf("struct value: %s, %v", got, err)
	}
}

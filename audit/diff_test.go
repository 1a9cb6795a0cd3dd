package audit_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/saaskit/saaskit/audit"
)

type user struct {
	ID           string            `json:"id"`
	Email        string            `json:"email"`
	FullName     string            `json:"full_name"`
	PasswordHash string            `json:"password_hash"`
	APIKey       string            `json:"apiKey"`
	Age          int               `json:"age"`
	Settings     map[string]string `json:"settings,omitempty"`
	Internal     string            `json:"-"`
}

func TestDiff(t *testing.T) {
	before := user{ID: "1", Email: "a@example.com", FullName: "Ada", PasswordHash: "h1", APIKey: "k1", Age: 36, Internal: "x"}
	after := before
	after.FullName = "Ada Lovelace"
	after.PasswordHash = "h2"
	after.APIKey = "k1"
	after.Age = 37
	after.Settings = map[string]string{"theme": "dark", "webhook_secret": "s"}
	after.Internal = "y"

	got := audit.Diff(before, &after, "email")
	want := map[string]audit.Change{
		"full_name":     {Before: "Ada", After: "Ada Lovelace"},
		"password_hash": {Before: audit.Redacted, After: audit.Redacted},
		"age":           {Before: json.Number("36"), After: json.Number("37")},
		"settings":      {Before: nil, After: map[string]any{"theme": "dark", "webhook_secret": audit.Redacted}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Diff =\n%#v\nwant\n%#v", got, want)
	}

	created := audit.Diff(nil, map[string]any{"email": "b@example.com", "client_secret": "s", "refresh_token": nil})
	want = map[string]audit.Change{
		"email":         {After: "b@example.com"},
		"client_secret": {After: audit.Redacted},
		"refresh_token": {},
	}
	if !reflect.DeepEqual(created, want) {
		t.Fatalf("Diff(nil, x) = %#v", created)
	}
	deleted := audit.Diff(map[string]string{"name": "n", "token": "t"}, nil)
	if len(deleted) != 2 || deleted["name"].Before != "n" || deleted["token"].Before != audit.Redacted || deleted["name"].After != nil {
		t.Fatalf("Diff(x, nil) = %#v", deleted)
	}
	if d := audit.Diff(before, before); d != nil {
		t.Fatalf("Diff(x, x) = %#v, want nil", d)
	}
	if d := audit.Diff(1, 2); !reflect.DeepEqual(d, map[string]audit.Change{"value": {Before: json.Number("1"), After: json.Number("2")}}) {
		t.Fatalf("Diff(1, 2) = %#v", d)
	}
}

package saml_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/saaskit/saaskit/authn/saml"
)

func TestMemoryReplayCache(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &saml.MemoryReplayCache{Now: func() time.Time { return now }}
	if err := c.Consume("a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Consume("a", now.Add(time.Minute)); !errors.Is(err, saml.ErrReplayed) {
		t.Fatalf("second use: %v, want ErrReplayed", err)
	}
	// Past its expiry the ID is forgotten (the assertion itself has expired
	// by then, so the SP refuses it on time anyway).
	now = now.Add(2 * time.Minute)
	if err := c.Consume("a", now.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	// Many expired IDs are dropped as new ones arrive.
	for i := range 5000 {
		if err := c.Consume(fmt.Sprint("id-", i), now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	if err := c.Consume("id-4999", now.Add(time.Minute)); err != nil {
		t.Fatalf("expired id refused: %v", err)
	}
}

package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHasherWaitsForSlot(t *testing.T) {
	t.Parallel()
	h := &Hasher{Params: Params{Memory: 64, Iterations: 1, Parallelism: 1}, Concurrency: 1}
	h.init()
	h.sem <- struct{}{} // every slot taken
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash with no slot: %v", err)
	}
	if _, _, err := h.Verify(ctx, "password", h.dummy); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify with no slot: %v", err)
	}
	<-h.sem
	if _, err := h.Hash(t.Context(), "password"); err != nil {
		t.Fatal(err)
	}
	if len(h.sem) != 0 {
		t.Fatal("slot not released")
	}
}

func TestCommonPasswordList(t *testing.T) {
	t.Parallel()
	n := 0
	for line := range strings.Lines(commonPasswordsText) {
		w := strings.TrimSpace(line)
		if len([]rune(w)) < DefaultMinPasswordLength || w != strings.ToLower(w) {
			t.Errorf("list entry %q is short or not lower case", w)
		}
		n++
	}
	if n < 300 {
		t.Fatalf("only %d common passwords", n)
	}
}

package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/saaskit/saaskit/internal/dbtest"
)

// TestKeyRotation: after a rotation old tokens still verify, new tokens use
// the key that the JWKS published as next before, and a second replica on
// the same database picks the new keys up.
func TestKeyRotation(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		s := newTestServer(t, db)
		owner := s.register("owner@keys.example.com", "Keys")
		kids := func() map[string]bool {
			var set struct {
				Keys []struct {
					Kid string `json:"kid"`
				} `json:"keys"`
			}
			s.must(http.StatusOK, "GET", "/.well-known/jwks.json", "", nil).decode(t, &set)
			out := map[string]bool{}
			for _, k := range set.Keys {
				out[k.Kid] = true
			}
			return out
		}
		header := func(tok string) string {
			var h struct {
				Kid string `json:"kid"`
			}
			b, err := jwtSegment(tok, 0)
			if err != nil {
				t.Fatal(err)
			}
			json.Unmarshal(b, &h)
			return h.Kid
		}
		before := kids()
		oldKid := header(owner.Access)
		if len(before) != 2 || !before[oldKid] {
			t.Fatalf("JWKS before rotation: %v (signing kid %s)", before, oldKid)
		}
		if err := s.srv.RotateKeys(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil)
		fresh := s.login("owner@keys.example.com", "")
		newKid := header(fresh.Access)
		if newKid == oldKid || !before[newKid] {
			t.Errorf("new tokens signed by %s, which the JWKS did not publish before (%v)", newKid, before)
		}
		after := kids()
		if !after[oldKid] || !after[newKid] || len(after) != 3 {
			t.Errorf("JWKS after rotation: %v", after)
		}

		// A second replica loads the same key set and accepts both tokens.
		replica := newTestServer(t, db)
		replica.must(http.StatusOK, "GET", "/api/users/", owner.Access, nil)
		replica.must(http.StatusOK, "GET", "/api/users/", fresh.Access, nil)
	})
}

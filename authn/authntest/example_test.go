package authntest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/saaskit/saaskit/authn"
	"github.com/saaskit/saaskit/authn/authntest"
)

func Example() {
	t := &testing.T{} // in a test, the test's own *testing.T
	kit := authntest.New(t)
	h := authn.Middleware(kit.Verifier)(authn.Require(authn.RoleAdmin)(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })))

	tenant := uuid.New()
	admin, _ := kit.Member(tenant, authn.RoleAdmin)
	user, _ := kit.Member(tenant, authn.RoleUser)
	c := authn.Claims{Subject: uuid.New(), TenantID: tenant, Role: authn.RoleAdmin}
	for _, tok := range []string{admin, user, kit.Expired(c), kit.AlgNone(c), kit.WrongType(c, "JWT"), kit.UnknownKey(c)} {
		req := httptest.NewRequest("GET", "/", nil)
		authntest.SetBearer(req, tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 204
	// 403
	// 401
	// 401
	// 401
	// 401
}

func ExampleKit_Mint() {
	kit := authntest.New(&testing.T{})
	tok := kit.Mint(authntest.Spec{Audience: "https://someone-else.test"})
	_, err := kit.Verifier.Verify(context.Background(), tok)
	fmt.Println(errors.Is(err, authn.ErrTokenClaims))
	// Output: true
}

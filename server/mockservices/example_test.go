package mockservices_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/saaskit/saaskit/server/mockservices"
)

func ExampleNewUserService() {
	users, err := mockservices.NewUserService(mockservices.Config{})
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	users.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/users", strings.NewReader(`{"email": "ann@example.com", "role": "admin"}`)))
	fmt.Println(rec.Code)
	for _, u := range users.Users() {
		fmt.Println(u.ID, u.Email, u.Role, u.Active)
	}
	// Output:
	// 201
	// usr_000001 ann@example.com admin true
}

func ExampleFaults() {
	users, _ := mockservices.NewUserService(mockservices.Config{})
	users.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("PUT", "/admin/faults",
		strings.NewReader(`{"rate_limit_rate": 1, "retry_after": "5s"}`)))
	rec := httptest.NewRecorder()
	users.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/users", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	// Output: 429 5
}

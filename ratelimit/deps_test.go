package ratelimit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps package ratelimit light: the standard library,
// golang.org/x/time and this module's internal packages only. In particular
// go-redis stays in ratelimit/redislimit.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch {
		case strings.Contains(dep, "github.com/redis/"), strings.Contains(dep, "github.com/go-redis/"):
			t.Errorf("ratelimit depends on %s: Redis belongs in ratelimit/redislimit", dep)
		case dep == "github.com/saaskit/saaskit/ratelimit",
			dep == "github.com/saaskit/saaskit/internal/problem",
			strings.HasPrefix(dep, "golang.org/x/time/"):
		default:
			t.Errorf("ratelimit depends on %s; allowed: std, golang.org/x/time, internal/problem", dep)
		}
	}
}

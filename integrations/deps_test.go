package integrations_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps package integrations light: the standard library,
// golang.org/x, backoff and gobreaker only; no database or job queue.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
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
		case dep == "github.com/saaskit/saaskit/integrations",
			strings.HasPrefix(dep, "golang.org/x/"),
			dep == "github.com/cenkalti/backoff/v4",
			dep == "github.com/sony/gobreaker/v2":
		default:
			t.Errorf("integrations depends on %s; allowed: std, golang.org/x, cenkalti/backoff/v4, sony/gobreaker/v2", dep)
		}
	}
}

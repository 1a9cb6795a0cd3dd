package saaskit_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/saaskit/saaskit"

// listedPkg is one package as `go list -deps` reports it.
type listedPkg struct {
	path     string
	standard bool
	imports  []string // direct, non-test
	deps     []string // transitive, non-test
	err      string
}

// loadPackages runs `go list -e -deps` over the module and returns every
// package of the module and of its dependency graph, by import path.
func loadPackages(t *testing.T) map[string]*listedPkg {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	const format = `{{.ImportPath}}|{{.Standard}}|{{join .Imports " "}}|{{join .Deps " "}}|{{with .Error}}{{.Err}}{{end}}`
	cmd := exec.Command(goTool, "list", "-e", "-deps", "-f", format, "./...")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, msg)
	}
	pkgs := map[string]*listedPkg{}
	for line := range strings.Lines(string(out)) {
		f := strings.SplitN(strings.TrimRight(line, "\n"), "|", 5)
		if len(f) != 5 {
			t.Fatalf("go list: unexpected line %q", line)
		}
		pkgs[f[0]] = &listedPkg{
			path: f[0], standard: f[1] == "true",
			imports: strings.Fields(f[2]), deps: strings.Fields(f[3]), err: strings.TrimSpace(f[4]),
		}
	}
	return pkgs
}

// isLibrary reports whether path is one of the SDK's library packages: in
// the module, but not the reference server, the examples, the internal
// packages or the root (documentation only).
func isLibrary(path string) bool {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return false
	}
	for _, not := range []string{"server", "examples", "internal"} {
		if rel == not || strings.HasPrefix(rel, not+"/") {
			return false
		}
	}
	return true
}

// under reports whether path is pkg or a package below it.
func under(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }

// importChain returns a shortest import chain from pkg to dep, for messages.
func importChain(pkgs map[string]*listedPkg, from, to string) string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return strings.Join(chain, " -> ")
		}
		if lp := pkgs[p]; lp != nil {
			for _, imp := range lp.imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = p
					queue = append(queue, imp)
				}
			}
		}
	}
	return from + " -> ... -> " + to
}

// forbiddenEverywhere names what no library package may depend on, or ""
// when dep is allowed.
func forbiddenEverywhere(dep string) string {
	switch {
	case under(dep, module+"/server"):
		return "the reference server"
	case under(dep, module+"/examples"):
		return "an example program"
	case under(dep, module+"/internal/sqldb"), under(dep, module+"/internal/dbtest"):
		return "a package that opens databases"
	case under(dep, "modernc.org/sqlite"), under(dep, "github.com/mattn/go-sqlite3"),
		under(dep, "github.com/jackc/pgx"), under(dep, "github.com/lib/pq"):
		return "a SQL driver"
	case strings.HasPrefix(dep, "github.com/uptrace/bun/dialect/") && strings.HasSuffix(dep, "dialect"):
		return "a Bun dialect"
	case strings.HasPrefix(dep, "github.com/uptrace/bun/driver/"):
		return "a Bun driver"
	}
	return ""
}

// optional lists heavy dependencies and the only packages allowed to pull
// them.
var optional = []struct {
	dep, owner, what string
}{
	{"github.com/redis/go-redis", module + "/ratelimit/redislimit", "go-redis"},
	{"github.com/go-redis/", module + "/ratelimit/redislimit", "go-redis"},
	{"github.com/crewjam/saml", module + "/authn/saml", "crewjam/saml"},
	{"github.com/coreos/go-oidc", module + "/authn/oidc", "go-oidc"},
}

// TestDependencyDirection keeps the SDK's packages importable one at a time:
// no library package pulls the server, a SQL driver or a Bun dialect; heavy
// optional dependencies stay in the subpackage that needs them; and the
// packages with a narrow job keep a narrow import list. Only non-test
// dependencies count: tests may use databases.
func TestDependencyDirection(t *testing.T) {
	pkgs := loadPackages(t)

	var libs []string
	for path := range pkgs {
		if isLibrary(path) {
			libs = append(libs, path)
		}
	}
	slices.Sort(libs)
	named := []string{"tenancy", "authn", "authn/authntest", "audit", "ratelimit", "ratelimit/redislimit",
		"webhooks", "webhooks/webhookstest", "integrations"}
	for _, n := range named {
		if !slices.Contains(libs, module+"/"+n) {
			t.Errorf("library package %s not found by go list: update this test if it moved", n)
		}
	}

	for _, lib := range libs {
		p := pkgs[lib]
		if p.err != "" {
			t.Errorf("%s does not load: %s", lib, p.err)
		}
		for _, dep := range p.deps {
			if why := forbiddenEverywhere(dep); why != "" {
				t.Errorf("%s depends on %s, %s: %s", lib, dep, why, importChain(pkgs, lib, dep))
			}
			for _, o := range optional {
				if strings.HasPrefix(dep, o.dep) && !under(lib, o.owner) {
					t.Errorf("%s depends on %s: only %s may pull %s: %s", lib, dep, o.owner, o.what, importChain(pkgs, lib, dep))
				}
			}
		}
	}

	// Narrower rules for particular packages, each a predicate a dependency
	// must not match.
	std := func(dep string) bool { return pkgs[dep] != nil && pkgs[dep].standard }
	rules := []struct {
		pkgs []string
		bad  func(dep string) bool
		want string
	}{
		{
			pkgs: []string{"webhooks"},
			bad:  func(d string) bool { return !std(d) && d != module+"/internal/problem" },
			want: "only the standard library and internal/problem",
		},
		{
			pkgs: []string{"webhooks/webhookstest"},
			bad: func(d string) bool {
				return !std(d) && d != module+"/internal/problem" && d != module+"/webhooks"
			},
			want: "only the standard library, webhooks and internal/problem",
		},
		{
			pkgs: []string{"ratelimit"},
			bad: func(d string) bool {
				return strings.HasPrefix(d, "github.com/redis/") || strings.HasPrefix(d, "github.com/go-redis/")
			},
			want: "no go-redis (it belongs in ratelimit/redislimit)",
		},
		{
			pkgs: []string{"authn", "authn/authntest"},
			bad: func(d string) bool {
				return under(d, "github.com/crewjam/saml") || strings.HasPrefix(d, "github.com/coreos/go-oidc")
			},
			want: "no SAML or OIDC library (they belong in authn/saml and authn/oidc)",
		},
		{
			pkgs: []string{"integrations"},
			bad: func(d string) bool {
				return under(d, "github.com/uptrace/bun") || under(d, "github.com/riverqueue/river")
			},
			want: "no Bun and no River",
		},
	}
	for _, r := range rules {
		for _, name := range r.pkgs {
			path := module + "/" + name
			p := pkgs[path]
			if p == nil {
				continue // reported above
			}
			for _, dep := range p.deps {
				if r.bad(dep) {
					t.Errorf("%s depends on %s; it may import %s: %s", name, dep, r.want, importChain(pkgs, path, dep))
				}
			}
		}
	}
}

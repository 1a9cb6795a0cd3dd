package server

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateDeployDoc = flag.Bool("update", false, "rewrite the configuration table of DEPLOY.md from Config")

// Markers around the generated configuration table in DEPLOY.md.
const (
	configTableBegin = "<!-- BEGIN CONFIG TABLE: generated from server.Config; regenerate with: go test ./server -run TestDeployGuideConfigTable -update -->\n"
	configTableEnd   = "<!-- END CONFIG TABLE -->\n"
)

// configTable renders every configuration variable as a Markdown table, in
// the order of [ConfigVars].
func configTable() string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n")
	for _, v := range ConfigVars() {
		def := "(empty)"
		if v.Default != "" {
			def = "`" + cell(v.Default) + "`"
		}
		help := cell(v.Help)
		if v.Secret {
			help += " **Secret.**"
		}
		b.WriteString("| `" + v.Env + "` | `-" + v.Flag + "` | " + def + " | " + help + " |\n")
	}
	return b.String()
}

// TestDeployGuideConfigTable keeps the configuration reference of DEPLOY.md
// exactly what Config gives, and every SAASKIT_ variable the guide names a
// real one.
func TestDeployGuideConfigTable(t *testing.T) {
	const path = "DEPLOY.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, configTableBegin)
	j := strings.Index(doc, configTableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no configuration table between the markers %q and %q", path, configTableBegin, configTableEnd)
	}
	got, want := doc[i+len(configTableBegin):j], configTable()
	if got != want {
		if *updateDeployDoc {
			doc = doc[:i+len(configTableBegin)] + want + doc[j:]
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: configuration table rewritten", path)
		} else {
			t.Errorf("%s: the configuration table is not what server.Config gives; regenerate it with: go test ./server -run TestDeployGuideConfigTable -update", path)
		}
	}

	known := map[string]bool{}
	for _, v := range ConfigVars() {
		known[v.Env] = true
	}
	for _, name := range regexp.MustCompile(`SAASKIT_[A-Z0-9_]*[A-Z0-9]`).FindAllString(doc, -1) {
		if !known[name] && !strings.HasPrefix(name, "SAASKIT_TEST_") {
			t.Errorf("%s names %s, which is not a configuration variable", path, name)
		}
	}
}

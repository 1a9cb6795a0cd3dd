package tenancy

import (
	"slices"
	"strings"
	"testing"
)

func TestScanIdents(t *testing.T) {
	tests := []struct {
		q    string
		want []string
	}{
		{`SELECT * FROM members`, []string{"SELECT", "FROM", "members"}},
		{`select "m"."email" from "public"."members" as "m"`, []string{"select", "m", "email", "from", "public", "members", "as", "m"}},
		{`SELECT 'members', 'it''s members' FROM t`, []string{"SELECT", "FROM", "t"}},
		{`SELECT 1 -- members` + "\n" + `FROM t /* members */`, []string{"SELECT", "FROM", "t"}},
		{`SELECT $1, $body$ members $body$ FROM "a""b"`, []string{"SELECT", "FROM", `a"b`}},
		{"SELECT `x` FROM [y]", []string{"SELECT", "x", "FROM", "y"}},
		{`SELECT 12abc FROM tenant_members`, []string{"SELECT", "FROM", "tenant_members"}},
	}
	for _, tt := range tests {
		var got []string
		scanIdents(tt.q, func(s string) bool { got = append(got, s); return true })
		if !slices.Equal(got, tt.want) {
			t.Errorf("scanIdents(%q) = %q, want %q", tt.q, got, tt.want)
		}
	}
}

func TestGuardMatch(t *testing.T) {
	g := NewGuard("members")
	for q, want := range map[string]bool{
		`SELECT * FROM members`:                       true,
		`SELECT * FROM MEMBERS`:                       true,
		`SELECT * FROM "public"."members" AS m`:       true,
		`SELECT * FROM public.members`:                true,
		`UPDATE members SET x = 1`:                    true,
		`SELECT * FROM tenants`:                       false,
		`SELECT * FROM tenant_members`:                false,
		`SELECT * FROM members_archive`:               false,
		`SELECT 'members' FROM t`:                     false,
		`SELECT * FROM t -- members`:                  false,
		`INSERT INTO t (a) VALUES ('x FROM members')`: false,
		`TRUNCATE members`:                            true,
	} {
		if _, got := g.match(q); got != want {
			t.Errorf("match(%q) = %v, want %v", q, got, want)
		}
	}
}

// FuzzScanIdents checks that the scanner never panics, terminates, and
// returns identifiers that occur in the input, and that an unquoted table name
// appended to any input after a newline is found unless the input leaves a
// quote or comment open.
func FuzzScanIdents(f *testing.F) {
	for _, s := range []string{
		`SELECT * FROM members`, `"a""b"`, `'x''`, `$a$ $a`, `$1$`, "/* ", "--", "`", "[", `"`, "$$", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		scanIdents(q, func(s string) bool {
			if s == "" {
				t.Fatalf("empty identifier from %q", q)
			}
			if !strings.Contains(q, s) && !strings.Contains(q, strings.ReplaceAll(s, `"`, `""`)) && !strings.Contains(q, strings.ReplaceAll(s, "`", "``")) {
				t.Fatalf("identifier %q not in %q", s, q)
			}
			return true
		})
		g := NewGuard("members")
		_, _ = g.match(q)
		// A plain statement after a closed one is always seen.
		if _, ok := g.match(q + "\n;\nSELECT 1 FROM members"); !ok && balanced(q) {
			t.Fatalf("members not found after %q", q)
		}
	})
}

// balanced reports whether q leaves no quote, bracket, dollar quote or
// comment open (a conservative check: any quoting character makes it false).
func balanced(q string) bool {
	return !strings.ContainsAny(q, "'\"`[$") && !strings.Contains(q, "/*") && !strings.Contains(q, "--")
}

func TestIsDDL(t *testing.T) {
	for q, want := range map[string]bool{
		"CREATE TABLE members (id int)":           true,
		"  /* x */ alter table members add c int": true,
		"DROP TABLE members":                      true,
		"TRUNCATE members":                        false,
		"SELECT 1":                                false,
		"-- create\nDELETE FROM members":          false,
	} {
		if got := isDDL(q); got != want {
			t.Errorf("isDDL(%q) = %v", q, got)
		}
	}
}

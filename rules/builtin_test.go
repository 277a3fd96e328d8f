package rules

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestBuiltinProfile(t *testing.T) {
	s := builtin(t)
	ps := s.Profiles()
	if len(ps) != 1 || ps[0].ID != "kaspersky" {
		t.Fatalf("built-in profiles = %v, want [kaspersky]", ps)
	}
	p := ps[0]
	if p.File != "builtin:kaspersky.yaml" || p.Name == "" || p.Version == "" || p.Description == "" || p.LastReviewed.IsZero() {
		t.Errorf("profile header incomplete: %+v", p)
	}
	used := map[string]bool{}
	domains := map[string]bool{}
	for _, r := range s.Rules() {
		if r.Profile != p {
			t.Errorf("rule %s: wrong profile", r.ID)
		}
		if !strings.HasPrefix(r.ID, "kaspersky-") {
			t.Errorf("rule %s: ids of the built-in profile start with kaspersky-", r.ID)
		}
		if len(r.Sources) == 0 {
			t.Errorf("rule %s: no sources", r.ID)
		}
		for _, id := range r.Sources {
			src, ok := p.Sources[id]
			if !ok {
				t.Errorf("rule %s: source %s does not resolve", r.ID, id)
			}
			if src.Title == "" || !(strings.HasPrefix(src.URL, "https://") || strings.HasPrefix(src.URL, "http://")) {
				t.Errorf("rule %s: source %s = %+v", r.ID, id, src)
			}
			used[id] = true
		}
		if !r.Category.Valid() || !r.Severity.Valid() || r.Name == "" {
			t.Errorf("rule %s: category %q severity %v name %q", r.ID, r.Category, r.Severity, r.Name)
		}
		for _, d := range r.Match.Domains {
			domains[d] = true
		}
	}
	for _, w := range strings.FieldsFunc(p.Description, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == ')' || r == '\n' }) {
		used[w] = true // the description may cite policy sources
	}
	for id := range p.Sources {
		if !used[id] {
			t.Errorf("source %s is cited by no rule and not in the description", id)
		}
	}
	// Every exact name and pattern lies under a domain suffix of the same
	// profile. This is what makes FuzzMatchName's "prefixing a label keeps a
	// hit" property true for the built-in profile.
	covered := func(name string) bool {
		for rest := name; ; {
			if domains[rest] {
				return true
			}
			_, tail, ok := strings.Cut(rest, ".")
			if !ok {
				return false
			}
			rest = tail
		}
	}
	for _, r := range s.Rules() {
		for _, n := range r.Match.Names {
			if !covered(n) {
				t.Errorf("rule %s: name %s is not under any domain of the profile", r.ID, n)
			}
		}
		for _, pat := range r.Match.Patterns {
			if _, rest, _ := strings.Cut(pat, "."); !covered(rest) {
				t.Errorf("rule %s: pattern %s is not under any domain of the profile", r.ID, pat)
			}
		}
	}
}

// TestBuiltinExclusions pins deliberate omissions (see the file's header).
func TestBuiltinExclusions(t *testing.T) {
	s := builtin(t)
	for _, r := range s.Rules() {
		for _, lists := range [][]string{r.Match.Domains, r.Match.Names, r.Match.Patterns} {
			for _, v := range lists {
				if strings.Contains(v, "kasperskyupdate") {
					t.Errorf("rule %s lists %s: maltrail classes kasperskyupdate.com as APT infrastructure", r.ID, v)
				}
			}
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "223.6.6.6", "9.9.9.9", "185.228.168.168"} {
		if h := s.MatchAddr(netip.MustParseAddr(a), nil); len(h) != 0 {
			t.Errorf("fallback resolver %s matches %v; it needs a combined condition first", a, hitIDs(h))
		}
	}
	if h := s.MatchPort(ProtoTCP, 8080, nil); len(h) != 0 {
		t.Errorf("8080/tcp matches %v", hitIDs(h))
	}
}

// summary renders one line per rule: id, category, severity, confidence,
// indicator count and the counts per kind.
func summary(rules []*Rule) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-40s %-14s %-8s %-10s %5s  %s\n", "# rule", "category", "severity", "confidence", "count", "domains/names/patterns/cidrs/ports")
	total := 0
	for _, r := range rules {
		m := r.Match
		fmt.Fprintf(&b, "%-40s %-14s %-8s %-10s %5d  %d/%d/%d/%d/%d\n", r.ID, r.Category, r.Severity, r.Confidence,
			m.Len(), len(m.Domains), len(m.Names), len(m.Patterns), len(m.CIDRs), len(m.Ports))
		total += m.Len()
	}
	fmt.Fprintf(&b, "# %d rules, %d indicators\n", len(rules), total)
	return b.Bytes()
}

func TestBuiltinGolden(t *testing.T) {
	const golden = "testdata/builtin-rules.golden"
	got := summary(builtin(t).Rules())
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./rules -run TestBuiltinGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("built-in rules differ from %s (rerun with -update if intended):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

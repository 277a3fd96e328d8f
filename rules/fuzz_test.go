package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, reports at most maxErrors+1 lines, each
// naming the file, and whatever it accepts compiles and matches itself
// (plain rules through MatchName/MatchAddr/MatchPort and Match; combined
// rules are at least evaluated).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	builtins, _ := filepath.Glob("builtin/*.yaml")
	seeds = append(seeds, builtins...)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("profile: {id: a}\nrules: [{id: b, match: {ports: [\"1-2/udp\"]}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		prof, rules, err := Parse("fuzz.yaml", data)
		if err != nil {
			lines := strings.Split(err.Error(), "\n")
			if len(lines) > maxErrors+1 {
				t.Fatalf("%d error lines", len(lines))
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "fuzz.yaml") {
					t.Fatalf("error line without file name: %q", l)
				}
			}
			return
		}
		if prof == nil || len(rules) == 0 {
			t.Fatalf("Parse succeeded with profile %v and %d rules", prof, len(rules))
		}
		s, err := Compile(ParsedFile{prof, rules})
		if err != nil {
			t.Fatalf("Compile rejected what Parse accepted: %v", err)
		}
		one := func(what string, hits []Hit) {
			if len(hits) != 1 || hits[0].Rule.Profile != prof {
				t.Fatalf("%s: hits %v, want exactly one from the profile", what, hits)
			}
		}
		for _, r := range rules {
			for _, d := range r.Match.Domains {
				one(d, s.MatchName(d, nil))
				one("x."+d, s.MatchName("x."+d, nil))
			}
			for _, n := range r.Match.Names {
				h := s.MatchName(n, nil)
				one(n, h)
				if h[0].Kind != KindName {
					t.Fatalf("%s: exact name lost to %v", n, h[0])
				}
			}
			for _, p := range r.Match.Patterns {
				one(p, s.MatchName(strings.Replace(p, "*", "x", 1), nil))
			}
			for _, c := range r.Match.CIDRs {
				one(c.String(), s.MatchAddr(c.Addr(), nil))
			}
			for _, pr := range r.Match.Ports {
				one(pr.String(), s.MatchPort(pr.Proto, pr.Hi, nil))
			}
			has := func(what string, c Contact) {
				for _, h := range s.Match(&c, nil) {
					if h.Rule == r {
						return
					}
				}
				t.Fatalf("%s: Match(%+v) does not hit rule %s", what, c, r.ID)
			}
			for _, a := range r.Match.ASNs {
				has(FormatASN(a), Contact{ASN: a})
			}
			for _, c := range r.Match.Countries {
				has(c, Contact{Country: c})
			}
			for _, j := range r.Match.JA4 {
				secs := strings.Split(j, "_")
				for i, fill := range []string{"t13d1516h2", "000000000000", "000000000000"} {
					if secs[i] == "*" {
						secs[i] = fill
					}
				}
				has(j, Contact{JA4: strings.Join(secs, "_")})
			}
			for _, ua := range r.Match.UserAgents {
				has(ua, Contact{UserAgent: strings.ReplaceAll(ua, "*", "")})
				has(ua, Contact{UserAgent: strings.ToUpper(strings.ReplaceAll(ua, "*", "x"))})
			}
			// Combined rules: a contact made of the first indicator of each
			// kind anywhere in the tree; Match must not panic, and every
			// hit's Reason must be non-empty.
			var c Contact
			walk(&r.Match, func(m *Match) {
				switch {
				case c.Name == "" && len(m.Domains) > 0:
					c.Name = "x." + m.Domains[0]
				case c.Name == "" && len(m.Names) > 0:
					c.Name = m.Names[0]
				}
				if !c.Addr.IsValid() && len(m.CIDRs) > 0 {
					c.Addr = m.CIDRs[0].Addr()
				}
				if c.Port == 0 && len(m.Ports) > 0 {
					c.Port, c.Proto = m.Ports[0].Lo, m.Ports[0].Proto
				}
				if c.ASN == 0 && len(m.ASNs) > 0 {
					c.ASN = m.ASNs[0]
				}
				if c.Country == "" && len(m.Countries) > 0 {
					c.Country = m.Countries[0]
				}
			})
			for _, h := range s.Match(&c, nil) {
				if h.Reason() == "" || (h.Kind == KindAll || h.Kind == KindAny) && len(h.AppendParts(nil)) == 0 {
					t.Fatalf("Match(%+v): hit %v explains nothing", c, h)
				}
			}
		}
	})
}

// FuzzMatchName: MatchName never panics, returns at most one hit per
// profile, every hit really matches on a label boundary, and (for the
// built-in profile, where every name lies under a brand domain) a name that
// matches still matches with a label prepended.
func FuzzMatchName(f *testing.F) {
	s, err := Builtin()
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"s01.upd.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "cm.k.kaspersky-labs.com",
		"notkaspersky.com", "kaspersky.com.evil.net", "tfvanrafeseaavp.ru", "www.google.com", "", ".", "..",
		"a..kaspersky.com", ".kaspersky.com", "kaspersky.com.", "downloads.kaspersky-labs.com", "ksn-.kaspersky-labs.com",
		"S01.UPD.KASPERSKY.COM", `a\000.kaspersky.com`, "a\xff.kaspersky.com", "xn--80akjebc7ajgd.xn--p1ai"} {
		f.Add(n)
	}
	dst := make([]Hit, 0, 4)
	f.Fuzz(func(t *testing.T, name string) {
		hits := s.MatchName(name, dst[:0])
		if len(hits) > len(s.Profiles()) {
			t.Fatalf("%d hits for %d profiles", len(hits), len(s.Profiles()))
		}
		// Names are compared ignoring ASCII case; a name with a byte
		// that cannot be on the wire unescaped never matches.
		n := strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, strings.TrimSuffix(name, "."))
		if len(hits) > 0 && strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '\\' }) {
			t.Fatalf("MatchName(%q) = %v: a name with escaped or non-ASCII bytes must not match", name, hitIDs(hits))
		}
		for _, h := range hits {
			ok := false
			switch h.Kind {
			case KindName:
				ok = n == h.Indicator
			case KindDomain:
				ok = n == h.Indicator || strings.HasSuffix(n, "."+h.Indicator)
			case KindPattern:
				label, rest, _ := strings.Cut(n, ".")
				pre, suf, _ := strings.Cut(strings.SplitN(h.Indicator, ".", 2)[0], "*")
				ok = rest == strings.SplitN(h.Indicator, ".", 2)[1] && label != "" && !strings.Contains(label, ".") &&
					len(label) >= len(pre)+len(suf) && strings.HasPrefix(label, pre) && strings.HasSuffix(label, suf)
			}
			if !ok {
				t.Fatalf("MatchName(%q) = %v: not a real match", name, h)
			}
		}
		if len(hits) > 0 {
			if more := s.MatchName("a."+name, nil); len(more) != len(hits) {
				t.Fatalf("MatchName(%q) = %v but MatchName(%q) = %v", name, hitIDs(hits), "a."+name, hitIDs(more))
			}
		}
		if !strings.HasSuffix(name, ".") {
			if dotted := s.MatchName(name+".", nil); len(dotted) != len(hits) {
				t.Fatalf("trailing dot changes the result for %q", name)
			}
		}
	})
}

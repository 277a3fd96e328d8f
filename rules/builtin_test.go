package rules

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// walk calls f for m and every condition nested in it.
func walk(m *Match, f func(*Match)) {
	f(m)
	for i := range m.All {
		walk(&m.All[i], f)
	}
	for i := range m.Any {
		walk(&m.Any[i], f)
	}
	if m.Not != nil {
		walk(m.Not, f)
	}
}

func TestBuiltinProfile(t *testing.T) {
	s := builtin(t)
	ps := s.Profiles()
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	if want := []string{"kaspersky", "russian-hosted"}; !slices.Equal(ids, want) || !slices.Equal(BuiltinProfileIDs(), want) {
		t.Fatalf("built-in profiles = %q (BuiltinProfileIDs %q), want %q", ids, BuiltinProfileIDs(), want)
	}
	for _, p := range ps {
		t.Run(p.ID, func(t *testing.T) { checkBuiltinProfile(t, s, p) })
	}
}

func checkBuiltinProfile(t *testing.T, s *Set, p *Profile) {
	if !strings.HasPrefix(p.File, "builtin:") || p.Name == "" || p.Version == "" || p.Description == "" || p.LastReviewed.IsZero() {
		t.Errorf("profile header incomplete: %+v", p)
	}
	used := map[string]bool{}
	domains := map[string]bool{}
	var rules []*Rule
	for _, r := range s.Rules() {
		if r.Profile == p {
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	for _, r := range rules {
		if !strings.HasPrefix(r.ID, p.ID+"-") {
			t.Errorf("rule %s: ids of a built-in profile start with %s-", r.ID, p.ID)
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
	// Every exact name and pattern, also inside combined conditions, lies
	// under a domain suffix of a plain rule of the same profile. This is
	// what makes FuzzMatchName's "prefixing a label keeps a hit" property
	// true for the built-in profiles.
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
	for _, r := range rules {
		walk(&r.Match, func(m *Match) {
			for _, n := range slices.Concat(m.Names, m.Domains) {
				if !covered(n) {
					t.Errorf("rule %s: name %s is not under any domain of the profile", r.ID, n)
				}
			}
			for _, pat := range m.Patterns {
				if _, rest, _ := strings.Cut(pat, "."); !covered(rest) {
					t.Errorf("rule %s: pattern %s is not under any domain of the profile", r.ID, pat)
				}
			}
		})
	}
}

// TestBuiltinExclusions pins deliberate omissions (see the file's header).
func TestBuiltinExclusions(t *testing.T) {
	s := builtin(t)
	for _, r := range s.Rules() {
		walk(&r.Match, func(m *Match) {
			for _, v := range slices.Concat(m.Domains, m.Names, m.Patterns) {
				if strings.Contains(v, "kasperskyupdate") {
					t.Errorf("rule %s lists %s: maltrail classes kasperskyupdate.com as APT infrastructure", r.ID, v)
				}
			}
		})
	}
	// The fallback resolvers never hit on their own: only a Kaspersky name
	// sent to them does (TestBuiltinFallbackDNS).
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "223.6.6.6", "9.9.9.9", "185.228.168.168"} {
		addr := netip.MustParseAddr(a)
		if h := s.MatchAddr(addr, nil); len(h) != 0 {
			t.Errorf("fallback resolver %s matches %v", a, hitIDs(h))
		}
		for _, c := range []Contact{
			{Addr: addr},
			{Addr: addr, Port: 53, Proto: ProtoUDP},
			{Addr: addr, Port: 53, Proto: ProtoTCP, Name: "www.google.com"},
			{Addr: addr, Port: 53, Proto: ProtoUDP, Name: "kasperskyupdate.com"},
		} {
			if h := s.Match(&c, nil); len(h) != 0 {
				t.Errorf("Match(%+v) = %v, want none", c, hitIDs(h))
			}
		}
	}
	if h := s.MatchPort(ProtoTCP, 8080, nil); len(h) != 0 {
		t.Errorf("8080/tcp matches %v", hitIDs(h))
	}
}

func TestBuiltinFallbackDNS(t *testing.T) {
	s := builtin(t)
	tests := []struct {
		c    Contact
		want []string
	}{
		{Contact{Name: "dnl-01.geo.kaspersky.com", Addr: netip.MustParseAddr("8.8.8.8"), Port: 53, Proto: ProtoUDP}, []string{
			`kaspersky-update-geo domain: domain suffix "geo.kaspersky.com"`,
			`kaspersky-fallback-dns all: domain suffix "geo.kaspersky.com" and address in 8.8.8.8/32 and port 53/udp`,
		}},
		{Contact{Name: "dnl-01.geo.kaspersky.com", Addr: netip.MustParseAddr("10.0.0.53"), Port: 53, Proto: ProtoUDP}, []string{
			`kaspersky-update-geo domain: domain suffix "geo.kaspersky.com"`,
		}},
		{Contact{Name: "ksn-url-geo.kaspersky-labs.com.", Addr: netip.MustParseAddr("185.228.168.168"), Port: 53, Proto: ProtoTCP}, []string{
			`kaspersky-ksn pattern: name pattern "ksn-*.kaspersky-labs.com"`,
			`kaspersky-fallback-dns all: name pattern "ksn-*.kaspersky-labs.com" and address in 185.228.168.168/32 and port 53/tcp`,
		}},
		{Contact{Name: "www.kaspersky.com", Addr: netip.MustParseAddr("::ffff:223.6.6.6"), Port: 53, Proto: ProtoUDP}, []string{
			`kaspersky-brand domain: domain suffix "kaspersky.com"`,
			`kaspersky-fallback-dns all: domain suffix "kaspersky.com" and address in 223.6.6.6/32 and port 53/udp`,
		}},
		// DNS over TLS to the same resolver is not what K1 describes.
		{Contact{Name: "s01.upd.kaspersky.com", Addr: netip.MustParseAddr("1.1.1.1"), Port: 853, Proto: ProtoTCP}, []string{
			`kaspersky-update domain: domain suffix "upd.kaspersky.com"`,
		}},
		// A regional brand domain is not one the products resolve.
		{Contact{Name: "kaspersky.de", Addr: netip.MustParseAddr("9.9.9.9"), Port: 53, Proto: ProtoUDP}, []string{
			`kaspersky-brand-regional domain: domain suffix "kaspersky.de"`,
		}},
	}
	for _, tt := range tests {
		if got := hitReasons(s.Match(&tt.c, nil)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%+v) =\n%q\nwant\n%q", tt.c, got, tt.want)
		}
	}
	for _, r := range s.Rules() {
		if r.ID == "kaspersky-fallback-dns" && (r.Category != CategoryFallbackDNS || len(r.Match.All) != 3) {
			t.Errorf("fallback rule = %+v", r)
		}
	}
}

func TestBuiltinRussianHosted(t *testing.T) {
	s := builtin(t)
	c := Contact{Country: "RU", Addr: netip.MustParseAddr("203.0.113.7"), Port: 443, Proto: ProtoTCP}
	h := s.Match(&c, nil)
	if got := hitReasons(h); !slices.Equal(got, []string{`russian-hosted-endpoint country: country "RU"`}) {
		t.Fatalf("Match(RU) = %q", got)
	}
	if r := h[0].Rule; r.Category != CategoryCountry || r.Severity != SeverityLow || r.Profile.ID != "russian-hosted" {
		t.Errorf("rule = %+v", r)
	}
	for _, other := range []string{"BY", "US", ""} {
		c := Contact{Country: other}
		if h := s.Match(&c, nil); len(h) != 0 {
			t.Errorf("Match(%q) = %v", other, hitIDs(h))
		}
	}
	// Off-switch.
	off, err := LoadWith(LoadOptions{DisableProfiles: []string{"russian-hosted"}})
	if err != nil {
		t.Fatal(err)
	}
	if h := off.Match(&c, nil); len(h) != 0 || len(off.Profiles()) != 1 || off.Profiles()[0].ID != "kaspersky" {
		t.Errorf("disabled: hits %v, profiles %d", hitIDs(h), len(off.Profiles()))
	}
	if !off.NeedsGeo() {
		t.Error("kaspersky alone needs geo for its ASNs")
	}
}

func TestBuiltinASN(t *testing.T) {
	s := builtin(t)
	for asn, want := range map[uint32]string{
		200107: "kaspersky-network-as200107 asn AS200107",
		41983:  "kaspersky-network-as41983 asn AS41983",
	} {
		c := Contact{ASN: asn}
		if got := hitIDs(s.Match(&c, nil)); !slices.Equal(got, []string{want}) {
			t.Errorf("Match(ASN %d) = %q, want %q", asn, got, want)
		}
	}
	c := Contact{ASN: 15169}
	if h := s.Match(&c, nil); len(h) != 0 {
		t.Errorf("Match(AS15169) = %v", hitIDs(h))
	}
}

// TestBuiltinKSCPorts pins the Security Center ports of the indicators
// sheet (§1e); the KSN proxy ports are ksn-telemetry by the README's
// definition of that category, the others management.
func TestBuiltinKSCPorts(t *testing.T) {
	s := builtin(t)
	for _, tt := range []struct {
		proto uint8
		port  uint16
		cat   Category
	}{
		{ProtoTCP, 13000, CategoryManagement}, {ProtoTCP, 14000, CategoryManagement}, {ProtoUDP, 15000, CategoryManagement},
		{ProtoUDP, 15001, CategoryManagement}, {ProtoTCP, 13291, CategoryManagement}, {ProtoTCP, 13295, CategoryManagement},
		{ProtoTCP, 13299, CategoryManagement}, {ProtoTCP, 8060, CategoryManagement}, {ProtoTCP, 8061, CategoryManagement},
		{ProtoTCP, 13111, CategoryKSNTelemetry}, {ProtoUDP, 15111, CategoryKSNTelemetry}, {ProtoTCP, 17111, CategoryKSNTelemetry},
	} {
		c := Contact{Port: tt.port, Proto: tt.proto}
		h := s.Match(&c, nil)
		if len(h) != 1 || h[0].Rule.Category != tt.cat {
			t.Errorf("port %d/%d: hits %v, want one %s hit", tt.port, tt.proto, hitIDs(h), tt.cat)
		}
	}
}

func TestLoadWith(t *testing.T) {
	tests := []struct {
		opts     LoadOptions
		profiles string
		err      string
	}{
		{LoadOptions{}, "kaspersky,russian-hosted", ""},
		{LoadOptions{NoBuiltin: true}, "", ""},
		{LoadOptions{NoBuiltin: true, DisableProfiles: []string{"russian-hosted"}}, "", ""},
		{LoadOptions{DisableProfiles: []string{"kaspersky", "russian-hosted"}, Paths: []string{"testdata/valid-example.yaml"}}, "example-vendor", ""},
		// A disabled built-in profile can be replaced by a file with its id.
		{LoadOptions{DisableProfiles: []string{"kaspersky"}, Paths: []string{"testdata/dup-profile.yaml"}}, "russian-hosted,kaspersky", ""},
		{LoadOptions{DisableProfiles: []string{"russia"}}, "",
			`rules: cannot disable profile "russia": no such built-in profile (built-in: kaspersky, russian-hosted)`},
		{LoadOptions{DisableProfiles: []string{"example-vendor"}, Paths: []string{"testdata/valid-example.yaml"}}, "",
			`rules: cannot disable profile "example-vendor": no such built-in profile (built-in: kaspersky, russian-hosted)`},
	}
	for _, tt := range tests {
		s, err := LoadWith(tt.opts)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("LoadWith(%+v) error = %v, want %s", tt.opts, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("LoadWith(%+v): %v", tt.opts, err)
			continue
		}
		var ids []string
		for _, p := range s.Profiles() {
			ids = append(ids, p.ID)
		}
		if got := strings.Join(ids, ","); got != tt.profiles {
			t.Errorf("LoadWith(%+v) profiles = %s, want %s", tt.opts, got, tt.profiles)
		}
	}
}

// summary renders one line per rule: id, category, severity, confidence,
// indicator count (nested conditions included), the top-level combinator
// and the counts per kind.
func summary(rules []*Rule) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-40s %-14s %-8s %-10s %5s %-4s  %s\n", "# rule", "category", "severity", "confidence", "count", "comb",
		"domains/names/patterns/cidrs/ports/asns/countries/ja4/user_agents")
	total := 0
	for _, r := range rules {
		var n [9]int
		walk(&r.Match, func(m *Match) {
			for i, k := range []int{len(m.Domains), len(m.Names), len(m.Patterns), len(m.CIDRs), len(m.Ports),
				len(m.ASNs), len(m.Countries), len(m.JA4), len(m.UserAgents)} {
				n[i] += k
			}
		})
		comb := "-"
		switch {
		case r.Match.All != nil:
			comb = "all"
		case r.Match.Any != nil:
			comb = "any"
		}
		fmt.Fprintf(&b, "%-40s %-14s %-8s %-10s %5d %-4s  %d/%d/%d/%d/%d/%d/%d/%d/%d\n", r.ID, r.Category, r.Severity, r.Confidence,
			r.Match.Len(), comb, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8])
		total += r.Match.Len()
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

// indicatorSheet is the sourced fact sheet the built-in profile was made
// from; TestBuiltinOfficialHosts reads it when it is there.
const indicatorSheet = "/work/shared/reference/kaspersky-indicators.md"

// sheetCategories maps the sheet's sections to the category their hosts
// must get.
var sheetCategories = map[string]Category{
	"1a": CategoryUpdate, "1b": CategoryKSNTelemetry, "1c": CategoryActivation, "1d": CategoryCertificate,
	"1e": CategoryManagement, "1f": CategoryPortal, "2": CategoryBrand,
}

// sheetOverrides are hosts whose category differs from their section's, and why.
var sheetOverrides = map[string]Category{
	// §1c lists the Cloud Console's activation ports, but *.ksc.kaspersky.com
	// serves the whole Cloud Console (§1e: agents, mobile devices,
	// activation, tunnelling): the profile files it under management.
	"x.ksc.kaspersky.com": CategoryManagement,
}

// officialSheetHosts returns, for every host in a row of the sheet whose
// confidence is official, the category of its section. Ranges written
// "`s00.upd.kaspersky.com` … `s19.upd.kaspersky.com`" are expanded; a '*'
// stands for the label "x".
func officialSheetHosts(t *testing.T, text string) map[string]Category {
	hosts := map[string]Category{}
	section := ""
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "### "):
			section, _, _ = strings.Cut(strings.TrimPrefix(line, "### "), ".")
			continue
		case strings.HasPrefix(line, "## "):
			section, _, _ = strings.Cut(strings.TrimPrefix(line, "## "), ".")
			continue
		case !strings.HasPrefix(line, "|"):
			continue
		}
		cat, ok := sheetCategories[section]
		if !ok {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if conf := strings.TrimSpace(cells[len(cells)-1]); !strings.HasPrefix(conf, "official") {
			continue
		}
		// The host cell: backquoted names, possibly a range "`a` … `b`".
		var prev string
		parts := strings.Split(cells[0], "`")
		for i := 1; i < len(parts); i += 2 {
			name := parts[i]
			if !strings.Contains(name, ".") || strings.ContainsAny(name, " {}/") {
				prev = ""
				continue
			}
			name = strings.ReplaceAll(name, "*", "x")
			if prev != "" && strings.Contains(parts[i-1], "…") {
				for _, n := range expandRange(t, prev, name) {
					hosts[n] = cat
				}
			}
			hosts[name] = cat
			prev = name
		}
	}
	return hosts
}

// expandRange expands "s00.upd.kaspersky.com" … "s19.upd.kaspersky.com".
func expandRange(t *testing.T, from, to string) []string {
	split := func(s string) (string, string, string) {
		label, rest, _ := strings.Cut(s, ".")
		i := strings.IndexFunc(label, func(r rune) bool { return r >= '0' && r <= '9' })
		if i < 0 {
			return label, "", rest
		}
		return label[:i], label[i:], rest
	}
	p1, n1, r1 := split(from)
	p2, n2, r2 := split(to)
	lo, err1 := strconv.Atoi(n1)
	hi, err2 := strconv.Atoi(n2)
	if p1 != p2 || r1 != r2 || err1 != nil || err2 != nil || len(n1) != len(n2) || lo > hi {
		t.Fatalf("cannot expand the range %s … %s", from, to)
	}
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf("%s%0*d.%s", p1, len(n1), i, r1))
	}
	return out
}

// TestBuiltinOfficialHosts: every host the indicator sheet marks official
// matches the built-in profile, with the category of its section.
func TestBuiltinOfficialHosts(t *testing.T) {
	data, err := os.ReadFile(indicatorSheet)
	if err != nil {
		t.Skipf("indicator sheet not available (%v); nothing to compare", err)
	}
	hosts := officialSheetHosts(t, string(data))
	if len(hosts) < 25 {
		t.Fatalf("found only %d official hosts in %s: has its layout changed?", len(hosts), indicatorSheet)
	}
	s := builtin(t)
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		want := hosts[h]
		if o, ok := sheetOverrides[h]; ok {
			want = o
		}
		hits := s.MatchName(h, nil)
		if len(hits) != 1 || hits[0].Rule.Category != want {
			t.Errorf("official host %s: hits %q, want one %s hit", h, hitIDs(hits), want)
		}
	}
	t.Logf("%d official hosts from %s", len(hosts), indicatorSheet)
}
